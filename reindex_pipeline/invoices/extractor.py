"""Read every candidate of a field, let the learned ranker choose, and store nothing it is unsure of.

The total, the invoice date, the currency, the issuer and the invoice number are chosen among the
candidates of :mod:`~reindex_pipeline.invoices.candidates` by :mod:`~reindex_pipeline.invoices.ranker`;
a field whose best candidate is below the field's threshold (where, leave-issuer-out, 95 % of stored values
were right) is left out. The subtotal and tax are stored only when they add up to the chosen total; the
customer is what a customer label introduces, when it is a name (not a label or an address).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product

from reindex_pipeline.domain.extraction import LineItem
from reindex_pipeline.invoices.amounts import Money, find_money
from reindex_pipeline.invoices.candidates import (
    Candidate,
    Page,
    addressee_below_sender,
    currency_candidates,
    date_candidates,
    issuer_candidates,
    number_candidates,
    organisation_names,
    read_page,
    total_candidates,
)
from reindex_pipeline.invoices.dates import find_dates
from reindex_pipeline.invoices.items import find_items, plausible_item
from reindex_pipeline.invoices.matching import (
    LabelHit,
    find_labels,
    mend_spacing,
    title_of,
    value_on_line,
    values_below,
)
from reindex_pipeline.invoices.parties import (
    NAME_CONFIDENCE,
    Party,
    customer_from,
    org_key,
    organisation_in,
    plausible_party,
)
from reindex_pipeline.invoices.ranker import Ranker, load
from reindex_pipeline.invoices.text import Line, document_lines

THRESHOLD = 0.5
#: the confidence of a total the ranker was unsure of but the page's arithmetic confirms (net + tax = gross
#: under their labels, or the line items adding up to a labelled total); measured by ./dev bench extraction
CORROBORATED = 0.95


@dataclass
class Found:
    """Field name -> (value, confidence); ``fields()`` keeps those at or above their field's threshold."""

    values: dict[str, tuple[str, float]] = field(default_factory=dict)
    items: list[LineItem] = field(default_factory=list)
    floors: dict[str, float] = field(default_factory=dict)
    corroborated: bool = False  # the total was stored on the page's arithmetic, below the ranker's threshold

    def set(self, name: str, value: str | None, confidence: float, floor: float = THRESHOLD) -> None:
        if value is not None and value != "":
            self.values[name] = (value, round(min(confidence, 0.99), 3))
            self.floors[name] = floor

    def fields(self) -> dict[str, tuple[str, float]]:
        return {k: v for k, v in self.values.items() if v[1] >= self.floors.get(k, THRESHOLD)}


#: the fields a learned ranker chooses (the others: rules over the labels)
RANKED = ("total", "invoice_date", "currency", "vendor_name", "invoice_number")


@dataclass
class Reading:
    """A document read once: its page, its language and every candidate of the ranked fields."""

    page: Page
    language: str
    sure: bool
    kind: str | None
    customer: Party | None
    candidates: dict[str, list[Candidate]]


def read_candidates(pages: list[str]) -> Reading:
    pages = [mend_spacing(p) for p in pages]
    lines = document_lines(pages)
    hits = find_labels(lines)
    kind, title_language, _ = title_of(lines)
    language, sure = _language(hits, title_language)
    page = read_page(pages, language, lines, hits)
    customer, customer_lines = customer_from(page.hits, page.lines, page.by_line)
    if customer is not None and not plausible_party(customer.name):
        customer = None
    if customer is None:  # no label names the customer: a letter's addressee, under its sender line
        letter = addressee_below_sender(page)
        if letter and plausible_party(letter[1]) and org_key(letter[1]) != org_key(letter[0]):
            customer = Party(organisation_in(letter[1]) or letter[1], NAME_CONFIDENCE)
    candidates = {
        "total": total_candidates(page),
        "invoice_date": date_candidates(page),
        "currency": currency_candidates(page, organisation_names(page)),
        "vendor_name": [
            c for c in issuer_candidates(page, customer_lines) if not customer or not _holds(c.value, customer.name)
        ],
        "invoice_number": number_candidates(page),
    }
    return Reading(page, language, sure, kind, customer, candidates)


