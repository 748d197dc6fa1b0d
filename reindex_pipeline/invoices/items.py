"""Line items: the rows under a table header that names at least a description and an amount or quantity
column ("Description | Qty | Unit price | Amount", "Beschreibung Menge Einzelpreis Gesamt", ...).

A row is a line with a text segment and at least one amount; the amount is its last money value, the
quantity the number in the quantity column. The table ends at a total or subtotal label, or after three
lines without an amount once rows have started.
"""

from __future__ import annotations

import re

from reindex_pipeline.domain.extraction import LineItem
from reindex_pipeline.invoices.amounts import find_money
from reindex_pipeline.invoices.labels import ITEM_COLUMNS
from reindex_pipeline.invoices.text import Line

_COLUMN = {label: column for column, labels in ITEM_COLUMNS.items() for label in labels}
#: each header label as a whole word, longest first (compiled once: a page has hundreds of segments)
_LABELS = [(label, re.compile(rf"(?<!\w){re.escape(label)}(?!\w)")) for label in sorted(_COLUMN, key=len, reverse=True)]
_STOP = re.compile(
    r"(?<!\w)(sub-?total|total|summe|gesamtbetrag|zwischensumme|gesamtnetto|razem|totaal|subtotaal|"
    r"sous-total|base imponible|importe total|montant total|summary)(?!\w)",
    re.IGNORECASE,
)


_NOT_A_PRODUCT = re.compile(
    r"(?<!\w)(?:vat|tax|mwst|ust|tva|btw|iva|gst|sst|sub-?total|total|totaal|summe|gesamt\w*|netto|brutto|"
    r"exclusief|inclusief|excl|incl|discount|rabatt|remise|korting|shipping fee|rounding|change|cash)(?!\w)",
    re.IGNORECASE,
)


def plausible_item(description: str) -> bool:
    """A product or service, not a tax, subtotal or payment row ("BTW 21%", "Exclusief BTW € 593,36")."""
    return any(c.isalpha() for c in description) and not _NOT_A_PRODUCT.search(description)


def _header(line: Line) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    for segment in line.segments:
        key = re.sub(r"\s*\(.*?\)\s*", " ", segment.text.lower()).strip()
        column = _COLUMN.get(key)
        if column is None:
            # a plain-text header on one segment: "Description Qty Unit price Amount"
            for label, pattern in _LABELS:
                if label in key and pattern.search(key):
                    columns.setdefault(_COLUMN[label], segment.column + key.find(label))
            continue
        columns.setdefault(column, segment.column)
        columns.setdefault(f"#{column}", line.segments.index(segment))
    columns["#cells"] = len(line.segments)
    if "description" in columns and ("amount" in columns or "quantity" in columns) and len(columns) >= 2:
        return columns
    return None


def find_items(lines: list[Line]) -> list[LineItem]:
    items: list[LineItem] = []
    header: dict[str, int] | None = None
    quiet = 0
    for line in lines:
        if line.blank:
            continue
        found = _header(line)
        if found:
            header, quiet = found, 0
            continue
        if header is None:
            continue
        if _STOP.search(line.segments[0].text) or quiet >= 3:
            header = None
            continue
        row = _row(line, header, len(items) + 1)
        if row is None:
            quiet += 1 if items else 0
            continue
        quiet = 0
        items.append(row)
    return items


def _row(line: Line, header: dict[str, int], number: int) -> LineItem | None:
    texts = [s for s in line.segments if not find_money(s.text) or any(c.isalpha() for c in s.text)]
    monies = [m for s in line.segments for m in find_money(s.text) if m.explicit]
    if not monies or not texts:
        return None
    description_segment = next((s for s in texts if any(c.isalpha() for c in s.text)), None)
    if description_segment is None:
        return None
    description = description_segment.text
    position = None
    if re.fullmatch(r"\d{1,3}", line.segments[0].text) and len(line.segments) > 1:
        position = int(line.segments[0].text)  # a leading position number column
    # plain text puts the whole row in one segment: the description is the text before the first number
    lead = re.match(r"^(?:\d{1,3}\s+)?(.*?[^\d\s.,€$£-][^\d€$£]*?)\s+[-\d€$£(]", description)
    if len(line.segments) == 1 and lead:
        description = lead.group(1)
    quantity = None
    if line.text.startswith("|") and "#quantity" in header and len(line.segments) == header["#cells"]:
        # a markdown table: cells line up by position, not by character column
        cell = line.segments[header["#quantity"]].text
        if re.fullmatch(r"\d+(?:[.,]\d+)?", cell):
            quantity = float(cell.replace(",", "."))
    elif "quantity" in header:
        column = header["quantity"]
        for segment in line.segments:
            if abs(segment.column - column) <= 12 and re.fullmatch(r"\d+(?:[.,]\d+)?(?:\s\w{1,5}\.?)?", segment.text):
                quantity = float(segment.text.split()[0].replace(",", "."))
                break
    unit_price = monies[-2].text if len(monies) >= 2 else None
    return LineItem(
        line=position or number,
        description=description.strip(" -"),
        quantity=quantity,
        unit_price=unit_price,
        amount=monies[-1].text,
    )
