"""Every value a field could take on a page, with what the layout says about it (pure).

A :class:`Candidate` is one reading of a field (an amount for the total, a date, a currency, a party's
name, an invoice number) with numeric features: the label beside, above or in the header row of it, its
position on the page, the words of its line, how often the document repeats it, and arithmetic agreement
(net + tax = gross). :mod:`reindex_pipeline.invoices.ranker` weighs the features into a probability; the
weights are learned, leave-issuer-out, by ``./dev bench extraction --write``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from reindex_pipeline.invoices.amounts import Money, find_money
from reindex_pipeline.invoices.currencies import (
    DOLLAR_DEFAULT,
    countries_in,
    country_currencies,
    is_legal_form,
    legal_form_countries,
    markers_in,
)
from reindex_pipeline.invoices.dates import find_dates, month_first
from reindex_pipeline.invoices.items import find_items
from reindex_pipeline.invoices.matching import LabelHit, accent_tolerant, find_labels, title_of
from reindex_pipeline.invoices.parties import has_legal_form, opens_with_label, org_key, organisation_in, place_names
from reindex_pipeline.invoices.text import Line, Segment, document_lines


def _words(*words: str) -> re.Pattern[str]:
    """Whole words, any case, accents optional ("à payer" matches "A PAYER")."""
    return re.compile(r"(?<!\w)(?:" + "|".join(accent_tolerant(w) for w in words) + r")(?!\w)", re.IGNORECASE)


# Keyword lexicons: the words of the six languages (and Malay, for receipts) that say what a line holds.
GROSS = _words(
    r"grand",
    r"due",
    r"payable",
    r"ttc",
    r"brutto",
    r"incl\.?",
    r"inkl\.?",
    r"paid",
    r"à payer",
    r"a pagar",
    r"te betalen",
    r"do zapłaty",
    r"zu zahlen",
    r"zahlbetrag",
    r"endbetrag",
    r"gesamtbetrag",
    r"balance",
    r"invoice total",
    r"amount",
    r"montant",
    r"importe",
    r"bedrag",
    r"rechnungsbetrag",
    r"razem",
    r"gross",
)
NET = _words(
    r"net",
    r"netto",
    r"ht",
    r"excl\.?",
    r"exkl\.?",
    r"exclusief",
    r"sub-?total",
    r"zwischensumme",
    r"sous-total",
    r"subtotaal",
    r"before tax",
    r"hors taxes?",
    r"base imponible",
    r"excluding",
    r"ex\.? tax",
    r"ohne",
    r"line total",
    r"lines total",
    r"positionssumme",
)
# "net" that may mean what is due, tax included: a receipt's "NET TOTAL" (an invoice's "Net total" is before
# tax: a feature, weighed by the ranker), French "net à payer" (always what is due: never a net amount)
NET_DUE = _words(r"nett? total", r"net à payer", r"net payable")
NET_PAYABLE = _words(r"net à payer")


def _net(words: str) -> bool:
    """``words`` name a net amount (before tax): a net word that is not part of "net à payer"."""
    return bool(NET.search(NET_PAYABLE.sub(" ", words)))


def _rate_only(words: str) -> bool:
    """A rate's line ("GST 6% 0.42"), not a total that names its rate ("TOTAL INCL. GST 6.00%")."""
    return "%" in words and not GROSS.search(words)


