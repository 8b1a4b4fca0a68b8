"""The sandboxed Jinja2 environment of the message templates and its filters.

One environment per purpose: without autoescaping for subjects and text, with it
for HTML. Both are sandboxed (`ImmutableSandboxedEnvironment`) and use
`StrictUndefined`. The filters show dates, times and amounts in the language of
the file being rendered and the hotel's time zone: `date`, `datetime`, `time`,
`money`, `first_name`, `nl2br`, `offer_label` (the offer's name from
`guest_journey.languages`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.numbers import format_currency, format_decimal
from jinja2 import FileSystemLoader, StrictUndefined, nodes, pass_context, pass_eval_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from guest_journey.languages import DEFAULT_LANGUAGE, offer_name

logger = logging.getLogger(__name__)

NamedFormat = Literal["full", "long", "medium", "short"]


def sandboxed_environment(directory: Path, *, autoescape: bool) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(directory),
        undefined=StrictUndefined,
        autoescape=autoescape,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(
        date=_date,
        datetime=_datetime,
        time=_time,
        money=_money,
        first_name=_first_name,
        nl2br=_nl2br,
        offer_label=_offer_label,
    )
    return env


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


@lru_cache(maxsize=64)
def _zone(name: str) -> tzinfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("unknown hotel_timezone %r: times are shown with their own offset", name)
        return None


def _context_locale(context: Context) -> Locale:
    return _locale(str(context.get("language") or DEFAULT_LANGUAGE))


def _moment(context: Context, value: Any) -> datetime | date:
    """An ISO 8601 string (or date/datetime) in the hotel's time zone when one is given."""
    moment: datetime | date
    if isinstance(value, date):
        moment = value
    elif isinstance(value, str):
        try:
            moment = (
                date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
            )
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or datetime") from None
    else:
        raise ValueError(f"{value!r} is not an ISO 8601 date or datetime")
    zone_name = context.get("hotel_timezone")
    zone = _zone(str(zone_name)) if zone_name else None
    if isinstance(moment, datetime) and zone is not None:
        moment = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    return moment


@pass_context
def _date(context: Context, value: Any, format: str = "long") -> str:
    moment = _moment(context, value)
    day = moment.date() if isinstance(moment, datetime) else moment
    return format_date(day, format=format, locale=_context_locale(context))


@pass_context
def _time(context: Context, value: Any, format: str = "short") -> str:
    moment = _moment(context, value)
    if not isinstance(moment, datetime):
        raise ValueError(f"{value!r} has no time of day")
    return format_time(moment, format=format, locale=_context_locale(context))


@pass_context
def _datetime(context: Context, value: Any, format: NamedFormat = "long") -> str:
    """Date in `format` and time in `short`, joined the way the language does it."""
    moment = _moment(context, value)
    if not isinstance(moment, datetime):
        return _date(context, value, format)
    locale = _context_locale(context)
    pattern = get_datetime_format(format, locale=locale)
    return (
        str(pattern)
        .replace("'", "")
        .replace("{0}", format_time(moment, format="short", locale=locale))
        .replace("{1}", format_date(moment.date(), format=format, locale=locale))
    )


@pass_context
def _money(context: Context, amount: Any, currency: str | None = None) -> str:
    try:
        number = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"{amount!r} is not an amount of money") from None
    locale = _context_locale(context)
    if currency:
        return format_currency(number, str(currency).upper(), locale=locale)
    return format_decimal(number, locale=locale)


def _first_name(name: Any) -> str:
    words = str(name).split()
    return words[0] if words else ""


@pass_eval_context
def _nl2br(eval_context: nodes.EvalContext, value: Any) -> str:
    if not eval_context.autoescape:
        return str(value)
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


@pass_context
def _offer_label(context: Context, offer: Any) -> str:
    """`room_upgrade` -> "Room upgrade" / "Upgrade de quarto": the name guest pages and
    staff pages show too (`guest_journey.languages.OFFER_NAMES`); unknown offers: their
    code, underscores to spaces."""
    return offer_name(str(offer), str(context.get("language") or DEFAULT_LANGUAGE))
