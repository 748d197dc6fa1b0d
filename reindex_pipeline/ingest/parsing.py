"""Turn a restored file's bytes into page texts (pure). PDF through pypdf; markdown and text as UTF-8.

Anything that cannot be read raises ``UnreadableFile`` with a message a person can act on.
"""

from __future__ import annotations

import io

PAGE_BREAK = "\f"


class UnreadableFile(ValueError):
    pass


def parse_pages(data: bytes, extension: str) -> list[str]:
    if not data:
        raise UnreadableFile("empty file (0 bytes)")
    if extension == ".pdf":
        return _pdf_pages(data)
    if extension in (".md", ".markdown", ".txt"):
        return _text_pages(data)
    raise UnreadableFile(f"unsupported file type {extension!r}")


def _pdf_pages(data: bytes) -> list[str]:
    if not data.lstrip()[:5] == b"%PDF-":
        raise UnreadableFile("not a PDF: the file does not start with %PDF- (a binary file named .pdf?)")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc
    if not pages:
        raise UnreadableFile("the PDF has no pages")
    if not any(pages):
        raise UnreadableFile("the PDF has no extractable text (a scan needs OCR, which a restore does not run)")
    return [p for p in pages if p] or pages


def _text_pages(data: bytes) -> list[str]:
    if b"\x00" in data:
        raise UnreadableFile("binary content in a text file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    pages = [p.strip() for p in text.split(PAGE_BREAK)]
    if not any(pages):
        raise UnreadableFile("the file holds only whitespace")
    return [p for p in pages if p]
