"""API keys as `GUEST_JOURNEY_API_KEYS` writes them: `key:role,key:role:hotel-a|hotel-b`.

Each key has a role and, optionally, the hotels it is limited to (`KeyAccess`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

from guest_journey.reservations import HOTEL_ID_PATTERN

ROLES = ("reservations", "ops", "admin")
Role = Literal["reservations", "ops", "admin"]
_HOTEL_ID = re.compile(HOTEL_ID_PATTERN)


@dataclass(frozen=True)
class KeyAccess:
    """What one API key may do: its role, and the hotels it is limited to (None: every hotel).
    `key:role` names every hotel; `key:role:hotel-a|hotel-b` only those."""

    role: Role
    hotels: frozenset[str] | None = None


def parse_key_entry(entry: str) -> tuple[str, str, frozenset[str] | None]:
    """`key:role` or `key:role:hotel-a|hotel-b` → (key, role, hotels); the caller validates."""
    key, _, rest = entry.strip().partition(":")
    role, sep, hotel_list = rest.partition(":")
    hotels = frozenset(hotel.strip() for hotel in hotel_list.split("|")) if sep else None
    return key, role, hotels


def check_api_keys(value: str) -> None:
    """ValueError naming the first entry that is not a key, a known role and hotel ids,
    or that repeats a key; no key is shown."""
    seen: set[str] = set()
    for number, entry in enumerate(value.split(","), start=1):
        key, role, hotels = parse_key_entry(entry)
        if ":" not in entry or not key:
            raise ValueError(
                f"API key entry {number} is not 'key:role' or 'key:role:hotel-a|hotel-b' "
                "(the key is not shown)"
            )
        if role not in ROLES:
            raise ValueError(
                f"API key entry {number}: role {role!r} is not one of {', '.join(ROLES)}"
            )
        for hotel in sorted(hotels or ()):
            if not _HOTEL_ID.match(hotel) or len(hotel) > 64:
                raise ValueError(
                    f"API key entry {number}: hotel {hotel!r} is not a hotel id "
                    "(letters, digits, '.', '_', '-'; hotels separated by '|')"
                )
        if key in seen:
            raise ValueError(f"API key entry {number} repeats a key given before")
        seen.add(key)


def key_access(value: str) -> dict[str, KeyAccess]:
    """Each key's role and hotels, from entries `check_api_keys` has accepted."""
    entries = (parse_key_entry(entry) for entry in value.split(","))
    # `check_api_keys` has accepted only roles in ROLES, so each is a `Role`.
    return {key: KeyAccess(role=cast(Role, role), hotels=hotels) for key, role, hotels in entries}
