"""The runbook's "Jornadas ativas" figures (`GET /guest-experience/journey`):
journeys under way by stage, active journeys with preferences, and async
snapshots not yet applied."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey import read_model_queries
from guest_journey.journeys import FINAL_STAGES, Stage
from services.snapshot_pending import pending_snapshots

_FINAL = [stage.value for stage in FINAL_STAGES]


class JourneyVolume(BaseModel):
    """`GET /guest-experience/journey`: journeys under way, by stage (every stage
    listed), active journeys with preferences, and async snapshots not yet applied."""

    active: int
    by_stage: dict[str, int]
    preferences_synced: int
    pending: int


async def journey_volume(*, session: AsyncSession, hotels: Collection[str] | None = None) -> JourneyVolume:
    """The runbook's "Jornadas ativas" figures, from the read model in one query; of
    these hotels only, when given (a caller's scope: `api.access`).

    `pending` is read first, so that a journey it no longer counts is already
    in the stage figures.
    """
    pending = await pending_snapshots(session=session, hotels=hotels)
    by_stage = {stage.value: 0 for stage in Stage}
    active = synced = 0
    for row in await read_model_queries.journeys_by_stage(session=session, hotels=hotels):
        by_stage[row.stage] = row.journeys
        if row.stage not in _FINAL:
            active += row.journeys
            synced += row.with_preferences
    return JourneyVolume(active=active, by_stage=by_stage, preferences_synced=synced, pending=pending)
