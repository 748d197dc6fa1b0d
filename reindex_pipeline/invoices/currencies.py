"""Currencies as the world prints them, from ``babel``'s locale data: ISO codes, local symbols (RM, zł, Kč,
kr, ₹, $ ...) and local names, and the countries a document names, which settle an ambiguous symbol.

Nothing here is a hand list: a symbol is what some locale of a territory that uses the currency prints
(``RM`` is the ringgit in ms_MY; ``$`` is the symbol of 30-odd dollars and pesos), and a country is named
by babel's territory names in the document's languages, its web domains' country codes, or the country of
its organisations' legal forms (``cleanco``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

#: where nothing names a country, ``$`` is read as the US dollar (a weaker candidate than a printed code)
DOLLAR_DEFAULT = "USD"
#: the languages whose currency names and country names are read (the extractor's six, English and Malay)
NAME_LANGUAGES = ("en", "de", "fr", "es", "nl", "pl", "ms")
_COUNTRY_TLD = re.compile(r"(?:https?://|www\.|@)[\w.-]+\.([a-z]{2})(?![\w.])", re.IGNORECASE)


@lru_cache(maxsize=1)
def iso_codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


#: :func:`symbols` as computed from the babel release named in the file: reading every locale of babel takes
#: ~2.5 s, which every new process (each reindex run) would pay on its first document.
SYMBOLS_FILE = Path(__file__).with_name("currency_symbols.json")


@lru_cache(maxsize=1)
def symbols() -> dict[str, frozenset[str]]:
    """Printed symbol -> the currencies it may stand for: :data:`SYMBOLS_FILE` when it was computed from
    the babel installed, else computed now (:func:`symbols_from_babel`)."""
    import babel

    try:
        stored = json.loads(SYMBOLS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stored = {}
    if stored.get("babel") == babel.__version__:
        return {s: frozenset(codes) for s, codes in stored["symbols"].items()}
    return symbols_from_babel()


def symbols_from_babel() -> dict[str, frozenset[str]]:
    """What every locale of a territory prints for the currencies it uses. Single letters (R, K, P, ...)
    are left out: a letter beside a number is far more often a unit or a column than money."""
    from babel import Locale
    from babel.localedata import locale_identifiers
    from babel.numbers import get_currency_symbol, get_territory_currencies

    found: dict[str, set[str]] = {}
    for identifier in locale_identifiers():
        locale = Locale.parse(identifier)
        if not locale.territory:
            continue
        for code in get_territory_currencies(locale.territory):
            symbol = get_currency_symbol(code, locale).strip()
            if symbol and symbol != code and len(symbol) <= 4 and not (len(symbol) == 1 and symbol.isalpha()):
                found.setdefault(symbol, set()).add(code)
    return {s: frozenset(codes) for s, codes in found.items()}


def write_symbols_file() -> Path:
    """Computes :data:`SYMBOLS_FILE` again from the babel installed (after a babel upgrade)."""
    import babel

    rows = ",\n".join(
        f"  {json.dumps(s, ensure_ascii=False)}: {json.dumps(sorted(codes))}"
        for s, codes in sorted(symbols_from_babel().items())
    )
    text = f'{{"babel": {json.dumps(babel.__version__)}, "symbols": {{\n{rows}\n}}}}\n'
    SYMBOLS_FILE.write_text(text, encoding="utf-8")
    return SYMBOLS_FILE


@lru_cache(maxsize=1)
def names() -> dict[str, str]:
    """Lower-case currency name in one of :data:`NAME_LANGUAGES` -> code, where the name is one currency's
    ("euro", "złoty polski", "ringgit Malaysia"); names several currencies share are left out."""
    from babel import Locale

    owners: dict[str, set[str]] = {}
    for language in NAME_LANGUAGES:
        for code, name in Locale.parse(language).currencies.items():
            if code in iso_codes() and len(name) >= 4:
                owners.setdefault(name.casefold(), set()).add(code)
    return {name: next(iter(codes)) for name, codes in owners.items() if len(codes) == 1}


@lru_cache(maxsize=1)
def _pattern() -> re.Pattern[str]:
    marks = sorted(set(symbols()) | set(names()), key=lambda m: (-len(m), m))
    alternatives = "|".join(re.escape(m) for m in marks)
    return re.compile(rf"(?<![A-Za-z])(?:[A-Z]{{3}}(?![A-Za-z])|(?:{alternatives})(?![A-Za-z]))", re.IGNORECASE)


def symbol_pattern() -> str:
    """A regular expression (text) matching any printed symbol or name, for the money reader."""
    marks = sorted(symbols(), key=lambda m: (-len(m), m))
    return "|".join(re.escape(m) + (r"(?![A-Za-z])" if m[-1:].isalpha() else "") for m in marks)


@lru_cache(maxsize=1)
def _upper_symbols() -> dict[str, frozenset[str]]:
    return {s.upper(): codes for s, codes in symbols().items() if s.isalpha()}


def read_marker(marker: str | None) -> frozenset[str]:
    """The currencies a printed code, symbol or name may be (empty when it is none)."""
    if not marker:
        return frozenset()
    marker = marker.strip()
    if len(marker) == 3 and marker.isupper() and marker in iso_codes():
        return frozenset({marker})
    if marker in symbols():
        return symbols()[marker]
    upper = _upper_symbols()
    if marker.upper() in upper and len(marker) >= 2:  # "rm", "KR": receipts print upper case
        return upper[marker.upper()]
    code = names().get(marker.casefold())
    return frozenset({code}) if code else frozenset()


def part_of_legal_form(text: str, start: int, token: str) -> bool:
    """``token`` at ``start`` ends a legal form of several words ("SDN BHD": a Malaysian company, not the
    Bahraini dinar), as ``cleanco`` reads the word before it and the token together."""
    before = text[:start].split()
    return bool(before) and _ends_legal_form(before[-1], token)


@lru_cache(maxsize=16384)
def _ends_legal_form(word: str, token: str) -> bool:
    from reindex_pipeline.invoices.parties import basename

    return basename(f"x {word} {token}") == "x"


def _placed_as_money(text: str, start: int, end: int) -> bool:
    """A code or symbol of letters ("RM", "kr", "EUR", "ALL") is a currency beside a number, alone in its
    cell, in brackets or after a colon; elsewhere it is a word ("THANK YOU ALL", "SR" as a tax code)."""
    before, after = text[:start], text[end:]
    if re.search(r"\d\s?$", before) or re.match(r"\s?[-−]?\s?\d", after):
        return True
    if re.search(r"[(:]\s?$", before) or re.match(r"\s?\)", after):
        return True
    return (
        not before.strip(" \t|")
        and not after.strip(" \t|")
        or bool(re.search(r"(?:^|\s{2,}|\|)\s*$", before) and re.match(r"\s*(?:$|\s{2,}|\|)", after))
    )


@lru_cache(maxsize=65536)
def markers_in(text: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """Every currency marker in ``text``, in order: (as printed, the currencies it may be). Cached: a line
    is read for markers by several fields."""
    out = []
    for m in _pattern().finditer(text):
        token = m.group(0)
        if len(token) == 3 and token.isalpha() and not token.isupper():
            continue  # "Eur" in a word of three letters, not a code
        if part_of_legal_form(text, m.start(), token):
            continue
        if token.isalpha() and token.casefold() not in names() and not _placed_as_money(text, m.start(), m.end()):
            continue
        codes = read_marker(token)
        if codes:
            out.append((token, codes))
    return tuple(out)


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    from babel import Locale

    owners: dict[str, str] = {}
    for language in NAME_LANGUAGES:
        for territory, name in Locale.parse(language).territories.items():
            if territory.isalpha() and len(territory) == 2 and len(name) >= 5 and " " not in name.strip():
                owners.setdefault(name.casefold(), territory)
    return owners


_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _names_by_first_word() -> dict[str, tuple[str, ...]]:
    """Country names by their first run of word characters ("guinea" -> "guinea", "guinea-bissau")."""
    by_word: dict[str, list[str]] = {}
    for name in _country_names():
        match = _WORD.match(name)
        if match:
            by_word.setdefault(match.group(0).lower(), []).append(name)
    return {word: tuple(names) for word, names in by_word.items()}


@lru_cache(maxsize=4096)
def _country_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=lambda m: (-len(m), m)))
    return re.compile(rf"(?<!\w)({alternatives})(?!\w)", re.IGNORECASE)


def _country_matches(text: str) -> Iterator[re.Match[str]]:
    """The country names in ``text``, longest first where they overlap. Only the names whose first word is a
    word of the text are tried: one pattern of all 700 names costs ~2.5 ms a page, this a fraction of it."""
    by_word = _names_by_first_word()
    words = {w.lower() for w in _WORD.findall(text)}
    names = tuple(sorted({n for w in words for n in by_word.get(w, ())}))
    return _country_pattern(names).finditer(text) if names else iter(())


def countries_in(text: str, organisation_countries: list[str] = ()) -> Counter[str]:
    """Territory codes the document names: country names, web and mail domains' country codes, and the
    countries of its organisations' legal forms (each a weaker vote)."""
    votes: Counter[str] = Counter()
    for m in _country_matches(text):
        word = m.group(1)
        if word[0].isupper():  # a name, not a word: "chad", "jordan" in lower case are left alone
            votes[_country_names()[word.casefold()]] += 2
    for tld in _COUNTRY_TLD.findall(text):
        code = tld.upper().replace("UK", "GB")
        if code not in ("IO", "AI", "CO", "ME", "TV", "FM", "LY"):  # domains used as words
            votes[code] += 1
    for territory in organisation_countries:
        votes[territory] += 1
    return votes


