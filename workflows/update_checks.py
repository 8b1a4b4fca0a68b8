"""What each of the journey's updates refuses, checked by its validator before
the update is accepted (a refused update leaves no trace in the history).

One function per update of `GuestJourneyWorkflow`, named after it; each reads
the journey's state and raises `ApplicationError` with the type the caller
maps to its answer (`INVALID_REQUEST`, `JOURNEY_FINISHED`, ...).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.journey_state import upsells

with workflow.unsafe.imports_passed_through():
    from guest_journey.journeys import Stage, StepStatus, UpsellStatus, may_move
    from workflows.channels import channels_for
    from workflows.journey_inputs import (
        HOTEL_CHANGED,
        INVALID_REQUEST,
        JOURNEY_FINISHED,
        OFFER_NOT_OFFERED,
        CancelRequest,
        CheckinSubmission,
        FeedbackSubmission,
        JourneySnapshot,
        JourneyState,
        ManualMessage,
        OfferAnswer,
        PmsEvent,
        PmsEventType,
        ReservationUpdate,
        SendAgainRequest,
    )


def reject_if_finished(s: JourneyState) -> None:
    if s.stage.is_final:
        raise ApplicationError(
            f"journey is {s.stage.value}; it takes no more changes", type=JOURNEY_FINISHED
        )


def update_reservation(s: JourneyState, update: ReservationUpdate) -> None:
    if update.request_id == s.created_request_id:
        return
    reject_if_finished(s)
    if update.reservation.reservation_id != s.reservation.reservation_id:
        raise ApplicationError("reservation_id does not match the journey", type=INVALID_REQUEST)
    if update.reservation.hotel_id != s.reservation.hotel_id:
        raise ApplicationError(
            f"hotel_id cannot change: reservation {s.reservation.reservation_id!r} is a journey of hotel "
            f"{s.reservation.hotel_id!r}; cancel it and send the reservation with the new hotel's "
            "own reservation id", type=HOTEL_CHANGED,
        )


def cancel(s: JourneyState, request: CancelRequest) -> None:
    if s.stage in (Stage.completed, Stage.no_show):
        reject_if_finished(s)


def record_event(s: JourneyState, event: PmsEvent) -> None:
    reject_if_finished(s)
    if event.type is PmsEventType.no_show and s.checked_in_at is not None:
        raise ApplicationError("the guest checked in; a no-show is not possible", type=INVALID_REQUEST)


def complete_checkin(s: JourneyState, submission: CheckinSubmission) -> None:
    reject_if_finished(s)
    if s.stage is Stage.post_stay:
        raise ApplicationError("the stay is over; check-in is closed", type=JOURNEY_FINISHED)


def answer_offer(s: JourneyState, answer: OfferAnswer) -> None:
    """An answer counts only for an offer this guest was sent (`offered` in the journey's upsells):
    not one still planned, skipped (no consent, unsubscribed) or never sent."""
    reject_if_finished(s)
    if s.policy.offer(answer.offer) is None:
        raise ApplicationError(f"unknown offer {answer.offer!r}", type=INVALID_REQUEST)
    if answer.request_id in s.applied_requests or answer.offer in s.answers:
        return  # a retry, or answered already: the update says so
    upsell = next(upsell for upsell in upsells(s) if upsell.offer == answer.offer)
    if upsell.status is not UpsellStatus.offered:
        raise ApplicationError(
            f"offer {answer.offer!r} is {upsell.status.value}, not offered to this guest", type=OFFER_NOT_OFFERED
        )


def submit_feedback(s: JourneyState, submission: FeedbackSubmission) -> None:
    if s.stage in (Stage.cancelled, Stage.no_show):
        reject_if_finished(s)


def send_message(s: JourneyState, message: ManualMessage) -> None:
    reject_if_finished(s)
    if not channels_for(s.reservation.guest, message.channel):
        raise ApplicationError("no channel reaches the guest", type=INVALID_REQUEST)
    offer = message.context.get("upsell_offer")
    if offer is not None and s.policy.offer(str(offer)) is None:
        raise ApplicationError(
            f"context.upsell_offer: the hotel has no offer {offer!r}", type=INVALID_REQUEST
        )


def send_again(s: JourneyState, request: SendAgainRequest) -> None:
    reject_if_finished(s)
    step = next((step for step in s.steps if step.key == request.step_key), None)
    if step is None:
        raise ApplicationError(f"the journey has no step {request.step_key!r}", type=INVALID_REQUEST)
    if request.request_id in s.applied_requests:
        return  # a retry of a request already taken: answered as it was
    if step.status is not StepStatus.in_doubt:
        raise ApplicationError(
            f"step {step.key!r} is {step.status.value}, not in doubt: only a message in doubt is sent again",
            type=INVALID_REQUEST,
        )
    if step.key in s.sends_again_due:
        raise ApplicationError(f"step {step.key!r} is already being sent again", type=INVALID_REQUEST)


def apply_snapshot(s: JourneyState, snapshot: JourneySnapshot) -> None:
    reject_if_finished(s)
    if snapshot.stage is not None and not may_move(s.stage, snapshot.stage):
        raise ApplicationError(
            f"stage cannot go from {s.stage} to {snapshot.stage}", type=INVALID_REQUEST
        )
