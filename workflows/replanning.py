"""Re-planning a journey: the stage by time, every step not yet settled, and
the next moment the journey has to wake for.

The planner (`workflows/plan.py`) is pure; these functions hand it the
journey's facts as the state holds them and keep its answer in the state.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from workflows.journey_state import step_done
from workflows.patches import CHECKIN_MARKETING_CONSENT, QUIET_HOURS_BY_KIND, patched

with workflow.unsafe.imports_passed_through():
    from guest_journey.journeys import CheckinStatus, FeedbackStatus, Stage
    from workflows.journey_inputs import JourneyState
    from workflows.plan import JourneyFacts, next_moment, plan_steps, stage_by_time


def replan(s: JourneyState) -> None:
    """Advance the stage by time, then re-plan every step not yet settled."""
    now = workflow.now()
    s.stage = stage_by_time(s.stage, s.reservation, now)
    facts = JourneyFacts(
        stage=s.stage,
        checkin_completed=s.checkin.status is CheckinStatus.completed,
        checkin_marketing_consent=checkin_marketing_consent(s),
        checked_out_at=s.checked_out_at,
        answered_offers=list(s.answers),
        feedback_received=s.feedback.status is FeedbackStatus.received,
        unsubscribed=s.unsubscribed,
        steps=s.steps,
    )
    steps = plan_steps(s.reservation, s.policy, facts, now)
    if s.policy.quiet_hours is not None:
        # Journeys planned before quiet hours fit each kind of message replay with
        # every message waiting for their end; the marker is only needed where it differs.
        before = plan_steps(s.reservation, s.policy, facts, now, quiet_hours_by_kind=False)
        if before != steps and not workflow.patched(QUIET_HOURS_BY_KIND):
            steps = before
    if steps != s.steps:
        s.steps = steps
        s.revision += 1
    if s.feedback.status is FeedbackStatus.pending and step_done(s, "guest_post_stay_feedback"):
        s.feedback = s.feedback.model_copy(update={"status": FeedbackStatus.requested})


def checkin_marketing_consent(s: JourneyState) -> bool | None:
    """The guest's answer to "send me offers" on the check-in form, if given."""
    checkin = s.checkin
    answer = checkin.details.get("marketing_consent")
    if checkin.status is not CheckinStatus.completed or not isinstance(answer, bool):
        return None
    # Journeys that were checked in before the planner heeded the answer replay as they ran.
    return answer if patched(CHECKIN_MARKETING_CONSENT, s.shape) else None


def next_wake(s: JourneyState) -> datetime:
    """The next step's moment or the stage's end, whichever comes first."""
    moments = [m for m in (next_moment(s.steps), stage_boundary(s)) if m is not None]
    return min(moments)


def stage_boundary(s: JourneyState) -> datetime | None:
    if s.stage is Stage.pre_arrival:
        return s.reservation.arrival
    if s.stage is Stage.in_stay:
        return s.reservation.departure
    return None
