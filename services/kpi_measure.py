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

Figures come from the read model's queries (`guest_journey.read_model_queries`) and
the message table's (`communications.delivery_summary`); nothing is loaded journey
by journey.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from communications.delivery_summary import delivery_summary
from guest_journey import kpis, read_model_queries
from services.kpi_tables import KpiSnapshot, WindowKind


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
    answers = await read_model_queries.feedback_answers(session=session, start=start, end=end, hotel_id=hotel_id)
    offered, accepted = await read_model_queries.offers_sent(session=session, start=start, end=end, hotel_id=hotel_id)
    counts = await read_model_queries.journey_counts(session=session, start=start, end=end, hotel_id=hotel_id,
                                                     now=now)
    satisfied, responses = answers.satisfaction_answers, answers.responses
    delivery = await delivery_summary(session=session, since=start, until=end, hotel_id=hotel_id)
    return KpiSnapshot(
        hotel_id=hotel_id,
        window_kind=kind.value,
        window_start=start,
        window_end=end,
        satisfaction_avg=round(answers.satisfaction_sum / satisfied, kpis.DIGITS) if satisfied else None,
        satisfaction_responses=satisfied,
        feedback_responses=responses,
        nps=kpis.net_promoter_score(promoters=answers.promoters, detractors=answers.detractors,
                                    responses=responses),
        upsell_offered=offered,
        upsell_accepted=accepted,
        upsell_conversion=kpis.upsell_conversion(offered=offered, accepted=accepted),
        avg_response_time_minutes=delivery.response_time_minutes.hotel_replies,
        messages_sent=delivery.total,
        failure_rate=kpis.failure_rate(failed=delivery.failed, total=delivery.total),
        checkin_adoption=kpis.checkin_adoption(completed=counts.checked_in, past_arrival=counts.arrived),
        journeys=counts.staying,
        computed_at=now,  # the moment it was measured as of: the schedule's run
    )
