"""Extraction: the pydantic schema, and the offline extractor for invoices and receipts.

The offline extractor (``reindex_pipeline.invoices``) reads the page text any document yields (PDF text
with its layout, OCR markdown, plain text) in English, German, French, Spanish, Dutch and Polish, with
no template per issuer: candidates per field, ranked by a small learned model. Amounts are plain decimals
("1234.50"), dates ISO ("2023-04-13"), currencies ISO 4217 codes. Each field carries a confidence; a field
below its threshold is left out (null).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr

RULES_EXTRACTOR = "rules"
#: the learned ranker the extractor ships (``invoices/ranker.json``; a test checks they agree)
RANKER_VERSION = "ranker-3486afff7b"
#: 2.0: generic multilingual rules over any page text, confidences, normalised amounts (was: demo markdown only);
#: 3.0: candidates per field ranked by a model learned leave-issuer-out, nothing stored below its threshold;
#: 3.1: labels a PDF spaced apart after their capital ("F actuurnummer") joined before anything is read
RULES_VERSION = f"rules-3.2+{RANKER_VERSION}"


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
    _confidence: dict[str, float] = PrivateAttr(default_factory=dict)  # not part of the OpenAI schema

    def fields(self) -> dict[str, str]:
        """The scalar fields that are set, as ``documents_data`` rows (name -> value)."""
        data = self.model_dump(exclude={"line_items"}, exclude_none=True)
        return {k: str(v) for k, v in data.items()}

    def numbered_items(self) -> list[LineItem]:
        """The line items under unique line numbers: as given when they are unique and positive, else by their
        order (a model may number every line 1, or leave 0)."""
        lines = [item.line for item in self.line_items]
        if len(set(lines)) == len(lines) and all(line > 0 for line in lines):
            return list(self.line_items)
        return [item.model_copy(update={"line": i}) for i, item in enumerate(self.line_items, start=1)]

    def confidence(self, name: str) -> float | None:
        """How sure the offline extractor is of a field (0-1); None when the extractor gives none (OpenAI)."""
        return self._confidence.get(name)


def extract_rules(pages: list[str]) -> Extraction:
    """Fields, confidences and line items from a document's pages (all pages, in order)."""
    from reindex_pipeline.invoices.extractor import read_invoice

    found = read_invoice(pages)
    kept = found.fields()
    values = {name: value for name, (value, _) in kept.items()}
    if values.get("document_type") not in ("invoice", "receipt"):
        values.pop("document_type", None)
    result = Extraction(**values, line_items=found.items)
    result._confidence = {name: confidence for name, (_, confidence) in kept.items()}
    return result
