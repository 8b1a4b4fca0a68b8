"""The guest pages' words in pt-BR, en and es, and dates, times and money in
the guest's locale and the hotel's time zone (Babel).

One catalogue module per supported language (`en.py`, `pt_br.py`, `es.py`), each
a `MESSAGES` dict with the same keys; `Translator.t` falls back to English for a
key a language lacks, and to the key itself for an unknown one. Which language a
page is in, and the offers' names, follow the rules every guest-facing text
shares (`guest_journey.languages`).
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal

from api.i18n import en, es, pt_br
from guest_journey.languages import (
    DEFAULT_LANGUAGE,
    SUPPORTED_LANGUAGES,
    choose_language,
    offer_name,
)

_BY_LANGUAGE = {"pt-BR": pt_br.MESSAGES, "en": en.MESSAGES, "es": es.MESSAGES}
# One catalogue per supported language, in their order (the pages' language switch).
CATALOGUES: dict[str, dict[str, str]] = {language: _BY_LANGUAGE[language] for language in SUPPORTED_LANGUAGES}
# Territories Babel names that are not countries a person is a national of.
_NOT_COUNTRIES = frozenset({"AQ", "EU", "EZ", "QO", "UN", "XA", "XB", "ZZ"})


@lru_cache(maxsize=8)
def _locale(language: str) -> Locale:
    return Locale.parse(language, sep="-")


@lru_cache(maxsize=8)
def _countries(language: str) -> tuple[tuple[str, str], ...]:
    names = _locale(language).territories
    countries = [
        (code, name) for code, name in names.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return tuple(sorted(countries, key=lambda item: _sort_key(item[1])))


def _sort_key(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


class Translator:
    """Words and formats for one language, times shown in one time zone."""

    def __init__(self, language: str, zone: str | None = None) -> None:
        self.language = choose_language(language)
        self.locale = _locale(self.language)
        self.zone: tzinfo | None = ZoneInfo(zone) if zone else None
        self._messages = CATALOGUES[self.language]

    def t(self, key: str, **values: object) -> str:
        text = self._messages.get(key) or CATALOGUES[DEFAULT_LANGUAGE].get(key) or key
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self._messages

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone) if self.zone is not None else moment

    def date(self, value: date | datetime, format: str = "long") -> str:
        day = self.local(value).date() if isinstance(value, datetime) else value
        return format_date(day, format=format, locale=self.locale)

    def time(self, value: time | datetime) -> str:
        moment = self.local(value) if isinstance(value, datetime) else value
        return format_time(moment, format="short", locale=self.locale)

    def datetime(self, value: datetime) -> str:
        return f"{self.date(value, 'medium')} {self.time(value)}"

    def money(self, amount: str | None, currency: str | None) -> str | None:
        if amount is None:
            return None
        try:
            number = Decimal(amount)
        except InvalidOperation:
            return amount
        if currency:
            return format_currency(number, currency, locale=self.locale)
        return format_decimal(number, locale=self.locale)

    def countries(self) -> tuple[tuple[str, str], ...]:
        """(ISO 3166 code, name in this language), sorted by name."""
        return _countries(self.language)

    def country(self, code: str) -> str:
        return self.locale.territories.get(code, code)

    def zone_name(self) -> str:
        return str(getattr(self.zone, "key", "")) or "UTC"

    def offer_title(self, offer: str) -> str:
        """The offer's name, the same as in its messages and on the staff pages."""
        return offer_name(offer, self.language)

    def offer_description(self, offer: str) -> str | None:
        key = f"offer.{offer}.description"
        return self.t(key) if key in CATALOGUES[DEFAULT_LANGUAGE] else None
