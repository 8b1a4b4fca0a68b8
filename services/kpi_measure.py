"""Measuring one KPI window: the figures of a `KpiSnapshot`, not yet stored.

- `satisfaction_avg`, `satisfaction_responses`: the answers to the feedback
  form's satisfaction question ("overall, how satisfied were you?", 0-10)
  received in the window;
- `nps`, `feedback_responses`: the answers to its recommendation question
  (0-10; or an NPS pushed by a snapshot), as a Net Promoter Score;
- `upsell_offered`, `upsell_accepted`, `upsell_conversion`: offers sent in the
  window (status offered, accepted or declined; dated by when the offer was
  sent, else by when it was answered) and how many of them were accepted;
- `avg_response_time_minutes`: staff replies to guests in the window
  (`communications.delivery_summary`, the runbook's <= 10 min target);
- `failure_rate`, `messages_sent`: outbound messages created in the window;
- `checkin_adoption`: journeys arriving in the window, arrival already come,
  not cancelled: the share whose digital check-in is completed;
- `journeys`: journeys, not cancelled, whose stay overlaps the window.

Figures come from aggregate queries on the read model's columns (journeys, offers) and the message
table, on SQLite and PostgreSQL; nothing is loaded journey by journey.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.delivery_summary import delivery_summary
from guest_journey import kpis
from guest_journey.journeys import CheckinStatus, Stage, UpsellStatus
from guest_journey.read_model import JourneyRecord, JourneyUpsellRecord
from services.kpi_tables import KpiSnapshot, WindowKind

SENT_OFFER_STATUSES = (UpsellStatus.offered.value, UpsellStatus.accepted.value, UpsellStatus.declined.value)


async def measure_window(
    *,
    session: AsyncSession,
    kind: WindowKind,
    window_start: datetime,
    window_end: datetime,
    hotel_id: str | None,
    now: datetime,
) -> KpiSnapshot:
    """The window's figures as of `now` (arrivals still to come are not counted)."""
    start, end = window_start, window_end
    responses, promoters, detractors, satisfied, satisfaction_sum = await _feedback(session, start, end, hotel_id)
    offered, accepted = await _upsells(session, start, end, hotel_id)
    completed, past_arrival, journeys = await _journeys(session, start, end, hotel_id, now)
    delivery = await delivery_summary(session=session, since=start, until=end, hotel_id=hotel_id)
    return KpiSnapshot(
        hotel_id=hotel_id,
        window_kind=kind.value,
        window_start=start,
        window_end=end,
        satisfaction_avg=round(satisfaction_sum / satisfied, kpis.DIGITS) if satisfied else None,
        satisfaction_responses=satisfied,
        feedback_responses=responses,
        nps=kpis.net_promoter_score(promoters=promoters, detractors=detractors, responses=responses),
        upsell_offered=offered,
        upsell_accepted=accepted,
        upsell_conversion=kpis.upsell_conversion(offered=offered, accepted=accepted),
        avg_response_time_minutes=delivery.response_time_minutes.hotel_replies,
        messages_sent=delivery.total,
        failure_rate=kpis.failure_rate(failed=delivery.failed, total=delivery.total),
        checkin_adoption=kpis.checkin_adoption(completed=completed, past_arrival=past_arrival),
        journeys=journeys,
        computed_at=now,  # the moment it was measured as of: the schedule's run
    )


async def _feedback(
    session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None
) -> tuple[int, int, int, int, float]:
    """(NPS answers, promoters, detractors, satisfaction answers, their sum) received in the window."""
    score, satisfaction = col(JourneyRecord.feedback_score), col(JourneyRecord.feedback_satisfaction)
    received_at = col(JourneyRecord.feedback_received_at)
    received = [received_at >= start, received_at < end, *_of_hotel(hotel_id)]
    recommended = select(
        func.count(score),
        func.coalesce(func.sum(_one_if(score >= kpis.PROMOTER_MIN)), 0),
        func.coalesce(func.sum(_one_if(score <= kpis.DETRACTOR_MAX)), 0),
    ).where(score.is_not(None), *received)
    satisfied = select(func.count(satisfaction), func.coalesce(func.sum(satisfaction), 0)).where(
        satisfaction.is_not(None), *received)
    responses, promoters, detractors = (await session.exec(recommended)).one()
    answers, total = (await session.exec(satisfied)).one()
    return int(responses), int(promoters), int(detractors), int(answers), float(total or 0)


async def _upsells(session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None) -> tuple[int, int]:
    """Offers sent in the window (dated by when they were sent, else answered), and how many were accepted."""
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


async def _journeys(
    session: AsyncSession, start: datetime, end: datetime, hotel_id: str | None, now: datetime
) -> tuple[int, int, int]:
    checkin_status = col(JourneyRecord.checkin_status)
    arrival, departure = col(JourneyRecord.arrival), col(JourneyRecord.departure)
    arrived = and_(arrival >= start, arrival < end, arrival <= now)
    query = select(
        func.coalesce(func.sum(_one_if(and_(arrived, checkin_status == CheckinStatus.completed.value))), 0),
        func.coalesce(func.sum(_one_if(arrived)), 0),
        func.coalesce(func.sum(_one_if(and_(arrival < end, departure > start))), 0),
    ).where(JourneyRecord.stage != Stage.cancelled.value, *_of_hotel(hotel_id))
    completed, past_arrival, journeys = (await session.exec(query)).one()
    return int(completed), int(past_arrival), int(journeys)


def _of_hotel(hotel_id: str | None) -> list[ColumnElement[bool]]:
    return [] if hotel_id is None else [col(JourneyRecord.hotel_id) == hotel_id]


def _one_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)
