"""A whole stay in seconds of real time: the policy and the reservations for it.

Every message of the default journey is in it — check-in invitation and
reminder, two upsell offers and a follow-up, the feedback request and its
reminder — with moments a few seconds apart, no quiet hours, and delivery
retried within seconds, so that a journey from booking to close runs while a
test watches it on the real Temporal dev server.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from guest_journey.policy import Delivery, HotelPolicy, UpsellOffer
from guest_journey.reservations import Channel, Guest, Reservation
from tests.chaos.size import ChaosSize

SECOND = timedelta(seconds=1)
HOTEL_ID = "hotel-chaos"

# Retries a few seconds apart, and an attempt given up soon enough that one lost
# with a killed worker is tried again within the stay.
FAST_DELIVERY = Delivery(
    first_retry_after=1 * SECOND,
    max_retry_interval=2 * SECOND,
    give_up_on_channel_after=timedelta(hours=1),
    attempt_timeout=10 * SECOND,
)


def _whole_seconds(value: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(value.total_seconds())))


def short_policy(
    *, lead: timedelta, stay: timedelta, close_after: timedelta, delivery: Delivery = FAST_DELIVERY
) -> HotelPolicy:
    """Booking `lead` before arrival, `stay` long, closed `close_after` the departure."""
    return HotelPolicy(
        checkin_reminders_before_arrival=[_whole_seconds(lead * 0.4)],
        upsell_offers=[
            UpsellOffer(offer="room_upgrade", send_before_arrival=timedelta(hours=48)),  # at once
            UpsellOffer(
                offer="late_checkout",
                send_before_departure=_whole_seconds(stay * 0.6),
                follow_up_after=_whole_seconds(stay * 0.25),
            ),
        ],
        post_stay_feedback_after_departure=1 * SECOND,
        feedback_reminder_after=_whole_seconds(close_after * 0.3),
        close_after_departure=close_after,
        quiet_hours=None,
        delivery=delivery,
    )


def quick_stay_policy(size: ChaosSize, delivery: Delivery = FAST_DELIVERY) -> HotelPolicy:
    """The short policy of the size's quick stays (`quick_lead`, `quick_stay`, `quick_close_after`)."""
    return short_policy(lead=size.quick_lead, stay=size.quick_stay, close_after=size.quick_close_after,
                        delivery=delivery)


def new_reservation_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def short_stay(
    reservation_id: str,
    *,
    booked_at: datetime,
    lead: timedelta,
    stay: timedelta,
    email: str | None = "guest@example.com",
    phone: str | None = None,
    preferred_channels: list[Channel] | None = None,
) -> Reservation:
    """A reservation arriving `lead` after `booked_at`, with consent to offers."""
    arrival = booked_at + lead
    return Reservation(
        reservation_id=reservation_id,
        hotel_id=HOTEL_ID,
        guest=Guest(
            name="Ana Souza", email=email, phone=phone, language="pt-BR", marketing_consent=True,
            preferred_channels=preferred_channels or [],
        ),
        arrival=arrival,
        departure=arrival + stay,
    )


def guest_email(index: int) -> str:
    """The e-mail address of the `index`-th guest of a run."""
    return f"guest{index}@example.com"


def quick_stay(prefix: str, size: ChaosSize, **guest: Any) -> Reservation:
    """A quick stay of the size (see `quick_stay_policy`) booked now, under a new
    reservation id; `guest` sets `short_stay`'s e-mail, phone and preferred channels."""
    return short_stay(
        new_reservation_id(prefix), booked_at=datetime.now(UTC), lead=size.quick_lead, stay=size.quick_stay, **guest
    )
