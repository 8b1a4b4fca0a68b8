"""The runbook's "Jornadas ativas" figures (`GET /guest-experience/journey`):
journeys under way by stage, active journeys with preferences, and async
snapshots not yet applied."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel
from sqlalchemy import case, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.journeys import FINAL_STAGES, Stage
from guest_journey.read_model import JourneyRecord
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
    has_preferences = col(JourneyRecord.has_preferences)
    query = select(JourneyRecord.stage, func.count(), func.sum(case((has_preferences, 1), else_=0)))
    if hotels is not None:
        query = query.where(col(JourneyRecord.hotel_id).in_(sorted(hotels)))
    rows = await session.exec(query.group_by(JourneyRecord.stage))
    by_stage = {stage.value: 0 for stage in Stage}
    active = synced = 0
    for stage, count, with_preferences in rows.all():
        by_stage[stage] = count
        if stage not in _FINAL:
            active += count
            synced += int(with_preferences or 0)
    return JourneyVolume(active=active, by_stage=by_stage, preferences_synced=synced, pending=pending)
