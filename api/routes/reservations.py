"""The reservation system's routes: start, update and cancel journeys, PMS events.

A key limited to some hotels (`api.access`) creates reservations of its hotels only (403
naming another), and another hotel's reservation does not exist for it (404)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.access import check_reservation
from api.deps import (
    PolicyDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    TemporalClientDep,
    require_role,
)
from api.error_responses import ROLE_ERRORS, errors
from api.idempotency import IdempotencyDep
from api.journey_lookup import JourneyIdPath, ReservationIdPath
from guest_journey.journey_ids import JourneyIdTooLong, journey_id
from guest_journey.journeys import Stage, workflow_id_for
from guest_journey.read_model import finished_stage
from guest_journey.reservations import Moment, Reservation, ReservationIn
from services.errors import InvalidRequest
from services.journey_service import put_reservation, update_journey
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import CancelRequest, JourneyAck, PmsEvent, PmsEventType

router = APIRouter(
    prefix="/reservations", tags=["reservations"], dependencies=[Depends(require_role("reservations"))],
    responses=ROLE_ERRORS,
)

IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="repeat it on a retry: the same request is applied once"),
]


class JourneyRef(BaseModel):
    reservation_id: str
    workflow_id: str
    stage: Stage

    @classmethod
    def of(cls, ack: JourneyAck) -> JourneyRef:
        return cls(reservation_id=ack.reservation_id, workflow_id=ack.workflow_id, stage=ack.stage)


class PmsEventIn(BaseModel):
    """What happened at the front desk: the guest checked in or out, or did not come."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"type": "checked_in", "at": "2027-01-10T15:12:00-03:00"}, {"type": "no_show"},
    ]})

    type: PmsEventType = Field(description="checked_in moves the journey in stay, checked_out to post-stay, "
                               "no_show ends it")
    at: Moment | None = Field(default=None, description="when it happened; unset: now")


def _request_id(idempotency_key: str | None) -> str:
    return idempotency_key or str(uuid.uuid4())


@router.put(
    "/{reservation_id}",
    response_model=JourneyRef,
    status_code=status.HTTP_200_OK,
    responses={201: {"model": JourneyRef, "description": "journey started"}, **errors(403, 404, 409, 413, 422, 503, why={
        403: "the key's role may not call this route, or `hotel_id` is not one of the key's hotels",
        404: "the reservation is another hotel's than your key's",
        409: "the journey has finished, `hotel_id` differs from the journey's (a reservation stays with its "
             "hotel), or a request with this `Idempotency-Key` is still in progress",
        422: "invalid input, or an `Idempotency-Key` reused with a different request: `detail` names it "
             "(in hotel scope: also hotel and reservation ids longer than 128 characters together)",
    })},
)
async def create_or_update_reservation(
    reservation_id: ReservationIdPath,
    body: ReservationIn,
    client: TemporalClientDep,
    settings: SettingsDep,
    session: SessionDep,
    policy: PolicyDep,
    once: IdempotencyDep,
    principal: PrincipalDep,
) -> Response:
    """Start the journey (201) or update it (200). With an `Idempotency-Key`, a
    repeated request is applied once and gets the first answer (status and body).
    With `GUEST_JOURNEY_WORKFLOW_ID_SCOPE=hotel` the journey is the hotel's own
    (its id `{hotel_id}-{reservation_id}`)."""
    principal.check_hotel(body.hotel_id)
    try:
        journey = journey_id(body.hotel_id, reservation_id, settings.workflow_id_scope)
    except JourneyIdTooLong as error:
        raise InvalidRequest(str(error)) from error
    await check_reservation(principal, client=client, session=session, reservation_id=journey)
    reservation = Reservation(reservation_id=journey, **body.model_dump())

    async def put() -> tuple[int, JourneyRef]:
        ack = await put_reservation(
            client=client, settings=settings, session=session, policy=policy,
            reservation=reservation, request_id=once.request_id(),
        )
        return (status.HTTP_201_CREATED if ack.created else status.HTTP_200_OK), JourneyRef.of(ack)

    return await once.answer(put)


AMBIGUOUS_OR_FINISHED = errors(403, 404, 409, 422, 503, why={
    403: "`hotel_id` is not one of the key's hotels",
    409: "the journey has finished, or (hotel scope) several hotels use this reservation id and `hotel_id` "
         "does not say which",
})


@router.delete("/{reservation_id}", response_model=JourneyRef, responses=AMBIGUOUS_OR_FINISHED)
async def cancel_reservation(
    reservation_id: JourneyIdPath,
    client: TemporalClientDep,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JourneyRef:
    await check_reservation(principal, client=client, session=session, reservation_id=reservation_id)
    if await finished_stage(session=session, reservation_id=reservation_id) is Stage.cancelled:
        return JourneyRef(reservation_id=reservation_id, workflow_id=workflow_id_for(reservation_id),
                          stage=Stage.cancelled)
    ack = await update_journey(
        client=client, session=session, reservation_id=reservation_id,
        update=GuestJourneyWorkflow.cancel, argument=CancelRequest(request_id=_request_id(idempotency_key)),
    )
    return JourneyRef.of(ack)


EVENT_ERRORS = {**AMBIGUOUS_OR_FINISHED, **errors(413, 422, why={
    422: "invalid input, or an event the journey cannot take (a no-show after the guest checked in): "
         "`detail` says which",
})}


@router.post("/{reservation_id}/events", response_model=JourneyRef, responses=EVENT_ERRORS)
async def record_pms_event(
    reservation_id: JourneyIdPath,
    event: PmsEventIn,
    client: TemporalClientDep,
    session: SessionDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> JourneyRef:
    await check_reservation(principal, client=client, session=session, reservation_id=reservation_id)
    ack = await update_journey(
        client=client, session=session, reservation_id=reservation_id,
        update=GuestJourneyWorkflow.record_event,
        argument=PmsEvent(type=event.type, at=event.at, request_id=_request_id(idempotency_key)),
    )
    return JourneyRef.of(ack)
