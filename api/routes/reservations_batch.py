"""`POST /reservations/batch`: many reservations at once, for a hotel joining with its future
bookings. Each item is a PUT body with its `reservation_id`, checked and started as
`guest-journey import` does (`services.reservation_import`): a bad item is answered in
`failures` (its position, its reservation id, what is wrong, naming the field) while the
others start; a repeated batch changes nothing. A key limited to some hotels starts
reservations of its hotels only, as with the PUT."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import check_reservation
from api.deps import (
    PolicyDep,
    PrincipalDep,
    ServicesDep,
    SettingsDep,
    TemporalClientDep,
    require_role,
)
from api.error_responses import ROLE_ERRORS, errors
from api.limits import BATCH_MAX_BODY_BYTES, size_text
from guest_journey.reservations import Reservation
from services.reservation_import import BATCH_LIMIT, ImportLine, Outcome, import_reservations

router = APIRouter(
    prefix="/reservations", tags=["reservations"], dependencies=[Depends(require_role("reservations"))],
    responses=ROLE_ERRORS,
)


class ReservationBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reservations": [{
        "reservation_id": "R1001", "hotel_id": "copacabana",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "language": "pt-BR"},
        "arrival": "2027-01-10T14:00:00-03:00", "departure": "2027-01-12T11:00:00-03:00",
    }]}]})

    reservations: list[dict[str, Any]] = Field(
        min_length=1, max_length=BATCH_LIMIT,
        description=f"at most {BATCH_LIMIT:,} reservations, each the body of `PUT /reservations/{{id}}` with "
        "its `reservation_id`; each is checked on its own",
    )


class BatchFailure(BaseModel):
    line: int = Field(description="the reservation's position in `reservations`, from 1")
    reservation_id: str | None
    error: str = Field(description="what is wrong, naming the field")


class BatchResult(BaseModel):
    started: int = Field(description="journeys started")
    updated: int = Field(description="journeys that existed and took the change, as a PUT would")
    unchanged: int = Field(description="journeys that existed with the same reservation (a repeated batch)")
    failed: int
    failures: list[BatchFailure]


@router.post(
    "/batch",
    response_model=BatchResult,
    responses={**errors(413, 422, 503, why={
        413: f"the request body is larger than {size_text(BATCH_MAX_BODY_BYTES)}",
        422: f"not a list of 1 to {BATCH_LIMIT:,} reservations: `detail` names the limit (each reservation's "
             "own mistakes are answered in `failures`, with 200)",
    })},
)
async def start_reservations(
    batch: ReservationBatchIn,
    client: TemporalClientDep,
    settings: SettingsDep,
    services: ServicesDep,
    policy: PolicyDep,
    principal: PrincipalDep,
) -> BatchResult:
    """Start the journeys of many reservations (200, with what became of each; the failed
    ones in `failures`), many at a time, without waiting for each journey's first step."""

    async def allowed(session: AsyncSession, reservation: Reservation) -> None:
        principal.check_hotel(reservation.hotel_id)
        await check_reservation(principal, client=client, session=session, reservation_id=reservation.reservation_id)

    tally = await import_reservations(
        (ImportLine(number, fields) for number, fields in enumerate(batch.reservations, start=1)),
        client=client, settings=settings, sessions=services.sessions, policy=policy, check=allowed,
    )
    return BatchResult(
        started=tally.counts[Outcome.started], updated=tally.counts[Outcome.updated],
        unchanged=tally.counts[Outcome.unchanged], failed=tally.counts[Outcome.failed],
        failures=[BatchFailure(line=f.line, reservation_id=f.reservation_id, error=f.error) for f in tally.failures],
    )
