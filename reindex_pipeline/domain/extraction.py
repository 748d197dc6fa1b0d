"""The extraction schema: what extraction yields for one document (also the OpenAI structured-output schema).

Amounts are plain decimals ("1234.50"), dates ISO ("2023-04-13"), currencies ISO 4217 codes. Each field of
the offline extractor carries a confidence; a field below its threshold is left out (null).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, PrivateAttr


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
