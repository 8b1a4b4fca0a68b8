"""Hotel-scoped access: the one rule of which hotels a caller may see and change.

An API key is `key:role` (every hotel) or `key:role:hotel-a|hotel-b` (only
those; `guest_journey.api_keys.KeyAccess`). The caller — a Bearer key, a staff
session signed in with a key, or a loopback caller in development without
keys — is a `Principal`: its role and its hotels (`None`: every hotel).

- `Principal.check_hotel` is the one check of a hotel named in a request
  (a `hotel_id` filter, the hotel of a new reservation): 403 naming it.
- `Principal.hide_unless_visible` is the check of a hotel found behind a
  reservation or message id: another hotel's reservation is answered 404, as if
  it did not exist, so a scoped key learns nothing of other hotels' ids.
- `Principal.hotel_filter` is what queries take: the hotels to filter on, or
  None for every hotel; a `hotel_id` query parameter narrows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.message_store import MessageRecord
from guest_journey import read_model
from guest_journey.api_keys import KeyAccess, Role
from guest_journey.journey_ids import AmbiguousReservation, JourneyIdTooLong, find_journey_id
from guest_journey.settings import WorkflowIdScope
from services.errors import Conflict, DomainError, InvalidRequest, NotFound, Unavailable
from services.journey_service import read_journey


class OutsideScope(DomainError):
    """403: a hotel the caller's key does not name."""

    status_code = 403


@dataclass(frozen=True)
class Principal:
    role: Role
    hotels: frozenset[str] | None = None  # None: every hotel

    @classmethod
    def of(cls, access: KeyAccess) -> Principal:
        return cls(role=access.role, hotels=access.hotels)

    @property
    def scoped(self) -> bool:
        return self.hotels is not None

    def may_see(self, hotel_id: str | None) -> bool:
        """Whether the caller may see this hotel. A record of no hotel (an inbound message not
        matched to a journey) belongs to no hotel, so only unscoped callers see it."""
        if self.hotels is None:
            return True
        return hotel_id is not None and hotel_id in self.hotels

    def check_hotel(self, hotel_id: str | None) -> None:
        """403 naming a hotel the request names that the caller may not use."""
        if not self.may_see(hotel_id):
            raise OutsideScope(f"hotel_id: your key is limited to {', '.join(sorted(self.hotels or ()))}; "
                               f"it may not use hotel {hotel_id!r}")

    def hide_unless_visible(self, hotel_id: str | None, what: str) -> None:
        """404 for a record of another hotel: to a scoped caller it does not exist."""
        if hotel_id is not None and not self.may_see(hotel_id):
            raise NotFound(f"no {what}")  # the words of `api.errors.journey_not_found`

    def hotel_filter(self, hotel_id: str | None = None) -> frozenset[str] | None:
        """The hotels a query may return: the caller's, narrowed to `hotel_id` when given
        (403 when that hotel is not the caller's); None means every hotel."""
        if hotel_id:
            self.check_hotel(hotel_id)
            return frozenset({hotel_id})
        return self.hotels


EVERY_HOTEL_ADMIN = Principal(role="admin")


class AmbiguousJourney(Conflict):
    """409 (hotel scope): several of the caller's hotels use this reservation id; `journey_ids` are theirs."""

    def __init__(self, detail: str, journey_ids: list[str]) -> None:
        super().__init__(detail)
        self.journey_ids = journey_ids


async def journey_id_for(
    principal: Principal, *, session: AsyncSession, scope: WorkflowIdScope, reservation_id: str,
    hotel_id: str | None = None,
) -> str:
    """The journey a caller names (`guest_journey.journey_ids.find_journey_id`), among the
    hotels it may see: 403 for a `hotel_id` not the caller's, 409 for a reservation id that
    several of its hotels use (in hotel scope), 422 for ids too long together."""
    if hotel_id is not None:
        principal.check_hotel(hotel_id)
    try:
        return await find_journey_id(session=session, scope=scope, reservation_id=reservation_id,
                                     hotel_id=hotel_id, hotels=principal.hotels)
    except AmbiguousReservation as error:
        raise AmbiguousJourney(str(error), [f"{hotel}-{reservation_id}" for hotel in error.hotels]) from error
    except JourneyIdTooLong as error:
        raise InvalidRequest(str(error)) from error


async def hotel_of_reservation(*, client: Client, session: AsyncSession, reservation_id: str) -> str | None:
    """The hotel of a reservation's journey: the read model's, else the running journey's
    own (the read model is written a moment after the journey starts); None when there is
    no journey, or Temporal cannot tell."""
    stored = await read_model.get_journey(session=session, reservation_id=reservation_id)
    if stored is not None:
        return stored.hotel_id
    try:
        return (await read_journey(client=client, session=session, reservation_id=reservation_id)).hotel_id
    except (NotFound, Unavailable):
        return None


async def check_reservation(
    principal: Principal, *, client: Client, session: AsyncSession, reservation_id: str
) -> None:
    """404 when the reservation belongs to a hotel the caller may not see; nothing to look
    up for a caller of every hotel."""
    if not principal.scoped:
        return
    hotel = await hotel_of_reservation(client=client, session=session, reservation_id=reservation_id)
    principal.hide_unless_visible(hotel, f"journey for reservation {reservation_id!r}")


async def hidden_reservations(
    principal: Principal, *, client: Client, session: AsyncSession, reservation_ids: Iterable[str]
) -> set[str]:
    """Of these reservations, those of hotels the caller may not see (to be answered as
    unknown): one read of the read model, the running journey asked only for the rest."""
    if not principal.scoped:
        return set()
    ids = sorted(set(reservation_ids))
    stored = await read_model.hotels_of(session=session, reservation_ids=ids)
    hidden = set()
    for reservation_id in ids:
        hotel = stored.get(reservation_id)
        if hotel is None:
            hotel = await hotel_of_reservation(client=client, session=session, reservation_id=reservation_id)
        if hotel is not None and not principal.may_see(hotel):
            hidden.add(reservation_id)
    return hidden


async def check_message(principal: Principal, *, session: AsyncSession, message_id: str) -> None:
    """404 when the message belongs to a hotel the caller may not see (or, for a scoped
    caller, to no hotel)."""
    if not principal.scoped:
        return
    message = await session.get(MessageRecord, message_id)
    if message is not None and not principal.may_see(message.hotel_id):
        raise NotFound(f"no message {message_id!r}")
