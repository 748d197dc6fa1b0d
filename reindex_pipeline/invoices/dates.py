"""Dates in text, in the six languages: candidates found by shape, read by ``dateparser``.

Numeric dates with the day and month both 12 or less are read day-first, unless the document is in
English and uses the dollar (month-first, as in the US); an impossible reading is retried the other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

_WORD = r"[^\W\d_]{3,12}\.?"
DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}([./-])\d{1,2}\1\d{1,2}"  # 2023-04-23, 2016/05/01, 2023.04.23
    r"|\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})(?![\d])"  # 04.07.2023, 31/08/2022, 11/13/2023, 02.09.22
    rf"|\d{{1,2}}\.?\s(?:de\s)?{_WORD},?\s(?:de\s)?\d{{4}}"  # 13 Sep, 2022 / 4. März 2023 / 13 de abril de 2023
    r"|\d{1,2}([-/ ])[^\W\d_]{3,9}\2(?:\d{4}|\d{2})"  # 05-AUG-2017, 30 DEC 17, 01/Nov/2017
    rf"|{_WORD}\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}"  # Oct 31, 2023 / April 13 2023
    r")(?!\d)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FoundDate:
    value: date
    start: int
    end: int


_NUMERIC_DATE = re.compile(r"(?<![\d./-])(\d{1,2})[./-](\d{1,2})[./-](\d{2}|\d{4})(?![\d./-])")


def month_first(text: str, default: bool) -> bool:
    """Whether the document writes numeric dates month first: as its unambiguous ones do (a first part over 12
    is a day, a second part over 12 is a day), when they agree; else ``default``."""
    day_first = months_first = 0
    for m in _NUMERIC_DATE.finditer(text):
        first, second = int(m.group(1)), int(m.group(2))
        day_first += first > 12 >= second >= 1
        months_first += second > 12 >= first >= 1
    if day_first and not months_first:
        return False
    if months_first and not day_first:
        return True
    return default


def find_dates(text: str, languages: tuple[str, ...], month_first: bool = False) -> list[FoundDate]:
    out = []
    for m in DATE.finditer(text):
        parsed = parse_date(m.group(0), languages, month_first)
        if parsed is not None:
            out.append(FoundDate(parsed, m.start(), m.end()))
    return out


@lru_cache(maxsize=4096)
def parse_date(text: str, languages: tuple[str, ...], month_first: bool = False) -> date | None:
    import dateparser

    text = re.sub(r"\s(de)\s", " ", text.strip(), flags=re.IGNORECASE) if " de " in text.lower() else text.strip()
    numeric = bool(re.fullmatch(r"[\d./-]+", text))
    orders = (
        (["MDY", "DMY"] if month_first else ["DMY", "MDY"])
        if numeric and not re.match(r"\d{4}[./-]", text)
        else ["YMD"]
        if numeric
        else [None]
    )
    for order in orders:
        settings = {
            "REQUIRE_PARTS": ["day", "month", "year"],
            "PREFER_DATES_FROM": "past",
            "RETURN_AS_TIMEZONE_AWARE": False,
        }
        if order:
            settings["DATE_ORDER"] = order
        try:
            parsed = dateparser.parse(text, languages=list(languages), settings=settings)
        except (ValueError, OverflowError):
            parsed = None
        if parsed is not None and 1900 < parsed.year < 2200:
            return parsed.date()
    return None
