"""The reservation as the reservation system sends it (CONTRACT §2)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
RESERVATION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# A hotel id, wherever one is given: a reservation, a key's hotels (`api_keys`), a route.
HOTEL_ID_PATTERN = r"^[A-Za-z0-9._-]+$"
DEFAULT_LANGUAGE = "en"
FIRST_YEAR, LAST_YEAR = 2000, 2199
# What `_check_moment` takes, as the JSON Schema of a moment says it (a subset: the server also reads
# other ISO 8601 spellings); `format: date-time` rules out days a month has not.
MOMENT_PATTERN = (
    r"^2[01][0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"  # years 2000 to 2199
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:0[0-9]|1[01]):[0-5][0-9]|[+-]12:00|\+1[23]:[0-5][0-9]|\+14:00)$"  # -12:00 to +14:00
)


class Channel(StrEnum):
    whatsapp = "whatsapp"
    email = "email"
    webchat = "webchat"


def _check_phone(value: str) -> str:
    compact = re.sub(r"[\s().-]", "", value)
    if not E164.match(compact):
        raise ValueError(f"{value!r} is not an E.164 phone number such as +5511999990000")
    return compact


def _check_language(value: str) -> str:
    """A BCP 47 tag that names a language we know, normalised (pt-br -> pt-BR)."""
    try:
        locale = Locale.parse(value.replace("_", "-"), sep="-")
    except (UnknownLocaleError, ValueError, TypeError) as error:
        raise ValueError(f"{value!r} is not a known BCP 47 language tag such as 'pt-BR'") from error
    return "-".join(part for part in (locale.language, locale.script, locale.territory) if part)


def _check_moment(value: datetime) -> datetime:
    """A moment the service deals in: a UTC offset some place uses, a year from 2000 to 2199."""
    offset = value.utcoffset()
    if offset is None or not timedelta(hours=-12) <= offset <= timedelta(hours=14):
        raise ValueError(f"{value.isoformat()} has a UTC offset no place uses (they run from -12:00 to +14:00)")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"{value.isoformat()} is not in the years {FIRST_YEAR} to {LAST_YEAR}")
    return value


# What the schema says of a phone and a language (what the validators take is a little wider).
PHONE_PATTERN = r"^[ ().-]*\+[ ().-]*[1-9](?:[ ().-]*[0-9]){6,14}[ ().-]*$"
LANGUAGE_PATTERN = r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$"

Phone = Annotated[str, AfterValidator(_check_phone), WithJsonSchema({
    "type": "string", "pattern": PHONE_PATTERN,
    "description": "E.164, such as +5511999990000; spaces, parentheses, dots and hyphens between digits are dropped",
})]
LanguageTag = Annotated[str, AfterValidator(_check_language), WithJsonSchema({
    "type": "string", "pattern": LANGUAGE_PATTERN, "description": "a BCP 47 tag of a language we know, such as pt-BR",
})]
Moment = Annotated[AwareDatetime, AfterValidator(_check_moment), WithJsonSchema({
    "type": "string", "format": "date-time", "pattern": MOMENT_PATTERN,
    "description": f"ISO 8601 with its UTC offset (-12:00 to +14:00), in the years {FIRST_YEAR} to {LAST_YEAR}",
})]


class Guest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: Phone | None = None
    language: LanguageTag = DEFAULT_LANGUAGE
    preferred_channels: list[Channel] = Field(default_factory=list, max_length=3,
                                              json_schema_extra={"uniqueItems": True})
    marketing_consent: bool = False

    @model_validator(mode="after")
    def _channels_unique(self) -> Guest:
        if len(set(self.preferred_channels)) != len(self.preferred_channels):
            raise ValueError("preferred_channels lists a channel twice")
        return self


class ReservationIn(BaseModel):
    """Body of `PUT /reservations/{reservation_id}`: the whole reservation as the reservation
    system knows it now, sent on every change."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "hotel_id": "copacabana",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "phone": "+5521999990000",
                  "language": "pt-BR", "preferred_channels": ["whatsapp", "email"], "marketing_consent": True},
        "arrival": "2027-01-10T14:00:00-03:00",
        "departure": "2027-01-12T11:00:00-03:00",
        "room_type": "deluxe",
        "rate_plan": "BAR",
    }]})

    hotel_id: str = Field(min_length=1, max_length=64, pattern=HOTEL_ID_PATTERN,
                          description="the hotel's id: the policy's `hotels` key, and what keys are limited to")
    guest: Guest
    arrival: Moment = Field(description="check-in moment with its UTC offset; years 2000 to 2199")
    departure: Moment = Field(description="check-out moment with its UTC offset, after `arrival`")
    room_type: str | None = Field(default=None, max_length=64, description="shown to the guest; offers may name it")
    rate_plan: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _departure_after_arrival(self) -> ReservationIn:
        if self.departure <= self.arrival:
            raise ValueError("departure must be after arrival")
        return self


class Reservation(ReservationIn):
    """A reservation with its id: what a journey is about."""

    reservation_id: str = Field(pattern=RESERVATION_ID)
