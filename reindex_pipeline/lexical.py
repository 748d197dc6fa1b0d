"""Lexical (sparse) vectors of chunk text, for the keyword half of hybrid search (pure).

A dense sentence embedding places "SwissDev" or "Naturalsoft Limited" near whatever reads like them, so a
query naming an issuer, an invoice number or a product code can miss the one chunk that contains it. Each
chunk point therefore also carries a sparse vector of its words: index = a stable 31-bit hash of the
NFKC-normalised, case-folded word, value = 1 + ln(term frequency). Qdrant weighs the terms by their inverse
document frequency at query time (the vector's ``IDF`` modifier), which makes the score BM25-like without
any corpus statistics kept here. No model, no download, the same index for every language.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def term_index(word: str) -> int:
    """A word's dimension: crc32, kept to 31 bits (stable across processes and versions)."""
    return zlib.crc32(word.encode("utf-8")) & 0x7FFFFFFF


def document_terms(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a chunk: each word once, weighted 1 + ln(its count)."""
    weights: dict[int, float] = {}
    for word, count in Counter(words(text)).items():
        index = term_index(word)
        weights[index] = weights.get(index, 0.0) + 1.0 + math.log(count)
    return list(weights), list(weights.values())


def query_terms(text: str) -> tuple[list[int], list[float]]:
    """(indices, values) of a query: each distinct word with weight 1."""
    indices = sorted({term_index(word) for word in words(text)})
    return indices, [1.0] * len(indices)
