"""Split page markdown into chunks. Used when a file is first ingested; a reindex never re-chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

MAX_CHUNK_CHARS = 800


@dataclass(frozen=True)
class Chunk:
    chunk_index: int
    page_number: int
    content: str
    metadata: dict = field(default_factory=dict)

    @property
    def content_sha256(self) -> str:
        return content_hash(self.content)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_pages(pages: list[str], max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    """Chunks of at most ``max_chars`` characters, cut at line ends, never across pages.

    A single line longer than ``max_chars`` is cut at ``max_chars``. Metadata records the page,
    the character span within it and the nearest markdown heading at or above the chunk's start.
    """
    if max_chars < 1:
        raise ValueError("max_chars must be positive")
    chunks: list[Chunk] = []
    for page_number, page in enumerate(pages, start=1):
        for text, start, end, section in _page_spans(page, max_chars):
            chunks.append(
                Chunk(
                    len(chunks),
                    page_number,
                    text,
                    {"page_number": page_number, "char_start": start, "char_end": end, "section": section},
                )
            )
    return chunks


def _page_spans(page: str, max_chars: int) -> list[tuple[str, int, int, str | None]]:
    """(text, start, end, heading) for one page's chunks, in order."""
    spans: list[tuple[str, int, int, str | None]] = []
    pieces: list[tuple[int, str]] = []  # (offset, piece) of the chunk being built
    heading: str | None = None
    section: str | None = None
    offset = 0

    def close() -> None:
        text = "\n".join(piece for _, piece in pieces).strip()
        if text:
            first, last = pieces[0][0], pieces[-1][0] + len(pieces[-1][1])
            spans.append((text, first, last, section))

    for line in page.split("\n"):
        for cut in range(0, max(len(line), 1), max_chars):
            piece = line[cut : cut + max_chars]
            size = sum(len(p) + 1 for _, p in pieces)
            if pieces and size + len(piece) + 1 > max_chars:
                close()
                pieces = []
            if piece.startswith("#"):
                heading = piece.lstrip("#").strip()
            if not pieces:
                section = heading
            pieces.append((offset + cut, piece))
        offset += len(line) + 1
    if pieces:
        close()
    return spans