TAX = _words(
    r"vat",
    r"tax",
    r"mwst\.?",
    r"ust\.?",
    r"umsatzsteuer",
    r"mehrwertsteuer",
    r"tva",
    r"btw",
    r"iva",
    r"gst",
    r"sst",
    r"hst",
    r"podatek",
    r"steuer",
)
TENDER = _words(
    r"cash",
    r"change",
    r"tendered",
    r"tunai",
    r"baki",
    r"rounding",
    r"round",
    r"card",
    r"visa",
    r"mastercard",
    r"payment",
    r"bezahlt",
    r"rückgeld",
    r"gegeben",
    r"espèces",
    r"rendu",
    r"efectivo",
    r"cambio",
    r"wisselgeld",
    r"reszta",
    r"gotówka",
    r"debit",
    r"credit",
    r"deposit",
    r"voucher",
)
CHANGE = _words(
    r"change",
    r"baki",
    r"rückgeld",
    r"wechselgeld",
    r"rendu",
    r"monnaie rendue",
    r"cambio",
    r"vuelto",
    r"wisselgeld",
    r"reszta",
)
# What was paid before the invoice (EN 16931's "paid amount", BT-113): the amount due after it is no total.
PREPAID = _words(
    r"prepaid",
    r"prepayment",
    r"pre-paid",
    r"advance payment",
    r"already paid",
    r"acompte",
    r"déjà payé",
    r"anzahlung",
    r"vorauszahlung",
    r"bereits (?:be)?zahlt",
    r"anticipo",
    r"ya pagado",
    r"vooruitbetaald",
    r"vooruitbetaling",
    r"aanbetaling",
    r"reeds betaald",
    r"zaliczka",
)
DISCOUNT = _words(r"discount", r"rabatt", r"remise", r"rabais", r"descuento", r"korting", r"rabat", r"saving")
ITEM_WORDS = _words(r"qty", r"quantity", r"menge", r"qté", r"cantidad", r"aantal", r"ilość", r"unit", r"price", r"pcs?")
OTHER_DATE = _words(
    r"order",
    r"delivery",
    r"period",
    r"service",
    r"leistung\w*",
    r"liefer\w*",
    r"bestell\w*",
    r"zeitraum",
    r"période",
    r"livraison",
    r"commande",
    r"prestation",
    r"entrega",
    r"pedido",
    r"levering",
    r"bestel\w*",
    r"dostawy",
    r"sprzedaży",
    r"zamówienia",
    r"from",
    r"until",
    r"bis",
    r"au",
    r"valid",
    r"expir\w*",
    r"start",
    r"end",
    r"begin",
    r"printed",
    r"print",
    r"associ\w*",
    r"vom",
    r"von",
    r"du",
)
DUE = _words(
    r"due",
    r"fällig\w*",
    r"zahlbar",
    r"zahlungsziel",
    r"échéance",
    r"limite",
    r"vencimiento",
    r"vervaldatum",
    r"termin",
    r"pay by",
    r"payable",
    r"before",
    r"avant",
)
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")
REGISTRATION = _words(
    r"vat\s?(?:no|reg|id|number)\.?",
    r"ust-?id\w*",
    r"steuer-?n(?:umme)?r\.?",
    r"gst\s?(?:no|id|reg)\.?",
    r"siret",
    r"siren",
    r"tva intra\w*",
    r"kvk",
    r"btw-?(?:nr|nummer)",
    r"nip",
    r"regon",
    r"abn",
    r"co\.?\s?reg\w*",
    r"company\s?(?:no|number|reg\w*)",
    r"registration",
    r"handelsregister",
    r"hrb",
    r"iban",
    r"bic",
    r"swift",
    r"rcs",
    r"ein",
    r"cif",
    r"nif",
    r"roc",
)
#: words of a street or postal address
STREET_WORDS = (
    r"street",
    r"st\.",
    r"road",
    r"rd\.?",
    r"avenue",
    r"ave\.?",
    r"jalan",
    r"jln\.?",
    r"taman",
    r"tmn\.?",
    r"lorong",
    r"strasse",
    r"straße",
    r"str\.",
    # a German or Dutch street is one word ending in its kind, before the house number ("Hofstraße 12")
    r"\w+(?:straße|strasse|gasse|weg|platz|allee|damm|ufer|straat|laan|plein|gracht|kade|dijk)(?=\s\d)",
    r"weg",
    r"platz",
    r"allee",
    r"rue",
    r"boulevard",
    r"bd",
    r"chemin",
    r"calle",
    r"plaza",
    r"straat",
    r"laan",
    r"ul\.",
    r"ulica",
    r"suite",
    r"floor",
    r"building",
    r"bldg",
    r"unit",
    r"lot",
    r"no\.",
    r"p\.?o\.? box",
    r"postfach",
    r"cedex",
    r"seksyen",
    r"bandar",
    r"kampung",
    r"persiaran",
    r"blok",
    r"block",
    r"level",
)
#: words of a line of contact details, part of an address block but no street
CONTACT_WORDS = (
    r"tel\.?",
    r"fax",
    r"phone",
    r"e-?mail",
    r"www",
    r"http\w*",
)
STREET = _words(*STREET_WORDS)
ADDRESS = _words(*STREET_WORDS, *CONTACT_WORDS)
POSTCODE = re.compile(r"(?<![\w-])(?:\d{4,6}|[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}|\d{2}-\d{3})(?![\w-])")
OTHER_NUMBER = _words(
    r"customer",
    r"client",
    r"kunden\w*",
    r"order",
    r"bestell\w*",
    r"commande",
    r"pedido",
    r"klant",
    r"account",
    r"konto",
    r"compte",
    r"cuenta",
    r"tax",
    r"vat",
    r"tva",
    r"ust\w*",
    r"btw",
    r"gst",
    r"tel\w*",
    r"phone",
    r"fax",
    r"iban",
    r"bic",
    r"swift",
    r"po",
    r"purchase",
    r"reference",
    r"ref\.?",
    r"référence",
    r"referenz",
    r"contract",
    r"vertrag",
    r"contrat",
    r"delivery",
    r"liefer\w*",
    r"livraison",
    r"associ\w*",
    r"siret",
    r"siren",
    r"kvk",
    r"nip",
    r"regon",
    r"page",
    r"seite",
    r"mandat\w*",
    r"member",
    r"table",
    r"cashier",
    r"salesperson",
    r"pos",
)
NUMBER_MARK = re.compile(r"(?<!\w)(?:no\.?|nr\.?|n°|nº|#|num(?:ber|éro)?\.?)\s*:?\s*$", re.IGNORECASE)
ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.\-]{1,39}")
#: courtesy lines of a receipt's foot ("thank you for shopping at"), never the issuer's name
COURTESY = _words(
    r"thank(?:s| you)?",
    r"tq",
    r"welcome",
    r"please",
    r"come again",
    r"visit",
    r"merci",
    r"danke",
    r"bedankt",
    r"dziękujemy",
    r"gracias",
    r"terima kasih",
    # the reader addressed ("YOUR ORDER NUMBER IS", "Votre commande"): a line to the customer, not a name
    r"your",
    r"you",
    r"votre",
    r"vos",
    r"vous",
    r"ihre?",
    r"uw",
    r"twój",
    r"twoja",
)
TITLE = _words(
    r"invoice",
    r"receipt",
    r"rechnung",
    r"facture",
    r"factura",
    r"factuur",
    r"faktura",
    r"quittung",
    r"bill",
    r"credit note",
    r"gutschrift",
    r"avoir",
    r"tax invoice",
)


