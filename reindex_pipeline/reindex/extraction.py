"""Extraction: the pydantic schema, and the offline rule-based extractor for invoices and receipts.

The rules read OCR markdown (bold ``**Label:** value`` lines, ``## From`` / ``## Bill To`` blocks,
markdown tables) in English, German, French and Spanish. Pure: markdown in, ``Extraction`` out.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from reindex_pipeline.demo.corpus import LABELS

RULES_EXTRACTOR = "rules"
RULES_VERSION = "rules-1.0"


class LineItem(BaseModel):
    line: int
    description: str
    quantity: float | None = None
    unit_price: str | None = None
    amount: str | None = None


class Extraction(BaseModel):
    """What extraction yields for one document; also the OpenAI structured-output schema."""

    document_type: Literal["invoice", "receipt", "unknown"] = "unknown"
    language: str | None = None
    invoice_number: str | None = None
    invoice_date: str | None = None
    due_date: str | None = None
    currency: str | None = None
    vendor_name: str | None = None
    customer_name: str | None = None
    subtotal: str | None = None
    tax: str | None = None
    total: str | None = None
    line_items: list[LineItem] = Field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """The scalar fields that are set, as ``documents_data`` rows (name -> value)."""
        data = self.model_dump(exclude={"line_items"}, exclude_none=True)
        return {k: str(v) for k, v in data.items()}


_BOLD_FIELD = re.compile(r"^\*\*(?P<label>[^*:]+):\*\*\s*(?P<value>.+?)\s*$")
_MONEY = re.compile(r"(?P<amount>\d[\d,]*\.\d{2})(?:\s*(?P<currency>[A-Z]{3}))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _label_map() -> dict[str, tuple[str, str]]:
    """lower-cased label -> (field key, language)."""
    out: dict[str, tuple[str, str]] = {}
    for lang, labels in LABELS.items():
        for key, text in labels.items():
            out.setdefault(text.lower(), (key, lang))
    out["#"] = ("#", "en")  # the line-number column
    return out


_LABELS = _label_map()


def extract_rules(markdown_pages: list[str]) -> Extraction:
    """Fields and line items from a document's pages (all pages, in order)."""
    lines = [line.rstrip() for page in markdown_pages for line in page.split("\n")]
    result = Extraction()
    section: str | None = None
    section_lines: dict[str, list[str]] = {}
    header: list[str] | None = None
    for raw in lines:
        line = raw.strip()
        if line.startswith("# ") and result.document_type == "unknown":
            key, lang = _LABELS.get(line[2:].strip().lower(), (None, None))
            if key in ("invoice", "receipt"):
                result.document_type, result.language = key, lang
            continue
        if line.startswith("## "):
            section = _LABELS.get(line[3:].strip().lower(), (line[3:].strip().lower(), None))[0]
            header = None
            continue
        if (m := _BOLD_FIELD.match(line)) is not None:
            _take_field(result, m["label"].strip().lower(), m["value"])
            continue
        if line.startswith("**") and line.endswith("**") and result.vendor_name is None and ":" not in line:
            result.vendor_name = line.strip("*").strip()  # a receipt's store name
            continue
        if line.startswith("|"):
            header = _take_table_row(result, line, header)
            continue
        if line.startswith("**") and ":" in line:  # receipt total: **Total: 3.50 EUR**
            label, _, value = line.strip("*").partition(":")
            _take_field(result, label.strip().lower(), value)
            continue
        if line and section in ("from", "to"):
            section_lines.setdefault(section, []).append(line)
    if result.vendor_name is None and section_lines.get("from"):
        result.vendor_name = section_lines["from"][0]
    if section_lines.get("to"):
        result.customer_name = section_lines["to"][0]
    return result


def _take_field(result: Extraction, label: str, value: str) -> None:
    key = _LABELS.get(label, (None, None))[0]
    value = value.strip().strip("*").strip()
    if key in ("number", "receipt_no"):
        result.invoice_number = value
    elif key in ("date", "rdate"):
        result.invoice_date = (m.group(0) if (m := _DATE.search(value)) else value)
    elif key == "due":
        result.due_date = (m.group(0) if (m := _DATE.search(value)) else value)
    elif key == "currency":
        result.currency = value
    elif key in ("total", "subtotal", "tax"):
        _take_amount(result, key, value)


def _take_amount(result: Extraction, key: str, value: str) -> None:
    m = _MONEY.search(value)
    if m is None:
        return
    setattr(result, key, m["amount"])
    if m["currency"] and result.currency is None:
        result.currency = m["currency"]


def _cells(line: str) -> list[str]:
    return [c.strip().strip("*").strip() for c in line.strip().strip("|").split("|")]


def _take_table_row(result: Extraction, line: str, header: list[str] | None) -> list[str] | None:
    cells = _cells(line)
    if all(set(c) <= set("-: ") for c in cells):
        return header  # the |---| separator
    keys = [_LABELS.get(c.lower(), (None, None))[0] for c in cells]
    if "desc" in keys:
        return keys  # a line-item table header
    if len(cells) == 2:
        label = re.sub(r"\s*\d+%$", "", cells[0]).lower()  # "MwSt 19%" -> "mwst"
        key = _LABELS.get(label, (None, None))[0]
        if key in ("total", "subtotal", "tax"):
            _take_amount(result, key, cells[1])
        return header
    if header and "desc" in header and len(cells) == len(header):
        row = dict(zip(header, cells, strict=True))
        line_no = int(row["#"]) if row.get("#", "").isdigit() else len(result.line_items) + 1
        result.line_items.append(LineItem(
            line=line_no, description=row["desc"], quantity=_number(row.get("qty")),
            unit_price=row.get("unit"), amount=row.get("amount"),
        ))
    return header


def _number(text: str | None) -> float | None:
    try:
        return float((text or "").replace(",", ""))
    except ValueError:
        return None

