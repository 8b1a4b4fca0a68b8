"""Every figure and list taken from the read model's columns and rows (`read_model`):
the KPIs' feedback, offers and journey counts, the dashboard's check-in adoption,
the journeys by stage, the hotels that have journeys, the journeys the attention
panel lists, and running journeys with their rows (`/policy` re-plans them). One
module, plain SQL on columns, the same on SQLite and PostgreSQL; callers turn the
answers into figures and words."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey import kpis
from guest_journey.journeys import FINAL_STAGES, CheckinStatus, Stage, UpsellStatus
from guest_journey.read_model import JourneyRecord, JourneyStepRecord, JourneyUpsellRecord

SENT_OFFER_STATUSES = (UpsellStatus.offered.value, UpsellStatus.accepted.value, UpsellStatus.declined.value)
RUNNING_STAGES_EXCLUDED = tuple(stage.value for stage in FINAL_STAGES)


@dataclass(frozen=True)
class FeedbackAnswers:
    """Feedback received in a window: the recommendation (NPS) answers and the satisfaction answers."""

    responses: int
    promoters: int
    detractors: int
    satisfaction_answers: int
    satisfaction_sum: float


@dataclass(frozen=True)
class JourneyCounts:
    """Journeys (not cancelled) of a window: arrived by now, of those checked in online, and staying in it."""

    checked_in: int
    arrived: int
    staying: int


@dataclass(frozen=True)
class StageCount:
    stage: str
    journeys: int
    with_preferences: int


async def hotel_ids(*, session: AsyncSession) -> list[str]:
    """The hotels that have at least one journey, sorted."""
    return sorted((await session.exec(select(JourneyRecord.hotel_id).distinct())).all())


async def feedback_answers(
    *, session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None
) -> FeedbackAnswers:
    """The answers received in `[start, end)`, of one hotel or of all."""
    score, satisfaction = col(JourneyRecord.feedback_score), col(JourneyRecord.feedback_satisfaction)
    received_at = col(JourneyRecord.feedback_received_at)
    received = [received_at >= start, received_at < end, *_journey_of_hotel(hotel_id, None)]
    recommended = select(
        func.count(score),
        func.coalesce(func.sum(_one_if(score >= kpis.PROMOTER_MIN)), 0),
        func.coalesce(func.sum(_one_if(score <= kpis.DETRACTOR_MAX)), 0),
    ).where(score.is_not(None), *received)
    satisfied = select(func.count(satisfaction), func.coalesce(func.sum(satisfaction), 0)).where(
        satisfaction.is_not(None), *received)
    responses, promoters, detractors = (await session.exec(recommended)).one()
    answers, total = (await session.exec(satisfied)).one()
    return FeedbackAnswers(int(responses), int(promoters), int(detractors), int(answers), float(total or 0))


async def offers_sent(
    *, session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None
) -> tuple[int, int]:
    """(offers sent, of them accepted) in `[start, end)`: dated by when an offer was sent, else answered."""
    status, sent_at = col(JourneyUpsellRecord.status), col(JourneyUpsellRecord.sent_at)
    query = select(
        func.count(),
        func.coalesce(func.sum(_one_if(status == UpsellStatus.accepted.value)), 0),
    ).where(
        status.in_(SENT_OFFER_STATUSES), sent_at >= start, sent_at < end,
        *([] if hotel_id is None else [col(JourneyUpsellRecord.hotel_id) == hotel_id]),
    )
    offered, accepted = (await session.exec(query)).one()
    return int(offered), int(accepted)


async def journey_counts(
    *, session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None, now: datetime
) -> JourneyCounts:
    """Journeys, not cancelled, arriving in `[start, end)` by `now` (and of them checked in
    online), and those whose stay overlaps the window."""
    checkin_status = col(JourneyRecord.checkin_status)
    arrival, departure = col(JourneyRecord.arrival), col(JourneyRecord.departure)
    arrived = and_(arrival >= start, arrival < end, arrival <= now)
    query = select(
        func.coalesce(func.sum(_one_if(and_(arrived, checkin_status == CheckinStatus.completed.value))), 0),
        func.coalesce(func.sum(_one_if(arrived)), 0),
        func.coalesce(func.sum(_one_if(and_(arrival < end, departure > start))), 0),
    ).where(JourneyRecord.stage != Stage.cancelled.value, *_journey_of_hotel(hotel_id, None))
    checked_in, past_arrival, staying = (await session.exec(query)).one()
    return JourneyCounts(int(checked_in), int(past_arrival), int(staying))


async def journeys_by_stage(*, session: AsyncSession, hotels: Collection[str] | None) -> list[StageCount]:
    """Journeys per stage, and how many of them have preferences; of these hotels, when given."""
    query = select(
        JourneyRecord.stage, func.count(), func.sum(_one_if(col(JourneyRecord.has_preferences).is_(True)))
    ).where(*_journey_of_hotel(None, hotels)).group_by(JourneyRecord.stage)
    return [StageCount(stage, int(count), int(with_preferences or 0))
            for stage, count, with_preferences in (await session.exec(query)).all()]


async def checkin_pending(
    *, session: AsyncSession, now: datetime, until: datetime, hotel_id: str | None,
    hotels: Collection[str] | None, limit: int,
) -> Sequence[JourneyRecord]:
    """Journeys before arrival, arriving in `(now, until]`, whose online check-in is not done."""
    status = col(JourneyRecord.checkin_status)
    query = (
        select(JourneyRecord)
        .where(
            JourneyRecord.stage == Stage.pre_arrival.value,
            col(JourneyRecord.arrival) > now,
            col(JourneyRecord.arrival) <= until,
            or_(status.is_(None), status != CheckinStatus.completed.value),
            *_journey_of_hotel(hotel_id, hotels),
        )
        .order_by(col(JourneyRecord.arrival))
        .limit(limit)
    )
    return (await session.exec(query)).all()


async def recent_detractors(
    *, session: AsyncSession, since: datetime, hotel_id: str | None, hotels: Collection[str] | None, limit: int,
) -> list[tuple[str, str, int, datetime]]:
    """(reservation, hotel, score, received at) of recommendation answers at or under the
    detractor mark received since `since`."""
    score, received = col(JourneyRecord.feedback_score), col(JourneyRecord.feedback_received_at)
    query = (
        select(JourneyRecord.reservation_id, JourneyRecord.hotel_id, score, received)
        .where(score.is_not(None), score <= kpis.DETRACTOR_MAX, received >= since,
               *_journey_of_hotel(hotel_id, hotels))
        .limit(limit)
    )
    return [(reservation_id, hotel, int(value), moment)
            for reservation_id, hotel, value, moment in (await session.exec(query)).all()
            if value is not None and moment is not None]  # the query's own conditions


async def late_steps(
    *, session: AsyncSession, before: datetime, statuses: Collection[str], hotel_id: str | None,
    hotels: Collection[str] | None, limit: int,
) -> list[tuple[str, str, str, datetime]]:
    """(reservation, hotel, step, due) of running journeys' steps in `statuses` due before `before`."""
    running = col(JourneyRecord.stage).not_in(RUNNING_STAGES_EXCLUDED)
    query = (
        select(JourneyStepRecord.reservation_id, JourneyStepRecord.hotel_id, JourneyStepRecord.key,
               JourneyStepRecord.scheduled_for)
        .join(JourneyRecord, col(JourneyRecord.reservation_id) == col(JourneyStepRecord.reservation_id))
        .where(running, col(JourneyStepRecord.status).in_(sorted(statuses)),
               col(JourneyStepRecord.scheduled_for) < before, *_journey_of_hotel(hotel_id, hotels))
        .limit(limit)
    )
    return [(reservation_id, hotel, key, moment)
            for reservation_id, hotel, key, moment in (await session.exec(query)).all()
            if moment is not None]  # the query asks for a moment before `before`