@dataclass
class Candidate:
    field: str
    value: str  # the normalised value stored when the candidate wins
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class Page:
    """A document's lines and labels, read once for every field."""

    lines: list[Line]
    hits: list[LabelHit]
    by_line: dict[int, list[LabelHit]]
    rank: dict[int, int]  # line index -> its place among the non-blank lines
    count: int  # non-blank lines
    text: str
    languages: tuple[str, ...]
    month_first: bool
    paired: dict[int, Line] = field(default_factory=dict)  # a value-only line -> its label, see _pair_columns

    def context(self, line: Line) -> str:
        """A line's words: its own text; for a line of a value alone, its label's: the line paired with it
        (a column of labels read before its column of values) or else the line above (a receipt's value on
        the line under its label)."""
        if _has_words(line.text):
            return line.text
        if line.index in self.paired:
            return self.paired[line.index].text + " " + line.text
        above = self.previous(line, 2)
        if above and not _has_words(above[0].text) and not find_money(above[0].text):
            above = above[1:]  # a line of a currency alone ("RM") between a label and its value
        return (above[0].text + " " if above else "") + line.text

    def position(self, line: Line) -> float:
        return self.rank.get(line.index, 0) / max(self.count - 1, 1)

    @cached_property
    def margins(self) -> set[int]:
        """The lines a browser added when it printed the page (see :func:`print_margins`), found once."""
        return print_margins(self)

    @cached_property
    def nonblank(self) -> list[Line]:
        """The page's lines that hold text, in order."""
        return [line for line in self.lines if not line.blank]

    @cached_property
    def sender(self) -> tuple[int, list[str]] | None:
        """The page's sender line (see :func:`sender_line`), found once."""
        return sender_line(self)

    def labels(self, line: Line, name: str) -> list[LabelHit]:
        return [h for h in self.by_line.get(line.index, ()) if h.field == name]

    def paired_labels(self, line: Line, name: str) -> list[LabelHit]:
        """The labels of ``name`` on the line paired with a value-only line (see :func:`_pair_columns`)."""
        return self.labels(self.paired[line.index], name) if line.index in self.paired else []

    def previous(self, line: Line, depth: int = 2) -> list[Line]:
        out, index = [], line.index - 1
        while index >= 0 and len(out) < depth:
            if not self.lines[index].blank:
                out.append(self.lines[index])
            index -= 1
        return out

    def label_above(self, line: Line, segment: Segment, name: str, depth: int = 2) -> LabelHit | None:
        """A label of ``name`` in the lines above whose column is the segment's (a header row, or a label
        over its value)."""
        for above in self.previous(line, depth):
            for hit in self.labels(above, name):
                start = hit.segment.column + hit.start
                end = hit.segment.column + hit.end
                if abs(start - segment.column) <= 6 or start <= segment.column <= end + 2:
                    return hit
            if len(above.segments) == 1 and _has_words(above.text):
                # a line of words of its own (not of a currency alone, "RM") is the value's label: stop there
                return None
        return None


def _has_words(text: str) -> bool:
    for token, _ in markers_in(text):
        text = text.replace(token, " ")
    return any(c.isalpha() for c in text)


def _pair_columns(lines: list[Line]) -> dict[int, Line]:
    """Labels read as one column and their values as the next: a run of lines of words alone (no amount)
    straight followed by a run of as many lines of an amount alone pairs them in order (``TOTAL``, ``CASH``,
    ``CHANGE`` then ``4.00``, ``20.00``, ``16.00``): the reading order of a scanned receipt's two columns."""
    kinds = []
    for line in lines:
        if line.blank:
            continue
        amounts = find_money(line.text)
        if amounts and not _has_words(line.text) and len(amounts) == 1:
            kinds.append(("value", line))
        elif not amounts and _has_words(line.text):
            kinds.append(("label", line))
        else:
            kinds.append(("other", line))
    paired: dict[int, Line] = {}
    i = 0
    while i < len(kinds):
        j = i
        while j < len(kinds) and kinds[j][0] == "label":
            j += 1
        k = j
        while k < len(kinds) and kinds[k][0] == "value":
            k += 1
        if j > i and k - j == j - i and k - j >= 2:
            for (_, label), (_, value) in zip(kinds[i:j], kinds[j:k], strict=True):
                paired[value.index] = label
        i = max(k, i + 1)
    return paired


def read_page(
    pages: list[str], language: str, lines: list[Line] | None = None, hits: list[LabelHit] | None = None
) -> Page:
    """The page of ``pages``; ``lines`` and ``hits`` when the caller has read them already (once per document)."""
    lines = document_lines(pages) if lines is None else lines
    hits = find_labels(lines) if hits is None else hits
    by_line: dict[int, list[LabelHit]] = {}
    for hit in hits:
        by_line.setdefault(hit.line.index, []).append(hit)
    rank, n = {}, 0
    for line in lines:
        if not line.blank:
            rank[line.index] = n
            n += 1
    text = "\n".join(line.text for line in lines)
    languages = tuple(dict.fromkeys([language, "en"]))
    order = month_first(text, default=language == "en" and "$" in text)
    return Page(lines, hits, by_line, rank, n, text, languages, order, _pair_columns(lines))


