"""The journey a route's `{reservation_id}` names, with `?hotel_id=` in hotel scope.

With `GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel` a reservation id may be several hotels';
`api.access.journey_id_for` says which journey the caller means.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query

from api.access import journey_id_for
from api.deps import PrincipalDep, SessionDep, SettingsDep
from guest_journey.reservations import HOTEL_ID_PATTERN, RESERVATION_ID

ReservationIdPath = Annotated[str, Path(pattern=RESERVATION_ID, description="the PMS reservation id")]
HotelOfReservation = Annotated[str | None, Query(
    min_length=1, max_length=64, pattern=HOTEL_ID_PATTERN,
    description="the reservation's hotel, with GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel when several hotels "
    "use the same reservation id (otherwise not needed)",
)]


async def path_journey_id(
    reservation_id: ReservationIdPath,
    principal: PrincipalDep,
    settings: SettingsDep,
    session: SessionDep,
    hotel_id: HotelOfReservation = None,
) -> str:
    return await journey_id_for(principal, session=session, scope=settings.workflow_id_scope,
                                reservation_id=reservation_id, hotel_id=hotel_id)


JourneyIdPath = Annotated[str, Depends(path_journey_id)]