def country_currencies(territory: str) -> tuple[str, ...]:
    from babel.numbers import get_territory_currencies

    try:
        return tuple(get_territory_currencies(territory))
    except Exception:  # babel raises on a territory it does not know
        return ()


@lru_cache(maxsize=4096)
def legal_form_countries(name: str) -> tuple[str, ...]:
    """Territory codes of the countries whose legal forms end ``name`` (``cleanco``'s country sources), at
    most three. Forms are compared without dots and spaces: cleanco lists "sdn. bhd." for Malaysia and
    "sdn bhd" for Singapore, "sp. z.o.o." for Poland, and a document writes any of them."""
    words = _form_words(name)
    forms = _forms()
    found = sorted({code for i in range(len(words)) for code in forms.get("".join(words[i:]), ())})
    return tuple(found) if len(found) <= 3 else ()


#: countries whose legal forms stand before the name ("PT Bank Mandiri", "OOO Romashka", "ТОВ «Світанок»")
PREFIX_FORM_COUNTRIES = frozenset({"ID", "RU", "UA"})


@lru_cache(maxsize=1)
def prefix_forms() -> frozenset[str]:
    """Legal forms (without dots and spaces) that cleanco lists only for countries where the form comes first:
    at a name's end they are another word ("MANDATE PT", "SHOPPING AT", "incl. VAT")."""
    return frozenset(form for form, codes in _forms().items() if set(codes) <= PREFIX_FORM_COUNTRIES)


