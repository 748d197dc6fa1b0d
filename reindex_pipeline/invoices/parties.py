"""Who issued the document and who it is for.

Organisation names are recognised by their legal form (``cleanco``'s list: GmbH, Inc., Ltd, S.A.,
B.V., sp. z o.o., ...). The customer is what a customer label ("Bill to", "Rechnung an", "Nabywca", ...)
introduces, when it is a name and not a label or an address. The issuer is chosen among candidates by
the ranker (:mod:`reindex_pipeline.invoices.candidates`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from cleanco import basename as _cleanco_basename

from reindex_pipeline.invoices.matching import LabelHit, is_label, starts_with_label, value_on_line, values_below
from reindex_pipeline.invoices.text import Line

_SPLIT = re.compile(r"\s*(?:,\s+(?=\d)|\s[-–—]\s|\s[•·]\s|;\s|,\s+(?=[A-Z][a-z]+\s\d))")


#: the confidence of a customer named by its legal form, and of one that is only the first plausible line
ORGANISATION_CONFIDENCE = 0.9
NAME_CONFIDENCE = 0.75


@dataclass(frozen=True)
class Party:
    name: str
    confidence: float


@lru_cache(maxsize=65536)
def basename(name: str) -> str:
    """``cleanco``'s name without its legal form, cached (names are read again by several fields)."""
    return _cleanco_basename(name)


@lru_cache(maxsize=8192)
def org_key(name: str) -> str:
    """A name without its legal form, case, accents' absence aside, or punctuation: what spelling variants
    of one organisation share ("ACME GmbH", "Acme Gmbh.", "ACME" -> "acme")."""
    base = basename(name.strip()) or name
    base = re.sub(r"[^\w&]+", " ", base.casefold())
    return re.sub(r"\s+", " ", base).strip()


def same_organisation(a: str, b: str) -> bool:
    """Two spellings of one organisation: the same :func:`org_key`, or one holds the other at its start
    ("SwissDev Greg Janusz Tomasik" and "SwissDev") or as most of it."""
    want, have = org_key(a), org_key(b)
    if not want or not have:
        return False
    if want == have:
        return True
    short, long = sorted((want, have), key=len)
    if f" {short} " not in f" {long} ":
        return False
    return long.startswith(short + " ") and len(short) >= 5 or len(short) >= 0.6 * len(long)


@lru_cache(maxsize=16384)
def has_legal_form(name: str) -> bool:
    """The name ends in a legal form (cleanco removes whole words for it) and has a name before it."""
    from reindex_pipeline.invoices.currencies import is_prefix_form

    words = name.strip().split()
    base = basename(name.strip()).split()
    removed = " ".join(words[len(base) :])
    if is_prefix_form(removed):
        return False  # a form that comes before the name in its country ("PT", "OOO") is not a suffix
    return (
        0 < len(base) < len(words) <= 9 and any(c.isalpha() for c in base[0]) and sum(c.isalpha() for c in removed) >= 2
    )


@lru_cache(maxsize=1)
def month_names() -> frozenset[str]:
    """Month names and their abbreviations in the languages the extractor reads, from ``babel`` (casefolded,
    without a final dot)."""
    from babel import Locale

    from reindex_pipeline.invoices.currencies import NAME_LANGUAGES

    names = set()
    for language in NAME_LANGUAGES:
        months = Locale.parse(language).months
        for context in ("format", "stand-alone"):
            for width in ("abbreviated", "wide"):
                names |= {m.casefold().rstrip(".") for m in months[context][width].values()}
    return frozenset(names)


@lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    """Names of countries (``babel``, in the languages the extractor reads) and of their subdivisions (ISO
    3166-2 from ``pycountry``: states, provinces, regions), as :func:`org_key` spells them: a line that is
    only one of these is part of an address ("MALAYSIA", "JOHOR."), never a party's name."""
    import pycountry
    from babel import Locale

    from reindex_pipeline.invoices.currencies import NAME_LANGUAGES

    names = {s.name for s in pycountry.subdivisions} | {c.name for c in pycountry.countries}
    for language in NAME_LANGUAGES:
        names |= set(Locale.parse(language).territories.values())
    return frozenset(key for key in map(org_key, names) if key)


def role_named(name: str) -> bool:
    """A party named after its role and a legal form, as templates and test invoices name them ("Seller
    Company", "Lieferant GmbH & Co. KG", "Supplier Ltd."): a label word before a legal form is a name, since
    a legal form alone is never a label's value."""
    base = basename(name).strip(" ,.")
    return bool(base) and base != name.strip(" ,.") and is_label(base)


def opens_with_label(text: str) -> bool:
    """``text`` opens with a field label that is not the role word of a name (see :func:`role_named`)."""
    return starts_with_label(text) and not role_named(text)


def organisation_in(text: str) -> str | None:
    """The organisation name a piece of text starts with ("Atlassian Pty Ltd, Level 6, ..." -> "Atlassian
    Pty Ltd"), or None. A legal form that is a month before a number is a date ("Next Billing Date Sep 13":
    SEP is a French legal form)."""
    for part in _SPLIT.split(text):
        part = part.strip(" ,;:|")
        words = part.split()
        if not words or len(words) > 9 or opens_with_label(part):
            continue
        # "Calendly LLC Invoice Amount ..." in plain text: the name ends at its legal form
        for n in range(len(words), 0, -1):
            candidate = " ".join(words[:n]).rstrip(",;:")
            if has_legal_form(candidate):
                base = len(basename(candidate).split())
                form = " ".join(words[base:n]).casefold().rstrip(".,;:")
                if n < len(words) and words[n][:1].isdigit() and form in month_names():
                    continue
                # "... through Fiverr Limited": the name is the capitalised words before the legal form
                start = base
                while start > 0 and _capitalised(words[start - 1]):
                    start -= 1
                if start < base:
                    name = " ".join(words[start:n]).rstrip(",;:")
                    if _ADDRESS_OR_LABEL.search(name) and any(c.isdigit() for c in name):
                        return None  # a street and its number ("NO 2, JALAN BULAN BM": BM, an Israeli form)
                    return name
        return None
    return None


