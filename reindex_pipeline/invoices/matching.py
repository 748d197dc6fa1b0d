"""Where the labels are, and what text belongs to each: the rest of its segment and the segments after it on
the same line (up to the next label), or, when that is empty, the text under it in the next lines."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from reindex_pipeline.invoices.labels import FIELD_LABELS, TITLES
from reindex_pipeline.invoices.text import Line, Segment

_LEAD = " :#-–—.\t"


@dataclass(frozen=True)
class LabelHit:
    field: str
    languages: tuple[str, ...]
    label: str
    line: Line
    segment: Segment
    start: int  # offset of the label in the segment's text
    end: int
    strong: bool  # the label opens its segment (at most two short tokens before it, e.g. "19% VAT")

    @property
    def prefix(self) -> str:
        return self.segment.text[: self.start]


def unaccented(text: str) -> str:
    """``text`` without its accents ("NET À PAYER" -> "NET A PAYER"); letters with no base letter ("ł", "ß")
    stay."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def accent_tolerant(pattern: str) -> str:
    """A regular expression whose accented letters also match their base letter: "à payer" matches "A PAYER"
    (French and Spanish capitals are often set without their accents). Only for patterns with no accented
    letter inside a character class."""
    out = []
    for char in pattern:
        base = unaccented(char)
        out.append(f"[{char}{base}]" if base != char and len(base) == 1 else char)
    return "".join(out)


@lru_cache(maxsize=1)
def _owners() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every label, longest first, with its field and languages."""
    owner: dict[str, tuple[str, list[str]]] = {}
    for field, by_language in FIELD_LABELS.items():
        for language, labels in by_language.items():
            for label in labels:  # compared with NFKC-normalised text (see text.clean): "n.º" -> "n.o"
                owner.setdefault(unicodedata.normalize("NFKC", label), (field, []))[1].append(language)
    return {k: (owner[k][0], tuple(owner[k][1])) for k in sorted(owner, key=len, reverse=True)}


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[re.Pattern[str], dict[str, tuple[str, tuple[str, ...]]]]:
    """The labels' pattern (accents optional), and each label's field and languages by its unaccented,
    lower-case form."""
    owner = _owners()
    body = "|".join(accent_tolerant(re.escape(x)) for x in owner)
    pattern = re.compile(r"(?<![\w])(" + body + r")", re.IGNORECASE)
    by_form: dict[str, tuple[str, tuple[str, ...]]] = {}
    for label, found in owner.items():  # two labels with one unaccented form: the longer (then first) one's
        by_form.setdefault(unaccented(label).lower(), found)
    return pattern, by_form


@lru_cache(maxsize=1)
def _spaced_labels() -> re.Pattern[str]:
    """The long labels with a space after their capital: "F actuurnummer", "T otaal" (how some PDFs set a
    word's first letter apart)."""
    long = [x for x in _owners() if len(x) >= 5 and x[:2].isalpha()]
    body = "|".join(accent_tolerant(re.escape(x[0]) + " " + re.escape(x[1:])) for x in long)
    return re.compile(r"(?<![\w])(?:" + body + r")", re.IGNORECASE)


#: a letter standing alone before a space and a word: where a spaced label ("F actuurnummer") can start
_LONE_LETTER = re.compile(r"(?<!\w)(\w) (?=\w)")


def mend_spacing(text: str) -> str:
    """``text`` with the labels a PDF spaced apart after their capital joined again ("F actuurnummer:" ->
    "Factuurnummer:"), before labels are matched; a lower-case letter before the space ("a mount") is a word
    of its own and stays."""

    def join(m: re.Match[str]) -> str:
        found = m.group(0)
        return found[0] + found[2:] if found[0].isupper() and found[2].islower() else found

    # only a capital standing alone before a space can be mended: without one the labels' pattern finds nothing
    if not any(m.group(1).isupper() for m in _LONE_LETTER.finditer(text)):
        return text
    return _spaced_labels().sub(join, text)


def _ends_word(text: str, end: int, label: str) -> bool:
    """A label ends at a word boundary, or is glued to a capitalised word ("Invoice dateOct 31, 2023")."""
    if end >= len(text) or not text[end].isalnum() or not label[-1].isalnum():
        return True
    return text[end].isupper() and text[end - 1].islower()


def starts_with_label(text: str) -> bool:
    """``text`` opens with a field label ("Invoice Date Sep 13": a label and its value, not a name)."""
    pattern, _ = _vocabulary()
    m = pattern.match(text)
    return m is not None and _ends_word(text, m.end(), m.group(0))


def is_label(text: str) -> bool:
    """``text`` is a field label and nothing else ("Seller", "Lieferant:")."""
    pattern, _ = _vocabulary()
    text = text.strip().rstrip(" :")
    m = pattern.match(text)
    return m is not None and m.end() == len(text)


def find_labels(lines: list[Line]) -> list[LabelHit]:
    pattern, owner = _vocabulary()
    hits = []
    for line in lines:
        for segment in line.segments:
            for m in pattern.finditer(segment.text):
                if not _ends_word(segment.text, m.end(), m.group(0)):
                    continue
                field, languages = owner[unaccented(m.group(0)).lower()]
                strong = len(segment.text[: m.start()].split()) <= 2
                hits.append(LabelHit(field, languages, m.group(0).lower(), line, segment, m.start(), m.end(), strong))
    return hits


def value_on_line(hit: LabelHit, hits_on_line: list[LabelHit]) -> str:
    """The text after the label on its line, up to the next label of another field."""
    line = hit.line
    parts = [hit.segment.text[hit.end :]]
    after = [s for s in line.segments if s.column > hit.segment.column]
    parts += [s.text for s in after]
    text = "  ".join(parts)
    # cut at the next label of another field that starts a segment or follows in the same segment
    cut = len(text)
    for other in hits_on_line:
        if other is hit or other.field == hit.field:
            continue
        if other.segment is hit.segment and other.start > hit.start:
            cut = min(cut, other.start - hit.end)
        elif other.segment.column > hit.segment.column:
            offset = text.find(other.segment.text)
            if offset >= 0:
                cut = min(cut, offset + other.start)
    return text[:cut].lstrip(_LEAD).rstrip(" :-–—")


def values_below(hit: LabelHit, lines: list[Line], depth: int = 4) -> list[str]:
    """Text under the label in the following non-blank lines: the segment in the label's column (layout
    text), or the whole next line when the label's line holds nothing else (plain text)."""
    out: list[str] = []
    column = hit.segment.column + hit.start
    single = len(hit.line.segments) == 1 and hit.segment.column <= 2
    index = hit.line.index + 1
    seen = 0
    while index < len(lines) and seen < depth:
        line = lines[index]
        index += 1
        if line.blank:
            continue
        seen += 1
        if single:
            if line.segments[0].column <= 2 or len(line.segments) == 1:
                out.append(line.segments[0].text)
            continue
        below = [s for s in line.segments if abs(s.column - column) <= 4 or s.column <= column < s.column + len(s.text)]
        if below:
            out.append(below[0].text)
    return out


def title_of(lines: list[Line], head: int = 12) -> tuple[str | None, str | None, Line | None]:
    """(document type, language, the title's line) from a title word alone in a segment near the top."""
    for line in lines[: head * 3]:
        for segment in line.segments:
            words = segment.text.lower().replace("/", " ").split()
            for kind in ("receipt", "invoice"):
                for language, titles in TITLES[kind].items():
                    for title in sorted(titles, key=len, reverse=True):
                        n = len(title.split())
                        if " ".join(words[:n]) == title and (len(words) == n or len(words) <= n + 3):
                            return kind, language, line
    return None, None, None
