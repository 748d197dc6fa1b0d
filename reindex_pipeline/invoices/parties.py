"""Who issued the document and who it is for.

Organisation names are recognised by their legal form (``cleanco``'s list: GmbH, Inc., Ltd, S.A.,
B.V., sp. z o.o., ...). The customer is what a customer label ("Bill to", "Rechnung an", "Nabywca", ...)
introduces. The issuer is what a vendor label introduces; failing that, the organisation the document
names first outside the customer's block, preferring one named on its own (not inside a sentence), named
more than once (letterhead and footer), or whose name is in the document's web or e-mail domains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cleanco import basename

from reindex_pipeline.invoices.matching import LabelHit, starts_with_label, value_on_line, values_below
from reindex_pipeline.invoices.text import Line

_DOMAIN = re.compile(r"(?:https?://|www\.|@)([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.[a-z]{2,}", re.IGNORECASE)
_FREE_MAIL = {"gmail", "outlook", "hotmail", "yahoo", "gmx", "web", "icloud", "proton", "protonmail", "wp", "onet"}
_SPLIT = re.compile(r"\s*(?:,\s+(?=\d)|\s[-–—]\s|\s•\s|;\s|,\s+(?=[A-Z][a-z]+\s\d))")


@dataclass(frozen=True)
class Party:
    name: str
    confidence: float


def org_key(name: str) -> str:
    """A name without its legal form, case, accents' absence aside, or punctuation: what spelling variants
    of one organisation share ("ACME GmbH", "Acme Gmbh.", "ACME" -> "acme")."""
    base = basename(name.strip()) or name
    base = re.sub(r"[^\w&]+", " ", base.casefold())
    return re.sub(r"\s+", " ", base).strip()


def has_legal_form(name: str) -> bool:
    """The name ends in a legal form (cleanco removes whole words for it) and has a name before it."""
    words = name.strip().split()
    base = basename(name.strip()).split()
    removed = " ".join(words[len(base) :])
    return (
        0 < len(base) < len(words) <= 9 and any(c.isalpha() for c in base[0]) and sum(c.isalpha() for c in removed) >= 2
    )


def organisation_in(text: str) -> str | None:
    """The organisation name a piece of text starts with ("Atlassian Pty Ltd, Level 6, ..." -> "Atlassian
    Pty Ltd"), or None."""
    for part in _SPLIT.split(text):
        part = part.strip(" ,;:|")
        words = part.split()
        if not words or len(words) > 9 or starts_with_label(part):
            continue
        # "Calendly LLC Invoice Amount ..." in plain text: the name ends at its legal form
        for n in range(len(words), 0, -1):
            candidate = " ".join(words[:n]).rstrip(",;:")
            if has_legal_form(candidate):
                # "... through Fiverr Limited": the name is the capitalised words before the legal form
                base = len(basename(candidate).split())
                start = base
                while start > 0 and _capitalised(words[start - 1]):
                    start -= 1
                if start < base:
                    return " ".join(words[start:n]).rstrip(",;:")
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
    """A party's name, not a label, an address line or a phone number ("Address", "Ship To",
    "Fremont CA 94538", "Tel: 0123")."""
    letters = sum(c.isalpha() for c in name)
    digits = sum(c.isdigit() for c in name)
    if letters < 2 or digits > letters or starts_with_label(name) or _ADDRESS_OR_LABEL.search(name):
        return False
    return not re.search(r"(?<![\w-])\d{4,6}(?![\w-])", name)


def customer_from(
    hits: list[LabelHit], lines: list[Line], by_line: dict[int, list[LabelHit]]
) -> tuple[Party | None, set[int]]:
    """The customer and the line numbers of its block."""
    for hit in hits:
        if hit.field != "customer" or not hit.strong:
            continue
        if hit.label == "to" and (hit.prefix.strip() or hit.segment.text[hit.end :].strip()[:1].isalpha()):
            continue  # "to" inside a phrase ("Apr 13 to May 13"), not a label
        same = value_on_line(hit, by_line[hit.line.index])
        block = [same] if same and not any(ch.isdigit() for ch in same[:3]) else []
        block += values_below(hit, lines, depth=4)
        block = [b for b in block if b]
        if not block:
            continue
        org = next((o for o in (organisation_in(b) for b in block[:3]) if o), None)
        name = org or block[0]
        lines_of_block = set(range(hit.line.index, hit.line.index + 6))
        return Party(name, 0.9 if org else 0.75), lines_of_block
    return None, set()


def vendor_from(
    hits: list[LabelHit],
    lines: list[Line],
    by_line: dict[int, list[LabelHit]],
    customer: Party | None,
    customer_lines: set[int],
) -> Party | None:
    customer_key = org_key(customer.name) if customer else None
    for hit in hits:
        if hit.field != "vendor" or not hit.strong or hit.label == "from" and hit.prefix.strip():
            continue
        same = value_on_line(hit, by_line[hit.line.index])
        block = ([same] if same else []) + values_below(hit, lines, depth=3)
        block = [b for b in block if b and org_key(b) != customer_key]
        if block:
            org = next((o for o in (organisation_in(b) for b in block[:3]) if o), None)
            return Party(org or block[0], 0.9)
    return _best_organisation(lines, customer_key, customer_lines)


def _best_organisation(lines: list[Line], customer_key: str | None, customer_lines: set[int]) -> Party | None:
    domains = {d.split(".")[-1].lower() for line in lines for d in _DOMAIN.findall(line.text)} - _FREE_MAIL
    found: dict[str, dict] = {}
    total = max(len(lines), 1)
    for line in lines:
        for segment in line.segments:
            name = organisation_in(segment.text)
            if not name:
                continue
            key = org_key(name)
            if not key or key == customer_key or (line.index in customer_lines and customer_key is None):
                continue
            entry = found.setdefault(key, {"name": name, "first": line.index, "count": 0, "alone": False})
            entry["count"] += 1
            entry["alone"] |= len(segment.text) <= len(name) + 2 or segment.text.startswith(name)
    if not found:
        return _top_name(lines, customer_key)

    def score(entry: dict) -> float:
        key = org_key(entry["name"])
        in_domain = any(word in domains for word in key.split() if len(word) >= 4) or key.replace(" ", "") in domains
        return 1.5 * (1 - entry["first"] / total) + 0.5 * (entry["count"] > 1) + 0.7 * entry["alone"] + 1.0 * in_domain

    best = max(found.values(), key=score)
    return Party(best["name"], 0.8 if score(best) >= 1.5 else 0.6)


def _top_name(lines: list[Line], customer_key: str | None) -> Party | None:
    """No legal form anywhere: a receipt's store name, in bold on its own line at the top."""
    for line in lines[:8]:
        if line.bold and line.segments and not any(ch.isdigit() for ch in line.text) and ":" not in line.text:
            name = line.segments[0].text
            if org_key(name) != customer_key:
                return Party(name, 0.6)
    return None
