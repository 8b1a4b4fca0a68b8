"""Operations routes of the runbook over all journeys: their volume, and the
preference sync (`POST /guest-experience/journey` with `GuestJourneySnapshotRequest`).

Registered before `/guest-experience/{reservation_id}`, which would otherwise
take `journey` for a reservation id.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import Principal, hidden_reservations, journey_id_for
from api.deps import PrincipalDep, SessionDep, SettingsDep, TemporalClientDep, require_role
from api.error_responses import ROLE_ERRORS, errors
from guest_journey.settings import Settings
from services.errors import DomainError, temporal_errors
from services.journey_snapshots import (
    MAX_SNAPSHOTS,
    GuestJourneySnapshot,
    GuestJourneySnapshotRequest,
    SnapshotError,
    SnapshotMode,
    SnapshotResult,
    apply_snapshots,
    send_snapshots,
)
from services.journey_volume import JourneyVolume, journey_volume

router = APIRouter(prefix="/guest-experience", tags=["guest-experience"],
                   dependencies=[Depends(require_role("ops"))], responses=ROLE_ERRORS)


class TooManySnapshots(DomainError):
    status_code = 413


@router.get("/journey", response_model=JourneyVolume, responses=errors(503))
async def get_journey_volume(session: SessionDep, principal: PrincipalDep) -> JourneyVolume:
    """Journeys under way, by stage, with synced preferences, and async snapshots pending
    (of the key's hotels, for a key limited to some)."""
    return await journey_volume(session=session, hotels=principal.hotel_filter())


@router.post(
    "/journey", response_model=SnapshotResult,
    responses=errors(413, 422, 503, why={413: "more than 500 snapshots, or a body larger than 64 KiB"}),
)
async def push_journey_snapshots(
    request: GuestJourneySnapshotRequest, client: TemporalClientDep, session: SessionDep, principal: PrincipalDep,
    settings: SettingsDep,
) -> SnapshotResult:
    """Apply preference, stage and NPS snapshots to running journeys.

    Sync mode answers once every snapshot is applied (`pending=0`) or reported
    in `errors`; async mode sends them and answers at once, `pending` counting
    those not applied yet (then see `GET /guest-experience/journey`).
    """
    if len(request.snapshots) > MAX_SNAPSHOTS:
        raise TooManySnapshots(
            f"snapshots: {len(request.snapshots)} given, at most {MAX_SNAPSHOTS} per request; send them in batches"
        )
    push = apply_snapshots if request.mode is SnapshotMode.sync else send_snapshots
    ambiguous: list[SnapshotError] = []
    if settings.workflow_id_scope == "hotel":
        request.snapshots, ambiguous = await _named_journeys(principal, session, settings, request.snapshots)
    with temporal_errors():
        hidden = await hidden_reservations(principal, client=client, session=session,
                                           reservation_ids=(snapshot.reservation_id for snapshot in request.snapshots))
        visible = [snapshot for snapshot in request.snapshots if snapshot.reservation_id not in hidden]
        result = await push(client=client, session=session, snapshots=visible)
    # another hotel's reservation is reported as unknown, like one without a journey
    result.errors = [
        SnapshotError(reservation_id=snapshot.reservation_id,
                      detail=f"no journey for reservation {snapshot.reservation_id!r}")
        for snapshot in request.snapshots if snapshot.reservation_id in hidden
    ] + ambiguous + result.errors
    return result


async def _named_journeys(
    principal: Principal, session: AsyncSession, settings: Settings, snapshots: list[GuestJourneySnapshot]
) -> tuple[list[GuestJourneySnapshot], list[SnapshotError]]:
    """In hotel scope: each snapshot with the id of the journey it names (`api.access.journey_id_for`),
    and an error for each that names several hotels' journeys or a hotel not the caller's."""
    named, errors_ = [], []
    for snapshot in snapshots:
        try:
            journey = await journey_id_for(principal, session=session, scope=settings.workflow_id_scope,
                                           reservation_id=snapshot.reservation_id, hotel_id=snapshot.hotel_id)
        except DomainError as error:
            errors_.append(SnapshotError(reservation_id=snapshot.reservation_id, detail=error.detail))
            continue
        named.append(snapshot.model_copy(update={"reservation_id": journey, "hotel_id": None}))
    return named, errors_
