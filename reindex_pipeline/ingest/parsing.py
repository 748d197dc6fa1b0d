"""Turn a restored file's bytes into page texts. PDF through pdfplumber (pypdf as the fallback), pages
without a text layer and images through OCR (:mod:`reindex_pipeline.ingest.ocr`); markdown and text as
UTF-8.

PDF text keeps its layout (``pdfplumber``'s layout mode): columns stay apart as runs of spaces and table
rows stay on one line, which is what lets the extractor find a value beside or under its label. The left
margin, trailing spaces and runs of blank lines are trimmed. pypdf's plain extraction is the fallback for
a PDF pdfplumber cannot read. Glyphs without a text mapping (``(cid:12)``) count as no text.

Anything that cannot be read raises ``UnreadableFile`` with a message a person can act on. Size is bounded so a
restore costs bounded memory and time: at most ``MAX_FILE_BYTES`` per file, ``MAX_PDF_PAGES`` per PDF
(measured: pdfplumber's layout takes ~70 ms a page) and ``ocr.MAX_OCR_PAGES`` pages through OCR (a few
seconds each).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from reindex_pipeline.ingest import ocr

PAGE_BREAK = "\f"
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PDF_PAGES = 300
#: Image types a restore takes (each one page, through OCR).
IMAGES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CID = re.compile(r"\(cid:\d+\)")


class UnreadableFile(ValueError):
    pass


def check_size(size: int | None) -> None:
    """Refuse a file over ``MAX_FILE_BYTES`` before it is read (``size`` from the bucket's listing)."""
    if size is not None and size > MAX_FILE_BYTES:
        raise UnreadableFile(
            f"file too large: {size / 2**20:.1f} MB; a restore takes files up to {MAX_FILE_BYTES // 2**20} MB "
            "(split it, or upload it through the app)"
        )


@dataclass(frozen=True)
class ParsedDocument:
    pages: list[str]
    ocr_pages: int = 0  # pages whose text came from OCR (a scan's, a photo's)
    einvoice_xml: bytes | None = None  # an e-invoice's XML: a Factur-X / ZUGFeRD PDF's attachment, or the file
    einvoice_syntax: str | None = None


def parse_pages(data: bytes, extension: str) -> list[str]:
    return parse_document(data, extension).pages


def parse_document(data: bytes, extension: str) -> ParsedDocument:
    """A file's page texts: a PDF's text layer (its pages without one through OCR), an image through OCR,
    markdown and text as they are."""
    if not data:
        raise UnreadableFile("empty file (0 bytes)")
    check_size(len(data))
    if extension == ".pdf":
        return _pdf_pages(data)
    if extension in (".md", ".markdown", ".txt"):
        return ParsedDocument(_text_pages(data))
    if extension in IMAGES:
        return ParsedDocument([_ocr(lambda: ocr.ocr_image_bytes(data), "the image")], ocr_pages=1)
    if extension == ".xml":
        return _xml_invoice(data)
    raise UnreadableFile(f"unsupported file type {extension!r}")


def _xml_invoice(data: bytes) -> ParsedDocument:
    """A standalone e-invoice (XRechnung, UBL, CII): its fields from the XML; its page a readable rendering."""
    from reindex_pipeline.invoices.einvoice import InvalidEInvoice, read_einvoice, render

    try:
        invoice = read_einvoice(data)
    except InvalidEInvoice as exc:
        raise UnreadableFile(str(exc)) from None
    return ParsedDocument(
        [render(invoice.extraction, invoice.syntax)], einvoice_xml=data, einvoice_syntax=invoice.syntax
    )


def _attached_invoice(data: bytes) -> tuple[bytes, str] | None:
    """A Factur-X / ZUGFeRD / XRechnung PDF's embedded invoice XML (``factur-x``'s reader), if it is one the
    e-invoice reader knows; a PDF without one, or with one it cannot read, is read by its pages alone."""
    from facturx import get_xml_from_pdf

    from reindex_pipeline.invoices.einvoice import InvalidEInvoice, read_einvoice

    try:
        _, xml = get_xml_from_pdf(data, check_xsd=False)
    except Exception:  # factur-x raises on PDFs it cannot open; pdfplumber read the pages already
        return None
    if not xml:
        return None
    try:
        return xml, read_einvoice(xml).syntax
    except InvalidEInvoice:
        return None


def _pdf_pages(data: bytes) -> ParsedDocument:
    if not data.lstrip()[:5] == b"%PDF-":
        raise UnreadableFile("not a PDF: the file does not start with %PDF- (a binary file named .pdf?)")
    try:
        pages = _layout_pages(data)
    except UnreadableFile:
        raise
    except Exception:  # pdfminer raises many types on damaged files; pypdf gets the last word below
        pages = _plain_pages(data)
    if not pages:
        raise UnreadableFile("the PDF has no pages")
    scanned = [i for i, page in enumerate(pages) if not page]
    if len(scanned) > ocr.MAX_OCR_PAGES:
        raise UnreadableFile(
            f"{len(scanned)} pages without a text layer; a restore OCRs up to {ocr.MAX_OCR_PAGES} pages a file "
            "(split it)"
        )
    for i in scanned:
        pages[i] = _ocr(lambda i=i: ocr.ocr_image(ocr.render_pdf_page(data, i)), f"page {i + 1}")
    if not any(pages):
        raise UnreadableFile("no text found: the PDF has no text layer and OCR read nothing on its pages")
    attached = _attached_invoice(data)
    return ParsedDocument(
        [p for p in pages if p],
        ocr_pages=len(scanned),
        einvoice_xml=attached[0] if attached else None,
        einvoice_syntax=attached[1] if attached else None,
    )


def _ocr(read, what: str) -> str:
    try:
        text = read()
    except ocr.OcrUnavailable as exc:
        raise UnreadableFile(str(exc)) from None
    except ocr.OcrFailed as exc:
        raise UnreadableFile(f"{what}: {exc}") from None
    except Exception as exc:  # PDFium on a page it cannot render
        raise UnreadableFile(f"{what} could not be rendered for OCR: {type(exc).__name__}: {exc}") from None
    text = tidy_layout(text)
    if not text and what == "the image":
        raise UnreadableFile("no text found in the image (OCR read nothing)")
    return text


def _layout_pages(data: bytes) -> list[str]:
    import pdfplumber

    with pdfplumber.open(io.BytesIO(data)) as pdf:
        _check_pages(len(pdf.pages))
        pages = []
        for page in pdf.pages:
            pages.append(_readable(tidy_layout(page.extract_text(layout=True) or "")))
            page.close()  # pdfplumber caches every page's objects otherwise: memory grows with the page count
        return pages


def _check_pages(count: int) -> None:
    if count > MAX_PDF_PAGES:
        raise UnreadableFile(f"too many pages: {count}; a restore takes PDFs of up to {MAX_PDF_PAGES} pages (split it)")


def _plain_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        _check_pages(len(reader.pages))
        return [_readable((page.extract_text() or "").strip()) for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFile(f"corrupt PDF: {type(exc).__name__}: {exc}") from exc


def _readable(text: str) -> str:
    """Empty when most of the page is unmapped glyphs (``(cid:N)``): text nobody can read or search.
    Control characters a font maps some glyphs to (NUL and the like, which PostgreSQL text cannot hold)
    become spaces."""
    unmapped = sum(len(glyph) for glyph in _CID.findall(text))
    return "" if unmapped > len(text) / 2 else _CONTROL.sub(" ", _CID.sub("", text))


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


def tidy_layout(text: str) -> str:
    """Layout text without its left margin, trailing spaces, tabs or runs of blank lines."""
    lines = [line.replace("\t", " ").rstrip() for line in text.split("\n")]
    margin = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    out: list[str] = []
    for line in lines:
        line = line[margin:]
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    return "\n".join(out).strip("\n")
