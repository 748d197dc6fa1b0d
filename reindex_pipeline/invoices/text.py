"""Pages -> lines of segments, whatever the source: pypdf layout text (columns as runs of spaces),
OCR markdown (``**bold**``, ``| tables |``, ``## headings``) or plain text.

A segment is a run of text separated from its neighbours by two or more spaces, a table pipe, a tab,
a bullet or a dotted leader. Its ``column`` (the character offset in the line) lets a value be found
under its label in layout text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_MARKDOWN = re.compile(r"(\*\*|__|`)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_LEADER = re.compile(r"\.{4,}|_{4,}|…{2,}")
_BREAK = re.compile(r"\s*(?:\||•|·|\t|\u2003)\s*| {2,}")
#: a dash some PDF generators draw between the glyphs of a word ("Se—p 13" for "Sep 13")
_INNER_DASH = re.compile(r"(?<=\w)—+(?=\w)")
_TRAILING_DASH = re.compile(r"(?<=[\w#])—(?=\s|$)")
#: text drawn over a dotted leader comes out interleaved with its dots: ".In..v.o..ic..e" for "Invoice"
_DOTTED = re.compile(r"\.?(?:[^\s.]{1,2}\.{1,3}){3,}[^\s.]?")


@dataclass(frozen=True)
class Segment:
    text: str
    column: int


@dataclass(frozen=True)
class Line:
    index: int
    page: int
    text: str
    segments: tuple[Segment, ...]
    bold: bool = False  # the whole line was markdown bold (a title or a store's name on a receipt)

    @property
    def blank(self) -> bool:
        return not self.segments


def clean(text: str) -> str:
    """Unicode-normalised text without the artefacts of PDF text extraction."""
    text = unicodedata.normalize("NFKC", text).replace("\u00a0", " ").replace("\u202f", " ")
    text = _INNER_DASH.sub("", text)
    text = _DOTTED.sub(lambda m: m.group(0).replace(".", ""), text)
    return _TRAILING_DASH.sub("", text)


def split_segments(line: str) -> tuple[Segment, ...]:
    line = _LEADER.sub("   ", line.replace("\t", "  "))
    segments: list[Segment] = []
    position = 0
    for piece in _BREAK.split(line):
        start = line.find(piece, position) if piece else position
        position = start + len(piece)
        text = piece.strip(" :")
        text = text.strip()
        if text and not set(text) <= set("-:=|"):
            segments.append(Segment(text, start + (len(piece) - len(piece.lstrip()))))
    return tuple(segments)


def document_lines(pages: list[str]) -> list[Line]:
    """Every line of every page, in order (blank lines kept: they separate blocks)."""
    lines: list[Line] = []
    for page_number, page in enumerate(pages, start=1):
        for raw in clean(page).split("\n"):
            stripped = raw.strip()
            bold = stripped.startswith("**") and stripped.endswith("**") and stripped.count("**") == 2
            text = _HEADING.sub("", _MARKDOWN.sub("", raw.rstrip()))
            lines.append(Line(len(lines), page_number, text.strip(), split_segments(text), bold))
    return lines
