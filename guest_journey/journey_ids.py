"""Which journey a reservation id names, under `GUEST_JOURNEY_WORKFLOW_ID_SCOPE`.

`reservation` (the default): the reservation system's id is the journey's, and the
workflow id is `journey-{reservation_id}`. `hotel`, for hotels whose systems give
the same ids: a journey is kept under `{hotel_id}-{reservation_id}` (its workflow id
`journey-{hotel_id}-{reservation_id}`), and that longer id is the journey's
`reservation_id` in every answer, page, message record and export.

A caller names a journey in hotel scope by that longer id, or by the hotel's own id
with the hotel (`?hotel_id=`, `--hotel`), or by the hotel's own id alone when only
one of the hotels it may see has such a reservation (`find_journey_id`).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.read_model import JourneyRecord
from guest_journey.settings import WorkflowIdScope

LONGEST_ID = 128  # the read model's and the message records' column


class JourneyIdTooLong(ValueError):
    """In hotel scope, the hotel and the reservation ids together are longer than a journey id may be."""


class AmbiguousReservation(ValueError):
    """In hotel scope, a reservation id that several hotels (visible to the caller) use."""

    def __init__(self, reservation_id: str, hotels: list[str]) -> None:
        super().__init__(
            f"reservation {reservation_id!r} exists in hotels {', '.join(hotels)}: name the hotel "
            f"(hotel_id; on the command line --hotel), or use the journey's id, such as "
            f"{hotels[0] + '-' + reservation_id!r}"
        )
        self.hotels = hotels


def journey_id(hotel_id: str, reservation_id: str, scope: WorkflowIdScope) -> str:
    """The id a new reservation's journey is kept under (the `reservation_id` of its views)."""
    if scope == "reservation":
        return reservation_id
    scoped = f"{hotel_id}-{reservation_id}"
    if len(scoped) > LONGEST_ID:
        raise JourneyIdTooLong(
            f"reservation_id: with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel, hotel_id and reservation_id joined by "
            f"'-' may be at most {LONGEST_ID} characters; {scoped[:40]!r}... has {len(scoped)}"
        )
    return scoped


async def find_journey_id(
    *,
    session: AsyncSession,
    scope: WorkflowIdScope,
    reservation_id: str,
    hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> str:
    """The journey id a caller means by `reservation_id` (and `hotel_id`, when given).

    `hotels` are the hotels the caller may see (None: every hotel). In hotel scope,
    without a hotel: the journey whose id this is, else the one journey of the caller's
    hotels with this reservation id; a caller of one hotel means that hotel's. Raises
    `AmbiguousReservation` when several hotels the caller sees have it. An id that
    names no journey is returned as it is, for the caller's "not found".
    """
    if scope == "reservation":
        return reservation_id
    if hotel_id is not None:
        return journey_id(hotel_id, reservation_id, scope)
    rows = (await session.exec(
        select(JourneyRecord.reservation_id, JourneyRecord.hotel_id).where(or_(
            col(JourneyRecord.reservation_id) == reservation_id,
            col(JourneyRecord.reservation_id).endswith(f"-{reservation_id}", autoescape=True),
        ))
    )).all()
    if any(key == reservation_id for key, _hotel in rows):
        return reservation_id
    matching = sorted(hotel for key, hotel in rows
                      if key == f"{hotel}-{reservation_id}" and (hotels is None or hotel in hotels))
    if len(matching) > 1:
        raise AmbiguousReservation(reservation_id, matching)
    if matching:
        return journey_id(matching[0], reservation_id, scope)
    if hotels is not None and len(hotels) == 1:
        return journey_id(next(iter(hotels)), reservation_id, scope)
    return reservation_id