_CONNECTORS = {"&", "and", "und", "et", "y", "de", "del", "la", "le", "van", "der", "den", "von", "of", "for", "z", "e"}


def _capitalised(word: str) -> bool:
    return word[:1].isupper() or word[:1].isdigit() or word.lower() in _CONNECTORS


_ADDRESS_OR_LABEL = re.compile(
    r"(?<!\w)(?:address|adresse|anschrift|dirección|adres|adres\w*|ship to|deliver to|bill to|street|road|"
    r"straße|strasse|rue|calle|straat|ulica|jalan|suite|floor|p\.?o\.? box|tel|phone|fax|e-?mail|www)(?!\w)",
    re.IGNORECASE,
)


def plausible_party(name: str) -> bool:
    """A party's name, not a label, an address line, a phone number, an identifier, a currency or a legal form
    alone ("Address", "Ship To", "Fremont CA 94538", "Tel: 0123", "CUST-IE-001", "RM", "Company")."""
    from reindex_pipeline.invoices.currencies import is_legal_form, read_marker

    letters = sum(c.isalpha() for c in name)
    digits = sum(c.isdigit() for c in name)
    if letters < 2 or digits > letters or opens_with_label(name) or _ADDRESS_OR_LABEL.search(name):
        return False
    if ":" in name or (digits and " " not in name.strip()):
        return False  # "label: value", or one token with digits: an identifier
    if is_legal_form(name) or read_marker(name) or org_key(name) in place_names():
        return False  # "Company", "RM", "Germany"
    return not re.search(r"(?<![\w-])\d{4,6}(?![\w-])", name)


def customer_from(
    hits: list[LabelHit], lines: list[Line], by_line: dict[int, list[LabelHit]]
) -> tuple[Party | None, set[int]]:
    """The customer and the line numbers of its block."""
    for hit in hits:
        if hit.field != "customer" or not hit.strong or _in_phrase(hit):
            continue
        same = value_on_line(hit, by_line[hit.line.index]) if _value_beside(hit) else ""
        block = [same] if same and not any(ch.isdigit() for ch in same[:3]) else []
        block += values_below(hit, lines, depth=4)
        block = [b.lstrip(" .,;:-") for b in block]
        block = [b for b in block if b]
        if not block:
            continue
        org = next((o for o in (organisation_in(b) for b in block[:3]) if o), None)
        # a contact's label or role line first ("Buyer contact name", "Attn:") is passed over
        name = _once(org or next((b for b in block[:3] if plausible_party(b)), block[0]))
        lines_of_block = set(range(hit.line.index, hit.line.index + 6))
        return Party(name, ORGANISATION_CONFIDENCE if org else NAME_CONFIDENCE), lines_of_block
    return None, set()


#: words before a customer label that make it the label of one of the customer's numbers
_ID_WORDS = re.compile(
    r"(?<![^\W\d_])(?:id|nr|no|n°|number|nummer|numéro|num|vat|ust|tva|tax|steuer\w*|po)(?![^\W\d_])", re.IGNORECASE
)


def _in_phrase(hit: LabelHit) -> bool:
    """A customer label that is part of other words, not a label: inside a token ("PO-BUYER-7788"), after
    the words of a number ("USt-IdNr. Kunde": the customer's VAT number; but "Adresse du Client" is the
    customer's label), "to" after words ("Apr 13 to May 13"), or followed by a word in its own segment
    ("CUSTOMER COPY", "CUSTOMER SERVICE HOTLINE", "Customer ID", "CUSTOMER'S PAYMENT")."""
    prefix, rest = hit.prefix, hit.segment.text[hit.end :]
    if prefix and not prefix[-1].isspace() or _ID_WORDS.search(prefix):
        return True
    if hit.label == "to" and any(c.isalpha() for c in prefix):
        return True
    return rest[:1] in ("'", "’") or rest.strip()[:1].isalpha()


#: the most columns between a label and its value on the same line; further on is the page's next column
VALUE_GAP = 12


def _value_beside(hit: LabelHit) -> bool:
    """Something follows the label in its segment, or the next segment starts close after it ("BILLED TO"
    at the left and "SUBSCRIPTION" in the right-hand column are not label and value)."""
    if hit.segment.text[hit.end :].strip(" :"):
        return True
    after = [s.column for s in hit.line.segments if s.column > hit.segment.column]
    return bool(after) and min(after) - (hit.segment.column + len(hit.segment.text)) <= VALUE_GAP


def _once(name: str) -> str:
    """A name printed twice in a row, as two columns read as one ("SimFin Analytics GmbH SimFin Analytics
    GmbH" under "Bill to" and "Ship to"), once."""
    words = name.split()
    half = len(words) // 2
    if len(words) % 2 == 0 and half and words[:half] == words[half:]:
        return " ".join(words[:half])
    return name
