"""OCR of scanned pages and photos: Tesseract (the Debian ``tesseract-ocr`` package and its language packs,
through ``pytesseract``), offline. PDF pages are rendered by ``pypdfium2`` (PDFium, inside its wheel).

The text keeps the page's layout as the PDF text layer does (``pdfplumber``'s layout mode): Tesseract's
words are put back into rows by their height on the page and into columns by their left edge, so a value
stays beside or under its label and the extractor reads an OCR'd page as it reads a born-digital one.
Bounded: at most ``MAX_OCR_PAGES`` pages a file, ``PAGE_TIMEOUT_S`` seconds a page.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from statistics import median

#: The languages of the documents the extractor reads (Tesseract's codes; each needs its language pack).
LANGUAGES = "eng+deu+fra+nld+pol+spa+msa"
DPI = 300
PAGE_TIMEOUT_S = 60
MAX_OCR_PAGES = 50
#: Words Tesseract is less sure of than this (0-100) are dropped: specks and ruling lines read as letters.
MIN_WORD_CONFIDENCE = 30
#: Larger images are scaled down to this many pixels on their long side before OCR (a 48 MP phone photo
#: takes minutes and reads no better than at A4 300 dpi).
MAX_SIDE_PX = 3600


class OcrUnavailable(RuntimeError):
    """Tesseract (or a language pack) is not installed: the message says what to install."""


class OcrFailed(ValueError):
    """The engine could not read the image (corrupt, timed out)."""


@dataclass(frozen=True)
class Word:
    text: str
    left: int
    top: int
    width: int
    height: int


def available() -> str | None:
    """None when OCR can run; else what to install, in one line."""
    if shutil.which("tesseract") is None:
        return "OCR needs Tesseract: install the Debian packages tesseract-ocr and its language packs (./dev does)"
    import pytesseract

    missing = set(LANGUAGES.split("+")) - set(pytesseract.get_languages(config=""))
    if missing:
        packs = " ".join(f"tesseract-ocr-{code}" for code in sorted(missing))
        return f"OCR needs the Tesseract language packs: {packs}"
    return None


def ocr_image(image) -> str:
    """A PIL image's text, in its layout."""
    import pytesseract

    problem = available()
    if problem:
        raise OcrUnavailable(problem)
    image = _fit(image)
    try:
        data = pytesseract.image_to_data(
            image, lang=LANGUAGES, output_type=pytesseract.Output.DICT, timeout=PAGE_TIMEOUT_S
        )
    except RuntimeError as exc:  # pytesseract's timeout
        raise OcrFailed(f"OCR took longer than {PAGE_TIMEOUT_S} s on one page") from exc
    except pytesseract.TesseractError as exc:
        raise OcrFailed(f"OCR failed: {exc.message.strip().splitlines()[-1] if exc.message else exc}") from exc
    words = [
        Word(text.strip(), int(left), int(top), int(width), int(height))
        for text, conf, left, top, width, height in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        )
        if text.strip() and float(conf) >= MIN_WORD_CONFIDENCE
    ]
    return layout_text(words)


def ocr_image_bytes(data: bytes) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            frames = getattr(image, "n_frames", 1)
            if frames > 1:  # a multi-page TIFF: each frame a page
                raise OcrFailed(f"a multi-page image ({frames} frames): restore it as a PDF")
            return ocr_image(_upright(image))
    except UnidentifiedImageError:
        raise OcrFailed("not a readable image (corrupt, or not the image type its name says)") from None
    except (OSError, SyntaxError) as exc:
        raise OcrFailed(f"not a readable image: {type(exc).__name__}: {exc}") from None


def render_pdf_page(data: bytes, index: int):
    """Page ``index`` of a PDF as a PIL image at :data:`DPI`."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        return pdf[index].render(scale=DPI / 72).to_pil()
    finally:
        pdf.close()


def layout_text(words: list[Word]) -> str:
    """Words back into lines and columns: a row is the words whose vertical centres lie within half a
    line's height of each other; words closer than two characters are one phrase (one space between them),
    a word further off starts at the column its left edge falls in (one column: the page's median character
    width), at least two spaces on, which is how the extractor tells columns apart."""
    if not words:
        return ""
    char = median(w.width / len(w.text) for w in words) or 1.0
    line_height = median(w.height for w in words) or 1
    rows: list[list[Word]] = []
    for word in sorted(words, key=lambda w: w.top + w.height / 2):
        centre = word.top + word.height / 2
        if rows and abs(centre - _centre(rows[-1])) <= line_height / 2:
            rows[-1].append(word)
        else:
            rows.append([word])
    lines: list[str] = []
    previous_bottom = None
    for row in rows:
        top = min(w.top for w in row)
        if previous_bottom is not None and top - previous_bottom > 1.5 * line_height:
            lines.append("")  # a gap on the page stays a blank line
        text, end = "", None
        for word in sorted(row, key=lambda w: w.left):
            if end is not None and word.left - end < 2 * char:
                text += " " + word.text  # the next word of the same phrase: one space
            else:  # a new column: where its left edge is, at least two spaces after the last
                column = round(word.left / char)
                text += " " * max(column - len(text), 2 if text else 0) + word.text
            end = word.left + word.width
        lines.append(text)
        previous_bottom = max(w.top + w.height for w in row)
    return "\n".join(lines)


def _centre(row: list[Word]) -> float:
    return median(w.top + w.height / 2 for w in row)


def _fit(image):
    image = image.convert("L")
    side = max(image.size)
    if side > MAX_SIDE_PX:
        scale = MAX_SIDE_PX / side
        image = image.resize((round(image.width * scale), round(image.height * scale)))
    return image


def _upright(image):
    """A phone photo as it was held (its EXIF orientation applied)."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)
