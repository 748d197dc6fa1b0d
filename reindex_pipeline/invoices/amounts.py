"""Money in text: amounts with their currency, in any of the usual number formats.

Numbers are read by ``price-parser`` (``1.234,56``, ``1,234.56``, ``1 234,56``, ``80,65``); codes, symbols
and names come from ``babel`` (:mod:`reindex_pipeline.invoices.currencies`), so ``VAT`` or ``PDF`` is never a
currency and ``RM``, ``zł`` or ``Kč`` are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from price_parser import Price

from reindex_pipeline.invoices.currencies import (
    DOLLAR_DEFAULT,
    iso_codes,
    markers_in,
    part_of_legal_form,
    read_marker,
    symbol_pattern,
)

_CODE = r"[A-Z]{3}(?![A-Za-z])"
#: three-letter words of tax and totals in the six languages and Malay receipts ("TOTAL TTC 110,00"): before
#: an amount they label it, unlike other three letters that are no currency ("REF 2547": an id)
TAX_ACRONYMS = frozenset({"TTC", "TVA", "VAT", "GST", "SST", "HST", "IVA", "BTW", "NET", "DUE"})
_NUMBER = r"\d{1,3}(?:[ .,'’]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"


@lru_cache(maxsize=1)
def _money() -> re.Pattern[str]:
    marker = rf"{_CODE}|{symbol_pattern()}|EURO?S?(?![A-Za-z])"
    return re.compile(
        rf"(?<![\w.,/-])(?P<sign>[-−–]|\()?\s?(?P<before>{marker})?\s?(?P<sign2>[-−])?(?P<number>{_NUMBER})"
        rf"(?![\d%])(?![.,]\d)(?!\s?%)(?:\s?(?P<after>{marker}))?(?![\w/])",
        re.IGNORECASE,
    )


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str | None  # ISO 4217 code: the one the marker names, the US dollar for a bare "$"
    start: int
    explicit: bool  # written with a currency or with decimals (not a bare integer such as a quantity)
    ambiguous_currency: bool = False
    currencies: frozenset[str] = frozenset()  # every currency the marker may stand for

    @property
    def text(self) -> str:
        return f"{self.amount:.2f}"


def currency_code(marker: str | None) -> str | None:
    """The one ISO code a printed code, symbol or name stands for; the default for ``$``; else None."""
    codes = read_marker(marker)
    if len(codes) == 1:
        return next(iter(codes))
    return DOLLAR_DEFAULT if DOLLAR_DEFAULT in codes else None


def currencies_in(text: str) -> list[str]:
    """ISO codes named in ``text`` by a code, symbol or name that stands for one currency, in order."""
    return [code for token, _ in markers_in(text) if (code := currency_code(token))]


@lru_cache(maxsize=65536)
def find_money(text: str) -> tuple[Money, ...]:
    """Every amount in ``text``; bare integers (``2023``, ``4``) are returned with ``explicit=False``. Cached:
    a line is read for amounts by several fields."""
    out = []
    for m in _money().finditer(text):
        number = m["number"]
        price = Price.fromstring(number, decimal_separator=_decimal_separator(number))
        if price.amount is None:
            continue
        marker = m["before"] or m["after"]
        if marker and len(marker) == 3 and marker.isalpha() and not marker.isupper() and marker.upper() in iso_codes():
            marker = None  # "eur" inside running text is no code
        if m["before"] and part_of_legal_form(text, m.start("before"), m["before"]):
            continue  # "SDN BHD 822737-X": a company and its registration number
        codes = read_marker(marker)
        if marker and not codes:
            if marker.upper() not in TAX_ACRONYMS:
                continue  # "ABC 12" where ABC is not a currency: not money, maybe an id
            marker = None  # "TOTAL TTC 110,00", "VAT 20.00": a label word before the amount, not its currency
        bracketed = m["sign"] == "(" and ")" in text[m.end() : m.end() + 2]  # ($144.00): a payment, negative
        negative = bool(m["sign"] and m["sign"] != "(" or m["sign2"]) or bracketed
        amount = -price.amount if negative else price.amount
        has_decimals = bool(re.search(r"[.,]\d{1,2}$", number))
        out.append(
            Money(
                amount,
                currency_code(marker),
                m.start("number"),
                bool(codes) or has_decimals,
                len(codes) > 1,
                codes,
            )
        )
    return tuple(out)


def _decimal_separator(number: str) -> str | None:
    """The decimal separator of a printed number: the last ``.``/``,`` when two digits or fewer follow it."""
    m = re.search(r"([.,])(\d{1,2})$", number)
    if m:
        return m.group(1)
    return None
