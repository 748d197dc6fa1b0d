"""Weigh every candidate into one extraction with a confidence per field; below the threshold, null.

Amounts: the candidates under total, subtotal and tax labels; a combination where subtotal + tax = total
wins (and raises every confidence), else the largest amount under a total label. Dates: a date labelled
as the invoice date, else the first date of the document. Currency: a currency label, else the total's
own currency, else the one the document names most.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from itertools import product

from reindex_pipeline.invoices.amounts import Money, currencies_in, find_money
from reindex_pipeline.invoices.dates import find_dates
from reindex_pipeline.invoices.items import find_items
from reindex_pipeline.invoices.matching import LabelHit, find_labels, title_of, value_on_line, values_below
from reindex_pipeline.invoices.parties import customer_from, vendor_from
from reindex_pipeline.invoices.text import Line, document_lines
from reindex_pipeline.reindex.extraction import LineItem

THRESHOLD = 0.5
_ID = re.compile(r"#?\s?([A-Z0-9][A-Za-z0-9/_.-]*\d[A-Za-z0-9/_.-]*(?:\s\d{3,6}(?!\d))?|\d[A-Za-z0-9/_.-]*)")


@dataclass
class Found:
    """Field name -> (value, confidence); ``fields()`` keeps those at or above the threshold."""

    values: dict[str, tuple[str, float]] = field(default_factory=dict)
    items: list[LineItem] = field(default_factory=list)

    def set(self, name: str, value: str | None, confidence: float) -> None:
        if value is not None and value != "":
            self.values[name] = (value, round(min(confidence, 0.99), 2))

    def fields(self, threshold: float = THRESHOLD) -> dict[str, tuple[str, float]]:
        return {k: v for k, v in self.values.items() if v[1] >= threshold}


def read_invoice(pages: list[str]) -> Found:
    lines = document_lines(pages)
    hits = find_labels(lines)
    by_line: dict[int, list[LabelHit]] = {}
    for hit in hits:
        by_line.setdefault(hit.line.index, []).append(hit)
    found = Found()

    kind, title_language, title_line = title_of(lines)
    language, sure = _language(hits, title_language)
    found.set("document_type", kind or ("invoice" if any(h.field == "total" for h in hits) else None), 0.9)
    found.set("language", language, 0.7 if sure else 0.3)
    languages = tuple(dict.fromkeys([language, "en"]))
    text = "\n".join(line.text for line in lines)
    dollar = "$" in text
    month_first = language == "en" and dollar

    _number(found, hits, lines, by_line, title_line)
    _dates(found, hits, lines, by_line, languages, month_first)
    money = _amounts(found, hits, lines, by_line)
    _currency(found, hits, by_line, money, text)
    customer, customer_lines = customer_from(hits, lines, by_line)
    vendor = vendor_from(hits, lines, by_line, customer, customer_lines)
    if customer:
        found.set("customer_name", customer.name, customer.confidence)
    if vendor:
        found.set("vendor_name", vendor.name, vendor.confidence)
    found.items = find_items(lines)
    return found


def _language(hits: list[LabelHit], title_language: str | None) -> tuple[str, bool]:
    """The language most labels are in (labels shared by several languages do not vote); English, unsure,
    when nothing votes."""
    votes: Counter[str] = Counter()
    for hit in hits:
        if len(hit.languages) == 1:
            votes[hit.languages[0]] += 1
    if title_language:
        votes[title_language] += 2
    return (votes.most_common(1)[0][0], True) if votes else ("en", False)


def _values(hit: LabelHit, lines: list[Line], by_line: dict[int, list[LabelHit]]) -> list[str]:
    same = value_on_line(hit, by_line[hit.line.index])
    return ([same] if same else []) + values_below(hit, lines, depth=2)


def _number(
    found: Found, hits: list[LabelHit], lines: list[Line], by_line: dict[int, list[LabelHit]], title_line: Line | None
) -> None:
    for hit in hits:
        if hit.field != "invoice_number" or not hit.strong:
            continue
        for value in _values(hit, lines, by_line)[:2]:
            m = _ID.match(value.strip())
            if m and len(m.group(1)) <= 40:
                found.set("invoice_number", m.group(1).strip(), 0.9)
                return
    if title_line is not None:  # "Invoice FI15636047324"
        for segment in title_line.segments:
            words = segment.text.split()
            if len(words) == 2 and _ID.fullmatch(words[1]) and any(c.isdigit() for c in words[1]):
                found.set("invoice_number", words[1], 0.7)
                return


def _dates(
    found: Found,
    hits: list[LabelHit],
    lines: list[Line],
    by_line: dict[int, list[LabelHit]],
    languages: tuple[str, ...],
    month_first: bool,
) -> None:
    def first_date(hit: LabelHit) -> date | None:
        for value in _values(hit, lines, by_line):
            dates = find_dates(value, languages, month_first)
            if dates:
                return dates[0].value
        return None

    for name, label in (("invoice_date", "invoice_date"), ("due_date", "due_date")):
        for hit in hits:
            if hit.field == label and hit.strong and (value := first_date(hit)) is not None:
                found.set(name, value.isoformat(), 0.9)
                break
    if "invoice_date" not in found.values:
        for line in lines:
            dates = find_dates(line.text, languages, month_first)
            if dates:
                found.set("invoice_date", dates[0].value.isoformat(), 0.6)
                break


def _amounts(
    found: Found, hits: list[LabelHit], lines: list[Line], by_line: dict[int, list[LabelHit]]
) -> dict[str, list[tuple[Money, bool]]]:
    """Candidates per amount field: (money, strong label)."""
    candidates: dict[str, list[tuple[Money, bool]]] = {"total": [], "subtotal": [], "tax": []}
    for hit in hits:
        if hit.field not in candidates:
            continue
        for value in _values(hit, lines, by_line)[:2]:
            money = [m for m in find_money(value) if m.explicit]
            if money:
                # a tax line reads "19% VAT on 100.00: 19.00": the tax is its last amount
                chosen = money[-1] if hit.field == "tax" else money[0]
                candidates[hit.field].append((chosen, hit.strong))
                break
    totals = [m for m, strong in candidates["total"] if strong] or [m for m, _ in candidates["total"]]
    subtotals = [m for m, strong in candidates["subtotal"] if strong] or [m for m, _ in candidates["subtotal"]]
    taxes = [m for m, _ in candidates["tax"]]
    consistent = _consistent(totals, subtotals, taxes)
    if consistent:
        total, subtotal, tax = consistent
        found.set("total", total.text, 0.95)
        found.set("subtotal", subtotal.text, 0.9)
        found.set("tax", tax.text, 0.9)
        candidates["chosen"] = [(total, True)]
        return candidates
    if totals:
        total = max(totals, key=lambda m: m.amount)
        distinct = {m.amount for m in totals if m.amount > 0}
        strong = any(s for _, s in candidates["total"])
        found.set("total", total.text, (0.9 if len(distinct) <= 1 else 0.75) if strong else 0.55)
        candidates["chosen"] = [(total, strong)]
        if subtotals:
            subtotal = subtotals[0]
            found.set("subtotal", subtotal.text, 0.8 if subtotal.amount <= total.amount else 0.3)
            if subtotal.amount == total.amount:
                found.set("tax", "0.00", 0.6)
    elif subtotals:
        found.set("subtotal", subtotals[0].text, 0.7)
    return candidates


def _consistent(totals: list[Money], subtotals: list[Money], taxes: list[Money]) -> tuple[Money, Money, Money] | None:
    """The largest total with a subtotal and a tax that add up to it (to the cent)."""
    for total, subtotal, tax in sorted(product(totals, subtotals, taxes), key=lambda c: -c[0].amount):
        if (
            total.amount > 0
            and abs(subtotal.amount + tax.amount - total.amount) <= Decimal("0.01")
            and tax.amount < total.amount
        ):
            return total, subtotal, tax
    return None


def _currency(
    found: Found,
    hits: list[LabelHit],
    by_line: dict[int, list[LabelHit]],
    money: dict[str, list[tuple[Money, bool]]],
    text: str,
) -> None:
    for hit in hits:
        if hit.field == "currency" and hit.strong:
            codes = currencies_in(value_on_line(hit, by_line[hit.line.index]).upper())
            if codes:
                found.set("currency", codes[0], 0.95)
                return
    chosen = money.get("chosen")
    if chosen:
        total = chosen[0][0]
        line_codes = [c for c in currencies_in(_line_of(total, hits, by_line)) if c]
        if total.currency and not total.ambiguous_currency:
            found.set("currency", total.currency, 0.9)
            return
        if line_codes:
            found.set(
                "currency", line_codes[0], 0.85 if line_codes[0] != "USD" or not total.ambiguous_currency else 0.7
            )
            return
    codes = Counter(currencies_in(text))
    if codes:
        code, _ = codes.most_common(1)[0]
        found.set("currency", code, 0.6)


def _line_of(total: Money, hits: list[LabelHit], by_line: dict[int, list[LabelHit]]) -> str:
    for hit in hits:
        if hit.field == "total":
            value = value_on_line(hit, by_line[hit.line.index])
            if any(m.amount == total.amount for m in find_money(value)):
                return hit.line.text
    return ""