def _before(hit: LabelHit, segment: Segment, start: int = 0) -> bool:
    """The label stands before the value on its line."""
    return hit.segment.column + hit.start <= segment.column + start


def _log_count(n: int) -> float:
    return math.log1p(max(n, 0))


# --- amounts -------------------------------------------------------------------------------------------


ROUNDING = re.compile(r"(?<!\w)round\w*", re.IGNORECASE)


def _under_total_label(page: Page, line: Line, segment: Segment, money: Money) -> bool:
    """A total label before the amount on its line, paired with its line, or above it in its column."""
    return bool(
        any(_before(h, segment, money.start) for h in page.labels(line, "total"))
        or page.paired_labels(line, "total")
        or page.label_above(line, segment, "total") is not None
    )


def total_candidates(page: Page) -> list[Candidate]:
    found: list[tuple[Line, Segment, Money]] = []
    for line in page.lines:
        for segment in line.segments:
            for money in find_money(segment.text):
                if money.explicit and money.amount != 0:
                    found.append((line, segment, money))
    if not found:
        return []
    context = {line.index: page.context(line) for line, _, _ in found}
    lines_of: dict[Decimal, list[int]] = {}
    for line, _, m in found:
        lines_of.setdefault(m.amount, []).append(line.index)
    # "TOTAL TTC 110,00 / Acompte : 10,00 / NET A PAYER 100,00": the amount due after a prepayment printed
    # above it, the prepayment away from an amount printed before that, is not the invoice's total.
    prepaid = [(line.index, m.amount) for line, _, m in found if m.amount > 0 and PREPAID.search(context[line.index])]

    def after_prepayment(line: Line, amount: Decimal) -> bool:
        return any(at < line.index and any(i < at for i in lines_of.get(amount + p, ())) for at, p in prepaid)

    found = [(line, segment, m) for line, segment, m in found if not after_prepayment(line, m.amount)]
    amounts = Counter(m.amount for _, _, m in found)
    positive = sorted({a for a in amounts if a > 0}, reverse=True)
    rank = {a: i for i, a in enumerate(positive)}
    net_amounts = {m.amount for line, _, m in found if _net(context[line.index])}
    tax_amounts = {
        m.amount for line, _, m in found if TAX.search(context[line.index]) and not _net(context[line.index])
    }
    tender_amounts = {m.amount for line, _, m in found if TENDER.search(context[line.index])}
    change_amounts = {m.amount for line, _, m in found if CHANGE.search(context[line.index]) and m.amount > 0}
    pool = set(positive)
    items = [Decimal(i.amount) for i in find_items(page.lines) if i.amount]
    items_sum = sum(items) if len(items) >= 1 else None
    rounding = {m.amount for line, _, m in found if ROUNDING.search(context[line.index])}
    last_total_line = max((h.line.index for h in page.hits if h.field == "total" and h.strong), default=-1)
    labelled = [
        (line.index, m.amount)
        for line, segment, m in found
        if m.amount > 0
        and not (_net(context[line.index]) or TENDER.search(context[line.index]) or _rate_only(context[line.index]))
        and _under_total_label(page, line, segment, m)
    ]
    # A receipt rounded to the coin: "TOTAL (INCL GST) 31.02 / ROUNDING ADJ -0.02 / TOTAL 31.00". The amount under
    # a total label after the rounding line, the adjustment away (signed or not) from one printed before it, is
    # what was due; that one was not (a tender rounded is no total).
    adjustments = [
        (line.index, abs(m.amount))
        for line, _, m in found
        if 0 < abs(m.amount) < 1 and ROUNDING.search(context[line.index])
    ]
    rounded: set[Decimal] = set()
    rounded_from: set[Decimal] = set()
    for line, segment, m in found:
        words = context[line.index]
        if m.amount <= 0 or TENDER.search(ROUNDING.sub(" ", words)) or not adjustments:
            continue
        # under a total label, or a rounding word's own amount ("ROUNDING ADJ 0.01 / ROUNDING 20.00")
        if not (_under_total_label(page, line, segment, m) or (ROUNDING.search(words) and m.amount >= 1)):
            continue
        for at, r in adjustments:
            for before in (m.amount - r, m.amount + r):
                if at < line.index and any(i < at for i in lines_of.get(before, ())):
                    rounded.add(m.amount)
                    rounded_from.add(before)
    largest_labelled = max((a for _, a in labelled), default=None)
    last_labelled = labelled[-1][1] if labelled else None
    out = []
    for line, segment, money in found:
        amount = money.amount
        if amount in rounded_from and amount not in rounded:
            continue  # what the page rounded is not what was due
        same = [h for h in page.labels(line, "total") if _before(h, segment, money.start)]
        same += page.paired_labels(line, "total")
        above = page.label_above(line, segment, "total")
        words = context[line.index]
        label_line = same[0].line.text if same else above.line.text if above else words
        sums = any(amount - a in pool and a != amount - a for a in pool if a < amount)
        part = any(amount + a in pool for a in pool if a != amount)
        features = {
            "label_same": float(bool(same)),
            "label_strong": float(any(h.strong for h in same)),
            "label_above": float(above is not None),
            "gross_word": float(bool(GROSS.search(label_line))),
            "net_word": float(_net(words)),
            "net_due_word": float(bool(NET_DUE.search(words))),
            "tax_word": float(bool(TAX.search(words))),
            "percent": float("%" in words),
            "tender_word": float(bool(TENDER.search(words))),
            "discount_word": float(bool(DISCOUNT.search(words))),
            "item_row": float(len(find_money(line.text)) >= 3),
            "position": page.position(line),
            "last_total_label": float(line.index == last_total_line),
            "largest": float(bool(positive) and amount == positive[0]),
            "rank": 1 / (1 + rank.get(amount, 99)),
            "largest_not_tender": float(amount == max((a for a in positive if a not in tender_amounts), default=-1)),
            "repeated": _log_count(amounts[amount] - 1),
            "currency": float(money.currency is not None),
            "net_plus_tax": float(any(amount - t in net_amounts for t in tax_amounts if 0 < t < amount)),
            "plus_tax_is_other": float(any(amount + t in pool for t in tax_amounts if t > 0)),
            # a receipt: what was handed over less the change is what was due
            "largest_labelled": float(amount == largest_labelled),
            "last_labelled": float(amount == last_labelled),
            "items_sum": float(items_sum is not None and amount == items_sum),
            "paid_minus_change": float(any(amount + c in pool for c in change_amounts if c != amount)),
            "change_from_it": float(any(amount - c in pool for c in change_amounts if c != amount)),
            "sum_of_two": float(sums),
            "part_of_sum": float(part),
            "negative": float(amount < 0),
            "last_segment": float(segment is line.segments[-1]),
            "rounding_word": float(bool(ROUNDING.search(words))),
            "after_rounding": float(any(amount - r in pool for r in rounding if r != 0)),
            "rounded_total": float(amount in rounded),
        }
        out.append(Candidate("total", money.text, features))
    return out


