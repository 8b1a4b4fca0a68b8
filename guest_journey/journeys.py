"""The words of a journey: stages, steps and their statuses, shared by the
planner, the workflow, the read model and the API."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from guest_journey.reservations import Guest

JOURNEY_WORKFLOW_ID_PREFIX = "journey-"


def workflow_id_for(reservation_id: str) -> str:
    return f"{JOURNEY_WORKFLOW_ID_PREFIX}{reservation_id}"


def is_journey_workflow_id(workflow_id: str) -> bool:
    return workflow_id.startswith(JOURNEY_WORKFLOW_ID_PREFIX)


def reservation_id_of(workflow_id: str) -> str:
    return workflow_id.removeprefix(JOURNEY_WORKFLOW_ID_PREFIX)


class Stage(StrEnum):
    pre_arrival = "pre_arrival"
    in_stay = "in_stay"
    post_stay = "post_stay"
    completed = "completed"
    cancelled = "cancelled"
    no_show = "no_show"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STAGES


FINAL_STAGES = frozenset({Stage.completed, Stage.cancelled, Stage.no_show})


class StepKind(StrEnum):
    checkin_invitation = "checkin_invitation"
    checkin_reminder = "checkin_reminder"
    upsell = "upsell"
    upsell_follow_up = "upsell_follow_up"
    guest_post_stay_feedback = "guest_post_stay_feedback"
    feedback_reminder = "feedback_reminder"
    close = "close"
    manual = "manual"

    @property
    def sends_message(self) -> bool:
        return self is not StepKind.close


class StepStatus(StrEnum):
    planned = "planned"
    due = "due"
    done = "done"
    skipped = "skipped"
    failed = "failed"
    cancelled = "cancelled"
    in_doubt = "in_doubt"  # its message may or may not have arrived: staff decide whether to send again

    @property
    def is_settled(self) -> bool:
        """A settled step is never planned again: it happened (or was given up)."""
        return self in (StepStatus.done, StepStatus.failed, StepStatus.cancelled, StepStatus.in_doubt)


class Step(BaseModel):
    key: str
    kind: StepKind
    status: StepStatus
    scheduled_for: AwareDatetime | None = None
    done_at: AwareDatetime | None = None
    reason: str | None = None
    offer: str | None = None
    template: str | None = None
    channel: str | None = None
    message_id: str | None = None


class CheckinStatus(StrEnum):
    pending = "pending"
    completed = "completed"


class Checkin(BaseModel):
    status: CheckinStatus = CheckinStatus.pending
    completed_at: AwareDatetime | None = None
    details: dict[str, object] = Field(default_factory=dict)


class FeedbackStatus(StrEnum):
    pending = "pending"
    requested = "requested"
    received = "received"


class Feedback(BaseModel):
    status: FeedbackStatus = FeedbackStatus.pending
    score: int | None = Field(default=None, ge=0, le=10)  # "would you recommend us?": the NPS answer
    satisfaction: int | None = Field(default=None, ge=0, le=10)  # "overall, how satisfied were you?"
    comment: str | None = None
    received_at: AwareDatetime | None = None


class UpsellStatus(StrEnum):
    planned = "planned"
    offered = "offered"
    accepted = "accepted"
    declined = "declined"
    skipped = "skipped"


class Upsell(BaseModel):
    offer: str
    status: UpsellStatus = UpsellStatus.planned
    price: str | None = None
    currency: str | None = None
    offered_at: AwareDatetime | None = None
    answered_at: AwareDatetime | None = None


class GuestChange(BaseModel):
    """The reservation was given to another guest: what the earlier guest left was cleared."""

    at: AwareDatetime
    reason: str
    cleared: list[str] = Field(default_factory=list, description="what was cleared: checkin, preferences, ...")


class JourneyView(BaseModel):
    """A journey as staff see it (CONTRACT §2), messages aside: the workflow's
    `state` query answers it and the read model stores it."""

    reservation_id: str
    workflow_id: str
    hotel_id: str
    stage: Stage
    guest: Guest
    arrival: AwareDatetime
    departure: AwareDatetime
    room_type: str | None = None
    rate_plan: str | None = None
    steps: list[Step] = Field(default_factory=list)
    upsells: list[Upsell] = Field(default_factory=list)
    checkin: Checkin = Field(default_factory=Checkin)
    feedback: Feedback = Field(default_factory=Feedback)
    preferences: dict[str, object] = Field(default_factory=dict)
    guest_changes: list[GuestChange] = Field(
        default_factory=list, description="each time another guest took the reservation (latest last)"
    )
    revision: int = 0
    updated_at: AwareDatetime | None = None


def may_move(current: Stage, target: Stage) -> bool:
    """Stages only move forward; a snapshot cannot reopen or skip back."""
    order = [Stage.pre_arrival, Stage.in_stay, Stage.post_stay, Stage.completed]
    if target in (Stage.cancelled, Stage.no_show):
        return current in (Stage.pre_arrival, Stage.in_stay)
    if current not in order or target not in order:
        return False
    return order.index(target) >= order.index(current)
