"""What `GuestJourneyWorkflow` takes and answers: one model per workflow input,
update, signal and answer, so fields can be added compatibly."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from guest_journey.journeys import Checkin, Feedback, GuestChange, Stage, Step
from guest_journey.policy import HotelPolicy
from guest_journey.reservations import Channel, Reservation

# Update failure types the API maps to HTTP answers.
JOURNEY_FINISHED = "JourneyFinished"  # 409
INVALID_REQUEST = "InvalidRequest"  # 422
HOTEL_CHANGED = "HotelChanged"  # 409: a reservation stays with its hotel
OFFER_NOT_OFFERED = "OfferNotOffered"  # 409: the guest's "not available" page


class JourneyState(BaseModel):
    """Everything a journey knows; carried whole across continue-as-new."""

    reservation: Reservation
    policy: HotelPolicy
    stage: Stage = Stage.pre_arrival
    steps: list[Step] = Field(default_factory=list)
    checkin: Checkin = Field(default_factory=Checkin)
    feedback: Feedback = Field(default_factory=Feedback)
    answers: dict[str, bool] = Field(default_factory=dict, description="offer -> accepted")
    answered_at: dict[str, datetime] = Field(default_factory=dict)
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    preferences: dict[str, Any] = Field(default_factory=dict)
    manual_messages: dict[str, ManualMessage] = Field(default_factory=dict)
    last_inbound_at: dict[str, datetime] = Field(default_factory=dict)
    unsubscribed: bool = False
    late_failures: dict[str, MessageFailedLater] = Field(
        default_factory=dict, description="step key -> the late failure that got it sent again (once)"
    )
    resends_due: list[str] = Field(default_factory=list, description="step keys to send again as a template")
    sends_again_due: dict[str, str] = Field(
        default_factory=dict, description="step key in doubt -> the staff request to send it again"
    )
    staff_offers: list[str] = Field(
        default_factory=list, description="offers staff sent the guest (a manual message naming `upsell_offer`)"
    )
    form_preferences: list[str] = Field(
        default_factory=list, description="preference keys the guest gave on the check-in form"
    )
    guest_changes: list[GuestChange] = Field(default_factory=list)
    created_request_id: str
    applied_requests: list[str] = Field(default_factory=list)
    revision: int = 0
    runs: int = 1
    shape: int = Field(default=0, description="the run's shape (`workflows.patches`); 0 for runs started before shapes")


class JourneyInput(BaseModel):
    reservation: Reservation
    policy: HotelPolicy
    request_id: str
    state: JourneyState | None = None
    continue_as_new_after_events: int = Field(default=10_000, ge=50)
    shape: int = Field(default=0, description="a new journey's shape (`workflows.patches.CURRENT_SHAPE`)")


class ReservationUpdate(BaseModel):
    reservation: Reservation
    policy: HotelPolicy
    request_id: str


class JourneyAck(BaseModel):
    """The answer of every update: where the journey stands after it."""

    reservation_id: str
    workflow_id: str
    stage: Stage
    created: bool = False
    changed: bool = False
    message_id: str | None = None
    detail: str | None = None


class CancelRequest(BaseModel):
    request_id: str
    reason: str | None = None


class PmsEventType(StrEnum):
    checked_in = "checked_in"
    checked_out = "checked_out"
    no_show = "no_show"


class PmsEvent(BaseModel):
    type: PmsEventType
    at: AwareDatetime | None = None
    request_id: str


class CheckinSubmission(BaseModel):
    request_id: str
    details: dict[str, Any] = Field(default_factory=dict)
    preferences: dict[str, Any] = Field(default_factory=dict)


class OfferAnswer(BaseModel):
    request_id: str
    offer: str
    accepted: bool


class FeedbackSubmission(BaseModel):
    request_id: str
    score: int = Field(ge=0, le=10)  # the recommendation (NPS) answer
    satisfaction: int | None = Field(default=None, ge=0, le=10)  # the satisfaction answer
    comment: str | None = Field(default=None, max_length=5000)


class ManualMessage(BaseModel):
    """A message staff send through the journey: its own step, `manual:<id>`."""

    request_id: str
    template: str
    channel: Channel | None = None
    in_reply_to: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class SendAgainRequest(BaseModel):
    """Staff send a step whose message is in doubt again (once, same channel, same message id)."""

    request_id: str
    step_key: str


class InboundNotice(BaseModel):
    message_id: str
    channel: Channel
    received_at: AwareDatetime
    in_reply_to: str | None = None


class MessageFailedLater(BaseModel):
    """A channel reported, after accepting it, that the message of a step failed
    (a WhatsApp status webhook `failed`, with Meta's error code)."""

    message_id: str
    step_key: str
    channel: Channel
    error_code: int | None = None
    reason: str | None = None
    failed_at: AwareDatetime


class JourneySnapshot(BaseModel):
    """Preferences, stage or NPS pushed by the preference sync (runbook)."""

    request_id: str
    preferences: dict[str, Any] | None = None
    stage: Stage | None = None
    nps: int | None = Field(default=None, ge=0, le=10)


JourneyState.model_rebuild()