# --- dates ---------------------------------------------------------------------------------------------


#: A browser's print margins: a page URL, or a page counter ("1/2") ending the line.
PRINT_MARK = re.compile(r"https?://\S+|\b\d{1,3} ?/ ?\d{1,3}\s*$")


def print_margins(page: Page) -> set[int]:
    """The lines a browser added when the page was printed: the first and last line of a page whose first or
    last line carries the page's URL or a page counter. Their date and time are when it was printed."""
    by_page: dict[int, list[Line]] = {}
    for line in page.lines:
        if not line.blank:
            by_page.setdefault(line.page, []).append(line)
    out: set[int] = set()
    for lines in by_page.values():
        edges = [lines[0], lines[-1]]
        if any(PRINT_MARK.search(edge.text) for edge in edges):
            out.update(edge.index for edge in edges)
    return out


def date_candidates(page: Page) -> list[Candidate]:
    found = []
    margins = page.margins
    for line in page.lines:
        if line.index in margins and TIME.search(line.text):
            continue  # the date the page was printed, not the document's
        for segment in line.segments:
            for date in find_dates(segment.text, page.languages, page.month_first):
                found.append((line, segment, date))
    if not found:
        return []
    values = Counter(d.value for _, _, d in found)
    first = found[0][2].value
    earliest, latest = min(values), max(values)
    out = []
    for line, segment, date in found:
        label_text = segment.text[: date.start]
        same = [h for h in page.labels(line, "invoice_date") if _before(h, segment, date.start)]
        above = page.label_above(line, segment, "invoice_date")
        due_same = [h for h in page.labels(line, "due_date") if _before(h, segment, date.start)]
        due_above = page.label_above(line, segment, "due_date")
        context = label_text or " ".join(s.text for s in line.segments if s.column < segment.column)
        context = context or page.context(line)
        generic = any(h.label in ("date", "datum", "data", "fecha") for h in same)
        features = {
            "label_same": float(bool(same)),
            "label_generic": float(generic),
            "label_above": float(above is not None),
            "due_label": float(bool(due_same) or due_above is not None),
            "due_word": float(bool(DUE.search(context or line.text))),
            "other_word": float(bool(OTHER_DATE.search(context or line.text))),
            "time_on_line": float(bool(TIME.search(line.text))),
            "two_dates": float(len(find_dates(line.text, page.languages, page.month_first)) >= 2),
            "position": page.position(line),
            "first": float(date.value == first),
            "earliest": float(date.value == earliest),
            "latest": float(date.value == latest),
            "repeated": _log_count(values[date.value] - 1),
            "distinct": _log_count(len(values)),
            "numeric": float(bool(re.fullmatch(r"[\d./-]+", segment.text[date.start : date.end]))),
        }
        out.append(Candidate("invoice_date", date.value.isoformat(), features))
    return out


# --- currency ------------------------------------------------------------------------------------------


