"""Small factories for the models tests build again and again.

Every factory returns a valid object with plain defaults; keyword arguments
override any field. Datetimes are timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guest_journey.messages import SendMessageInput, message_id_for, message_key
from guest_journey.policy import HotelPolicy, JourneyPolicy
from guest_journey.reservations import Channel, Guest, Reservation

SAO_PAULO = ZoneInfo("America/Sao_Paulo")

DEFAULT_ARRIVAL = datetime(2025, 3, 20, 15, 0, tzinfo=SAO_PAULO)
DEFAULT_NIGHTS = 3
CHECKOUT_TIME = time(12, 0)

GUEST_FIELDS = frozenset(Guest.model_fields)


def make_guest(**overrides: Any) -> Guest:
    """A guest reachable by e-mail and WhatsApp, without marketing consent."""
    data: dict[str, Any] = {
        "name": "Ana Souza",
        "email": "ana.souza@example.com",
        "phone": "+5511999990000",
        "language": "pt-BR",
        "preferred_channels": ["whatsapp", "email"],
        "marketing_consent": False,
    }
    data.update(overrides)
    return Guest.model_validate(data)


def make_reservation(*, nights: int | None = None, **overrides: Any) -> Reservation:
    """A 3-night stay in São Paulo arriving 2025-03-20 15:00 (-03:00).

    Any Reservation field can be overridden; `guest` takes a Guest or a dict of
    guest fields, and guest fields may also be given directly
    (`make_reservation(marketing_consent=True)`). Without `departure`, the stay
    ends `nights` nights (default 3) after arrival at 12:00 in arrival's zone.
    """
    guest_overrides = {key: overrides.pop(key) for key in list(overrides) if key in GUEST_FIELDS}
    guest = overrides.pop("guest", None)
    if isinstance(guest, Guest):
        guest = Guest.model_validate({**guest.model_dump(), **guest_overrides})
    else:
        guest = make_guest(**{**(guest or {}), **guest_overrides})
    arrival = overrides.pop("arrival", DEFAULT_ARRIVAL)
    departure = overrides.pop("departure", None)
    if departure is None:
        last_day = (arrival + timedelta(days=nights or DEFAULT_NIGHTS)).date()
        departure = datetime.combine(last_day, CHECKOUT_TIME, tzinfo=arrival.tzinfo)
    elif nights is not None:
        raise TypeError("give departure or nights, not both")
    data: dict[str, Any] = {
        "reservation_id": "R-1001",
        "hotel_id": "hotel-sp",
        "guest": guest,
        "arrival": arrival,
        "departure": departure,
        "room_type": "DLX",
        "rate_plan": "BAR",
    }
    data.update(overrides)
    return Reservation.model_validate(data)


def make_policy(**overrides: Any) -> HotelPolicy:
    """The built-in default policy of one hotel, with `overrides` (validated as a
    policy file's values are: ISO 8601 texts or timedeltas, "HH:MM" or time)."""
    return HotelPolicy.model_validate({**HotelPolicy().model_dump(), **overrides})


def make_journey_policy(**overrides: Any) -> JourneyPolicy:
    """The whole policy (defaults plus `hotels` overrides), validated."""
    return JourneyPolicy.model_validate({**JourneyPolicy().model_dump(), **overrides})


def make_invitation(channel: Channel = Channel.email, **overrides: Any) -> SendMessageInput:
    """The check-in invitation of reservation R1 (arriving 2030-05-01) to Ana
    Souza on `channel`, as the journey asks the messaging activity to send it.

    A send left in doubt on a channel that reports statuses does not wait for
    the report (`wait_for_provider_status` 0). Any field can be overridden.
    """
    key = message_key("R1", "checkin_invitation", channel)
    departure = datetime(2030, 5, 3, 11, tzinfo=UTC)
    message = SendMessageInput(
        message_id=message_id_for(key),
        message_key=key,
        reservation_id="R1",
        hotel_id="hotel-1",
        step_key="checkin_invitation",
        template="checkin_invitation",
        channel=channel,
        guest=Guest(name="Ana Souza", email="ana@example.com", phone="+5511999990000", language="pt-BR"),
        context={
            "arrival": (departure - timedelta(days=2)).isoformat(),
            "departure": departure.isoformat(),
            "journey_stage": "pre_arrival",
            "step_key": "checkin_invitation",
            "room_type": None,
            "hotel_timezone": "America/Sao_Paulo",
        },
        wait_for_provider_status=timedelta(seconds=0),
    )
    return message.model_copy(update=overrides)
