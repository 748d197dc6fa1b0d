"""Money in text: amounts with their currency, in any of the usual number formats.

Numbers are read by ``price-parser`` (``1.234,56``, ``1,234.56``, ``1 234,56``, ``80,65``); ISO codes are
checked against ``babel``'s currency list, so ``VAT`` or ``PDF`` is never a currency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from price_parser import Price

#: symbols that name one currency (``$`` alone is read as USD, with lower confidence)
SYMBOLS = {
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "zł": "PLN",
    "us$": "USD",
    "$": "USD",
    "fr.": "CHF",
    "sfr": "CHF",
    "kč": "CZK",
    "ft": "HUF",
    "euro": "EUR",
    "euros": "EUR",
}
AMBIGUOUS_SYMBOLS = {"$"}

_CODE = r"[A-Z]{3}(?![A-Za-z])"
_SYMBOL = r"US\$|\$|€|£|¥|₹|zł|EURO?S?(?![A-Za-z])"
_NUMBER = r"\d{1,3}(?:[ .,'’]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
MONEY = re.compile(
    rf"(?<![\w.,/-])(?P<sign>[-−–]|\()?\s?(?P<before>{_CODE}|{_SYMBOL})?\s?(?P<sign2>[-−])?(?P<number>{_NUMBER})"
    rf"(?![\d%])(?!\s?%)(?:\s?(?P<after>{_CODE}|{_SYMBOL}))?(?![\w/])"
)


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str | None  # ISO 4217 code
    start: int
    explicit: bool  # written with a currency or with decimals (not a bare integer such as a quantity)
    ambiguous_currency: bool = False

    @property
    def text(self) -> str:
        return f"{self.amount:.2f}"


@lru_cache(maxsize=1)
def iso_codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def currency_code(marker: str | None) -> str | None:
    """ISO code for a symbol or code as printed, or None."""
    if not marker:
        return None
    marker = marker.strip()
    if marker.upper() in iso_codes() and len(marker) == 3 and marker.isupper():
        return marker.upper()
    return SYMBOLS.get(marker.lower())


def currencies_in(text: str) -> list[str]:
    """ISO codes named in ``text`` by code or symbol, in order."""
    found = []
    for m in re.finditer(rf"(?<![A-Za-z]){_CODE}|{_SYMBOL}", text):
        code = currency_code(m.group(0))
        if code:
            found.append(code)
    return found


def find_money(text: str) -> list[Money]:
    """Every amount in ``text``; bare integers (``2023``, ``4``) are returned with ``explicit=False``."""
    out = []
    for m in MONEY.finditer(text):
        number = m["number"]
        price = Price.fromstring(number, decimal_separator=_decimal_separator(number))
        if price.amount is None:
            continue
        marker = m["before"] or m["after"]
        code = currency_code(marker)
        if marker and code is None:
            continue  # "ABC 12" where ABC is not a currency: not money, maybe an id
        bracketed = m["sign"] == "(" and ")" in text[m.end() : m.end() + 2]  # ($144.00): a payment, negative
        negative = bool(m["sign"] and m["sign"] != "(" or m["sign2"]) or bracketed
        amount = -price.amount if negative else price.amount
        has_decimals = bool(re.search(r"[.,]\d{1,2}$", number))
        out.append(
            Money(
                amount, code, m.start("number"), bool(code) or has_decimals, (marker or "").strip() in AMBIGUOUS_SYMBOLS
            )
        )
    return out


def _decimal_separator(number: str) -> str | None:
    """The decimal separator of a printed number: the last ``.``/``,`` when two digits or fewer follow it."""
    m = re.search(r"([.,])(\d{1,2})$", number)
    if m:
        return m.group(1)
    return None