def currency_candidates(page: Page, organisations: list[str] = ()) -> list[Candidate]:
    votes: Counter[str] = Counter()
    unique: Counter[str] = Counter()
    beside_amount: Counter[str] = Counter()
    labelled: set[str] = set()
    total_codes: set[str] = set()
    bracketed: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    for line in page.lines:
        markers = markers_in(line.text)
        money = find_money(line.text)
        for token, codes in markers:
            for code in codes:
                votes[code] += 1
                if len(codes) == 1:
                    unique[code] += 1
                if f"({token})" in line.text:
                    bracketed[code] += 1
                if line.text.strip() == token:
                    alone[code] += 1
            if any(m.currencies == codes for m in money):
                for code in codes:
                    beside_amount[code] += 1
        if page.labels(line, "currency"):
            labelled.update(c for _, codes in markers if len(codes) == 1 for c in codes)
        if any(h.strong for h in page.labels(line, "total")):
            total_codes.update(c for m in money for c in m.currencies)
    countries = countries_in(page.text, [c for o in organisations for c in legal_form_countries(o)])
    national: Counter[str] = Counter()
    for territory, n in countries.items():
        for code in country_currencies(territory)[:1]:
            national[code] += n
    candidates = set(votes) | set(national)
    if not candidates:
        return []
    ambiguous_only = {c for c in votes if not unique[c]}
    out = []
    for code in sorted(candidates):
        features = {
            "named": _log_count(votes[code]),
            "named_alone": _log_count(unique[code]),
            "beside_amount": _log_count(beside_amount[code]),
            "labelled": float(code in labelled),
            "bracketed": _log_count(bracketed[code]),
            "only_alone": float(votes[code] > 0 and alone[code] == votes[code]),
            "on_total": float(code in total_codes),
            "only_ambiguous": float(code in ambiguous_only),
            "dollar_default": float(code == DOLLAR_DEFAULT and code in ambiguous_only),
            "country": _log_count(national[code]),
            "country_top": float(bool(national) and code == _most(national)),
            "foreign": float(bool(national) and not national[code]),  # the page's countries pay in others
            # a page that names no currency at all pays in the currency of the country it names most
            "country_unnamed": float(not votes and bool(national) and code == _most(national)),
            "most_named": float(code == _most(unique or votes)) if (unique or votes) else 0.0,
        }
        out.append(Candidate("currency", code, features))
    return out


def _most(counts: Counter[str]) -> str:
    """The most counted; of a tie, the first code in order (a Counter's own tie order follows how it was
    filled, here from sets of codes, which differs from one process to the next)."""
    return max(sorted(counts), key=lambda code: counts[code])


# --- parties -------------------------------------------------------------------------------------------

_DOMAIN = re.compile(r"(?:https?://|www\.|@)([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.[a-z]{2,}", re.IGNORECASE)
_FREE_MAIL = {"gmail", "outlook", "hotmail", "yahoo", "gmx", "web", "icloud", "proton", "protonmail", "wp", "onet"}
#: domains that name a role, not a party ("seller@seller.com", "info@example.com" in a template): no name evidence
_ROLE_DOMAINS = {"example", "seller", "buyer", "vendor", "supplier", "customer", "client", "company", "domain", "test"}
#: a party's page on a social network ("m.facebook.com/b-best-restaurant"): its name, as the network spells it
_SOCIAL_PAGE = re.compile(
    r"(?<![\w-])(?:facebook|fb|instagram|linkedin|twitter|tiktok|youtube)\.com/(?:company/|pages/|@)?([a-z0-9][\w.-]*)",
    re.IGNORECASE,
)
_CUT = re.compile(r"\s(?:[-–—|•·]|\()\s?|\((?=\d)|,\s|\s{2,}")
#: the most words a party's name has; a longer line is a sentence of the terms, not a name
_NAME_WORDS = 12


def _compact(text: str) -> str:
    """Letters and digits only, lower case: a name as a domain or a page address spells it ("B & BEST
    RESTAURANT", "b-best-restaurant" -> "bbestrestaurant")."""
    return re.sub(r"[\W_]", "", text.lower())


def _name_like(text: str) -> bool:
    """Text that could be a name: no label, no "label: value", mostly letters."""
    letters = sum(c.isalpha() for c in text)
    name = _CUT.split(text)[0]
    return letters >= 2 and ":" not in text and not opens_with_label(name) and sum(c.isdigit() for c in text) < letters


def _before_colon(name: str, text: str) -> bool:
    """The name is followed by a colon on its line ("COMPANY NO:", "TELEPHONE:"): a label whose value is
    elsewhere (the colon is not part of a segment's text, nor of the cleaned name)."""
    flat = re.sub(r"\s+", " ", text)
    at = flat.find(name)
    while at >= 0:
        if flat[at + len(name) :].lstrip().startswith(":"):
            return True
        at = flat.find(name, at + 1)
    return False