async def past_their_stage(
    *, session: AsyncSession, before: datetime, hotel_id: str | None, hotels: Collection[str] | None, limit: int,
) -> Sequence[JourneyRecord]:
    """Journeys still before arrival whose arrival passed before `before`, or still in the
    stay whose departure did."""
    query = (
        select(JourneyRecord)
        .where(
            or_(
                and_(col(JourneyRecord.stage) == Stage.pre_arrival.value, col(JourneyRecord.arrival) < before),
                and_(col(JourneyRecord.stage) == Stage.in_stay.value, col(JourneyRecord.departure) < before),
            ),
            *_journey_of_hotel(hotel_id, hotels),
        )
        .limit(limit)
    )
    return (await session.exec(query)).all()


@dataclass(frozen=True)
class RunningJourney:
    """A running journey as its rows hold it: what re-planning it needs (`/policy`)."""

    journey: JourneyRecord
    steps: list[JourneyStepRecord]
    offers: list[JourneyUpsellRecord]


async def running_journeys(
    *, session: AsyncSession, hotels: Collection[str] | None, limit: int, reservation_id: str | None = None,
) -> list[RunningJourney]:
    """Journeys not in a final stage (of these hotels, when given; or only `reservation_id`),
    by arrival, with their step and offer rows."""
    query = select(JourneyRecord).where(
        col(JourneyRecord.stage).not_in(RUNNING_STAGES_EXCLUDED), *_journey_of_hotel(None, hotels))
    if reservation_id is not None:
        query = query.where(JourneyRecord.reservation_id == reservation_id)
    journeys = (await session.exec(query.order_by(col(JourneyRecord.arrival)).limit(limit))).all()
    steps: dict[str, list[JourneyStepRecord]] = {}
    offers: dict[str, list[JourneyUpsellRecord]] = {}
    ids = [journey.reservation_id for journey in journeys]
    for start in range(0, len(ids), 500):  # a bounded IN list on every database
        chunk = ids[start:start + 500]
        for step in (await session.exec(
                select(JourneyStepRecord).where(col(JourneyStepRecord.reservation_id).in_(chunk)))).all():
            steps.setdefault(step.reservation_id, []).append(step)
        for offer in (await session.exec(
                select(JourneyUpsellRecord).where(col(JourneyUpsellRecord.reservation_id).in_(chunk)))).all():
            offers.setdefault(offer.reservation_id, []).append(offer)
    return [RunningJourney(journey, steps.get(journey.reservation_id, []), offers.get(journey.reservation_id, []))
            for journey in journeys]


def _journey_of_hotel(hotel_id: str | None, hotels: Collection[str] | None) -> list[ColumnElement[bool]]:
    """`hotel_id` (one hotel asked for) and `hotels` (a caller's scope), when given."""
    column = col(JourneyRecord.hotel_id)
    conditions: list[ColumnElement[bool]] = [] if hotel_id is None else [column == hotel_id]
    return conditions if hotels is None else [*conditions, column.in_(sorted(hotels))]


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)