def _holds(candidate: str, customer: str) -> bool:
    """The candidate is the customer's name, or holds it whole ("Felix Wolf SimFin Analytics GmbH" under
    "Billed to" holds the customer "SimFin Analytics GmbH"): the customer's block, not the issuer. A name of
    one word is only ever the same name (a customer misread as "Company" takes no "Seller Company" with it)."""
    have, want = org_key(candidate), org_key(customer)
    return bool(want) and (have == want or " " in want and f" {want} " in f" {have} ")


def read_invoice(pages: list[str], ranker: Ranker | None = None) -> Found:
    ranker = ranker or load()
    reading = read_candidates(pages)
    page = reading.page
    found = Found()
    hits, lines, by_line = page.hits, page.lines, page.by_line
    kind = reading.kind or ("invoice" if any(h.field == "total" for h in hits) else None)
    found.set("document_type", kind, 0.9)
    found.set("language", reading.language, 0.7 if reading.sure else 0.3)
    for name in RANKED:
        best = ranker.best(reading.candidates[name])
        if best is not None:
            found.set(name, best[0], best[1], ranker.fields[name].threshold)
    _due_date(found, hits, lines, by_line, page.languages, page.month_first)
    found.items = [item for item in find_items(lines) if plausible_item(item.description)]
    if _confirms(found, page) and "total" not in found.fields():
        # the ranker was unsure, but the page's own arithmetic confirms its choice
        found.set("total", found.values["total"][0], CORROBORATED)
        found.corroborated = True
    if reading.customer:
        found.set("customer_name", reading.customer.name, reading.customer.confidence)
    return found


def arithmetic_confirms(reading: Reading, total: str) -> bool:
    """The page's arithmetic confirms ``total`` (what :func:`read_invoice` stores a total on when the ranker
    is unsure of it; the bench counts it leave-issuer-out)."""
    found = Found()
    found.set("total", total, 0.0)
    found.items = [item for item in find_items(reading.page.lines) if plausible_item(item.description)]
    return _confirms(found, reading.page)


def _confirms(found: Found, page: Page) -> bool:
    """Subtotal and tax under their labels add up to the chosen total (and are stored), or the line items do."""
    if "total" not in found.values:
        return False
    return _parts(found, page.hits, page.lines, page.by_line) or _sum_of_items(found, page)


def _sum_of_items(found: Found, page: Page) -> bool:
    """The total is the sum of the line items, and a total label names it on its line."""
    amounts = [Decimal(i.amount) for i in found.items if i.amount]
    total = Decimal(found.values["total"][0])
    if not amounts or sum(amounts) != total:
        return False
    return any(
        hit.field == "total" and hit.strong and any(m.amount == total for m in find_money(hit.line.text))
        for hit in page.hits
    )


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


def _due_date(
    found: Found,
    hits: list[LabelHit],
    lines: list[Line],
    by_line: dict[int, list[LabelHit]],
    languages: tuple[str, ...],
    month_first: bool,
) -> None:
    for hit in hits:
        if hit.field != "due_date" or not hit.strong:
            continue
        for value in _values(hit, lines, by_line):
            dates = find_dates(value, languages, month_first)
            if dates:
                found.set("due_date", dates[0].value.isoformat(), 0.9)
                return


def _parts(found: Found, hits: list[LabelHit], lines: list[Line], by_line: dict[int, list[LabelHit]]) -> bool:
    """The subtotal and the tax, stored only when they add up to the chosen total (to the cent)."""
    if "total" not in found.values:
        return False
    total = Decimal(found.values["total"][0])
    candidates: dict[str, list[Money]] = {"subtotal": [], "tax": []}
    for hit in hits:
        if hit.field not in candidates:
            continue
        for value in _values(hit, lines, by_line)[:2]:
            money = [m for m in find_money(value) if m.explicit]
            if money:
                # a tax line reads "19% VAT on 100.00: 19.00": the tax is its last amount
                candidates[hit.field].append(money[-1] if hit.field == "tax" else money[0])
                break
    for subtotal, tax in product(candidates["subtotal"], candidates["tax"]):
        if abs(subtotal.amount + tax.amount - total) <= Decimal("0.01") and 0 <= tax.amount < total:
            found.set("subtotal", subtotal.text, 0.9)
            found.set("tax", tax.text, 0.9)
            return True
    return False