def _clean_name(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;:-|*#")
    return text


def issuer_candidates(page: Page, customer_lines: set[int]) -> list[Candidate]:
    domains = {d.split(".")[-1].lower() for d in _DOMAIN.findall(page.text)} - _FREE_MAIL - _ROLE_DOMAINS
    domains |= {_compact(slug) for slug in _SOCIAL_PAGE.findall(page.text)}
    registration_lines = {line.index for line in page.lines if REGISTRATION.search(line.text)}
    places = place_names()
    raw: list[tuple[str, Line, dict[str, float]]] = []
    nonblank = page.nonblank
    for hit in page.hits:
        if hit.field == "vendor" and hit.strong:
            rest = hit.segment.text[hit.end :].strip(" :")
            below = [line for line in nonblank if line.index > hit.line.index][:2]
            for text in [rest, *(b.segments[0].text for b in below if b.segments)]:
                if text:
                    raw.append((organisation_in(text) or text, hit.line, {"vendor_label": 1.0}))
    for line in nonblank:
        for segment in line.segments:
            name = organisation_in(segment.text)
            if name:
                raw.append((name, line, {"legal_form": 1.0}))
    sender = page.sender
    sender_name = sender[1][0] if sender else None
    if sender is not None:  # the sender line's name, however its parts are parted
        raw.append((sender_name, nonblank[sender[0]], {}))
    margins = page.margins
    for i, line in enumerate(nonblank[:8]):
        # a browser's print header: the page's title, in every segment after the date ("Invoice | TeamGantt")
        segments = line.segments if line.index in margins else line.segments[:2]
        for segment in segments:
            if _name_like(segment.text):
                raw.append((_CUT.split(segment.text)[0], line, {}))
        for span in (2, 3):  # a name broken over the top lines of a receipt: lines of one cell each
            block = nonblank[i : i + span]
            if len(block) == span and all(
                len(b.segments) == 1 and _name_like(b.text) and not (ADDRESS.search(b.text) or POSTCODE.search(b.text))
                for b in block
            ):
                raw.append((" ".join(b.segments[0].text for b in block), line, {"joined": span - 1.0}))
    # a party's address block: the name on the line above its street ("TeamGantt / 1810 York Road / Suite 317")
    for above, below in zip(nonblank, nonblank[1:], strict=False):
        street = below.segments[0].text if below.segments else ""
        name = _CUT.split(above.segments[0].text)[0] if above.segments else ""
        if (
            name
            and _name_like(above.segments[0].text)
            and STREET.search(street)
            and any(c.isdigit() for c in street)
            # a building's name over the address that names it again ("PUSAT DAGANGAN PHILEO DAMANSARA" over
            # "UNIT 105, BLOCK A,PUSAT DAGANGAN PHILEO DAMANSARA,") is part of the address
            and org_key(name) not in org_key(street)
        ):
            raw.append((name, above, {"above_address": 1.0}))
    counts = Counter(org_key(line.text) for line in nonblank)
    text_key = " " + org_key(page.text) + " "
    best: dict[str, Candidate] = {}
    for name, line, extra in raw:
        name = _clean_name(name)
        key = org_key(name)
        if len(key) < 2 or not any(c.isalpha() for c in key) or name.count("(") != name.count(")"):
            continue  # an unclosed bracket: a piece of a name broken over lines, not a name
        if len(name.split()) > _NAME_WORDS or key in places:
            continue  # a sentence of the terms, or an address's country or state alone
        letters = sum(c.isalpha() for c in name)
        features = {
            "vendor_label": 0.0,
            "legal_form": float(has_legal_form(name)),
            "joined": 0.0,
            "above_address": 0.0,
            **extra,
            "first_line": float(page.rank.get(line.index, 99) == 0),
            "top": 1 / (1 + page.rank.get(line.index, 99)),
            "position": page.position(line),
            "bold": float(line.bold),
            "alone": float(len(line.segments) == 1 and line.segments[0].text.strip() == name),
            "customer_block": float(line.index in customer_lines),
            "in_domain": float(any(w in domains for w in key.split() if len(w) >= 4) or _compact(key) in domains),
            "repeated": _log_count(text_key.count(f" {key} ") - 1),
            "own_line_twice": float(counts[key] > 1),
            "digits": sum(c.isdigit() for c in name) / max(len(name), 1),
            "address": float(bool(ADDRESS.search(name) or POSTCODE.search(name))),
            "label": float(
                opens_with_label(name)
                or bool(TITLE.search(name))
                or (name != sender_name and _before_colon(name, line.text))
            ),
            "upper": sum(c.isupper() for c in name) / max(letters, 1),
            "words": min(len(name.split()), 10) / 10,
            "near_registration": float(any(abs(line.index - i) <= 4 for i in registration_lines)),
            "tender_word": float(bool(TENDER.search(name) or GROSS.search(name) or TAX.search(name))),
            "courtesy": float(bool(COURTESY.search(name))),
        }
        previous = best.get(key)
        candidate = Candidate("vendor_name", name, features)
        if previous is None or _strength(features) > _strength(previous.features):
            best[key] = candidate
    addressed = {org_key(_clean_name(name)) for name, _, extra in raw if extra.get("above_address")}
    for key, candidate in best.items():  # a piece of a longer name (its last line) is not the name
        candidate.features["inside_longer"] = float(any(f" {key} " in f" {other} " for other in best if other != key))
        candidate.features["above_address"] = float(key in addressed)  # however else the name was found
    return list(best.values())


def _strength(features: dict[str, float]) -> float:
    return features["vendor_label"] * 2 + features["legal_form"] + features["top"] + features["joined"] * 0.1


# --- invoice number ------------------------------------------------------------------------------------


def number_candidates(page: Page) -> list[Candidate]:
    raw: list[tuple[str, Line, dict[str, float]]] = []

    def tokens(text: str) -> list[str]:
        return [m.group(0).rstrip(".,:;-/") for m in ID.finditer(text)][:2]

    for hit in page.hits:
        if hit.field != "invoice_number":
            continue
        rest = hit.segment.text[hit.end :].lstrip(" :#.°º")
        after = [s.text for s in hit.line.segments if s.column > hit.segment.column][:2]
        strong = float(hit.strong)
        for i, token in enumerate(tokens(rest) + [t for s in after for t in tokens(s)[:1]]):
            raw.append((token, hit.line, {"label_same": 1.0, "label_strong": strong, "order": float(i)}))
        # under the label: its column in the next lines (a header row with its values below)
        column = hit.segment.column + hit.start
        index, seen = hit.line.index + 1, 0
        while index < len(page.lines) and seen < 2:
            line = page.lines[index]
            index += 1
            if line.blank:
                continue
            seen += 1
            for segment in line.segments:
                if abs(segment.column - column) <= 6 or segment.column <= column < segment.column + len(segment.text):
                    for token in tokens(segment.text)[:1]:
                        raw.append((token, line, {"label_above": 1.0, "label_strong": strong, "order": seen - 1.0}))
    _, _, title_line = title_of(page.lines)
    for line in page.lines[: max(page.count // 2, 12)]:
        for segment in line.segments:
            for m in TITLE.finditer(segment.text):
                for token in tokens(segment.text[m.end() :].lstrip(" :#.°º")):
                    raw.append((token, line, {"title": 1.0, "title_line": float(line is title_line)}))
            mark = [m for m in re.finditer(r"(?:no\.?|nr\.?|n°|nº|#)\s*:?\s*", segment.text, re.IGNORECASE)]
            for m in mark:
                if NUMBER_MARK.search(segment.text[: m.end()]):
                    for token in tokens(segment.text[m.end() :])[:1]:
                        raw.append((token, line, {"number_mark": 1.0}))
    counts = Counter(m.group(0) for m in ID.finditer(page.text))
    best: dict[str, Candidate] = {}
    for token, line, extra in raw:
        if not any(c.isdigit() for c in token) or len(token) < 3:
            continue
        context = line.text[: max(line.text.find(token), 0)]
        near = context[-30:]
        features = {
            "label_same": 0.0,
            "label_above": 0.0,
            "label_strong": 0.0,
            "title": 0.0,
            "title_line": 0.0,
            "number_mark": 0.0,
            "order": 0.0,
            **extra,
            "other_label": float(bool(OTHER_NUMBER.search(near))),
            "letters": float(any(c.isalpha() for c in token)),
            "separators": float(any(c in "-/_." for c in token)),
            "length": min(len(token), 20) / 20,
            "date_like": float(bool(find_dates(token, page.languages, page.month_first))),
            "money_like": float(bool(re.fullmatch(r"\d{1,3}(?:[.,]\d{3})*[.,]\d{2}", token))),
            "phone_like": float(bool(re.search(r"\+\d|\(\d{2,4}\)", near + token))),
            "position": page.position(line),
            "repeated": _log_count(counts[token] - 1),
        }
        candidate = Candidate("invoice_number", token, features)
        previous = best.get(token)
        if previous is None or sum(features.values()) > sum(previous.features.values()):
            best[token] = candidate
    return list(best.values())


#: the parts of a sender line ("Muster GmbH · Musterstraße 17 · 654321 Musterort")
_SENDER_PARTS = re.compile(r"\s[·•|–—-]\s")


def sender_line(page: Page) -> tuple[int, list[str]] | None:
    """A letter's sender line: the one line over the address window that holds the sender's name, street and
    town in parts (DIN 5008 and the layouts that follow it); its place among the page's non-blank lines, and
    its parts. OCR may read the parts' dots as colons or dashes ("Seller Company : 123 Seller St - ...")."""
    nonblank = page.nonblank
    for i, line in enumerate(nonblank[: max(len(nonblank) // 3, 12)]):
        if not line.segments:
            continue
        parts = [p.strip() for p in _SENDER_PARTS.split(line.text.strip())]
        name, colon, street = parts[0].partition(" : ")
        if colon and has_legal_form(name):  # OCR's colon for a dot after the sender's name, not a label's
            parts[:1] = [name.strip(), street.strip()]
        if len(parts) < 3 or not _name_like(parts[0]):
            continue
        if any(ADDRESS.search(p) or POSTCODE.search(p) for p in parts[1:]):
            return i, parts
    return None


def addressee_below_sender(page: Page) -> tuple[str, str] | None:
    """(sender, addressee) from a letter's sender line (:func:`sender_line`): the addressee's name is the
    first line under it in the same column."""
    found = page.sender
    if found is None:
        return None
    i, parts = found
    nonblank = page.nonblank
    first = nonblank[i].segments[0]
    for below in nonblank[i + 1 : i + 3]:
        under = [s for s in below.segments if abs(s.column - first.column) <= 4]
        if under:
            return parts[0], under[0].text.strip()
    return None


def organisation_names(page: Page) -> list[str]:
    """Every organisation the page names by its legal form (for the countries of the legal forms). A courtesy
    line is none: "THANK YOU FOR SHOPPING AT" ends in a word that is a legal form somewhere (AT, Ukraine)."""
    names = [
        n
        for line in page.lines
        for s in line.segments
        if not COURTESY.search(s.text) and (n := organisation_in(s.text)) and not COURTESY.search(n)
    ]
    # a name broken before its legal form: "MPH BOOKSTORES" / "SDN BHD"
    nonblank = page.nonblank
    for above, line in zip(nonblank, nonblank[1:], strict=False):
        if len(line.segments) == 1 and is_legal_form(line.text) and _name_like(above.text):
            names.append(f"{above.segments[0].text} {line.text.strip()}")
    return names