def is_legal_form(text: str) -> bool:
    """The text is a legal form and nothing else ("SDN BHD", "GmbH", "sp. z o.o.")."""
    return "".join(_form_words(text)) in _forms()


def is_prefix_form(text: str) -> bool:
    """The text is a legal form of :func:`prefix_forms` and nothing else ("PT", "OOO")."""
    return "".join(_form_words(text)) in prefix_forms()


def _form_words(text: str) -> list[str]:
    return re.sub(r"[^\w&/]+", " ", text.replace(".", " ").casefold()).split()


@lru_cache(maxsize=1)
def _forms() -> dict[str, tuple[str, ...]]:
    """Each legal form of cleanco's country sources, without dots and spaces -> its countries' codes."""
    from cleanco import countrysources

    forms: dict[str, list[str]] = {}
    for country, form in countrysources():
        code = _english_territories().get(country.casefold())
        key = "".join(_form_words(form))
        if code and key:
            forms.setdefault(key, []).append(code)
    return {form: tuple(dict.fromkeys(codes)) for form, codes in forms.items()}


@lru_cache(maxsize=1)
def _english_territories() -> dict[str, str]:
    from babel import Locale

    english = {n.casefold(): code for code, n in Locale("en").territories.items()}
    english.update({"united states of america": "US", "united kingdom": "GB"})
    return english


if __name__ == "__main__":
    print(f"written {write_symbols_file()}")
