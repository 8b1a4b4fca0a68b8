"""Operations routes of the runbook: look up one journey."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import PrincipalDep, SessionDep, TemporalClientDep, require_role
from api.error_responses import ROLE_ERRORS, errors
from api.journey_lookup import JourneyIdPath
from communications.message_store import MessageView, list_for_reservation
from guest_journey.journeys import JourneyView
from services.journey_service import read_journey

router = APIRouter(prefix="/guest-experience", tags=["guest-experience"],
                   dependencies=[Depends(require_role("ops"))], responses=ROLE_ERRORS)


class JourneyOut(JourneyView):
    """A journey with its message timeline (CONTRACT §2)."""

    messages: list[MessageView]


@router.get("/{reservation_id}", response_model=JourneyOut, responses=errors(403, 404, 409, 422, 503, why={
    403: "`hotel_id` is not one of the key's hotels",
    409: "(hotel scope) several hotels use this reservation id and `hotel_id` does not say which",
}))
async def get_journey(
    reservation_id: JourneyIdPath,
    client: TemporalClientDep,
    session: SessionDep,
    principal: PrincipalDep,
    consistent: Annotated[bool, Query(
        description="true: ask the running journey itself (a workflow query) instead of the read model",
    )] = False,
) -> JourneyOut:
    """The journey from the read model, which holds every change a journey has
    acknowledged; `?consistent=true` asks the running workflow instead."""
    view = await read_journey(client=client, session=session, reservation_id=reservation_id,
                              consistent=consistent)
    principal.hide_unless_visible(view.hotel_id, f"journey for reservation {reservation_id!r}")
    messages = await list_for_reservation(session=session, reservation_id=reservation_id)
    return JourneyOut(**view.model_dump(), messages=[MessageView.of(record) for record in messages])
