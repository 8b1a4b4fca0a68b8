"""Small operations on a journey's state (`JourneyState`) and what is read from it.

The steps (set a step, note an offer staff sent, keep the state small), the
requests already applied, an update's answer (`JourneyAck`), and the journey's
view (`JourneyView`) with its upsells: what the `state` query answers and the
read model records. Each function takes the state it reads or changes.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.patches import BOUNDED_MANUAL_STEPS, patched

with workflow.unsafe.imports_passed_through():
    from guest_journey.journeys import (
        JourneyView,
        Step,
        StepKind,
        StepStatus,
        Upsell,
        UpsellStatus,
        workflow_id_for,
    )
    from workflows.journey_inputs import JourneyAck, JourneyState
    from workflows.plan import upsell_key

REMEMBERED_REQUESTS = 200
KEPT_MANUAL_STEPS = 20  # settled staff messages kept in the state (and the read model's steps)
FORGETTABLE = frozenset({StepStatus.done, StepStatus.failed, StepStatus.cancelled, StepStatus.skipped})


# -- steps ----------------------------------------------------------------------


def set_step(s: JourneyState, step: Step) -> None:
    s.steps = [step if existing.key == step.key else existing for existing in s.steps]
    s.revision += 1


def note_staff_offer(s: JourneyState, step: Step) -> None:
    """A staff message that carried an offer (`context.upsell_offer`) offered it to the guest."""
    manual = s.manual_messages.get(step.key)
    offer = manual.context.get("upsell_offer") if manual else None
    if (
        isinstance(offer, str) and step.status in (StepStatus.done, StepStatus.in_doubt)
        and offer not in s.staff_offers
    ):
        s.staff_offers = [*s.staff_offers, offer]


def step_done(s: JourneyState, key: str) -> bool:
    return any(step.key == key and step.status is StepStatus.done for step in s.steps)


def forget_old_manual_steps(s: JourneyState) -> None:
    """Keep the state small however many messages staff send: only the last
    KEPT_MANUAL_STEPS settled manual steps stay, with the message each was asked
    for; older ones are dropped (the message table keeps every message). A step
    in doubt stays (staff may send it again), as does one due to be re-sent."""
    if not patched(BOUNDED_MANUAL_STEPS, s.shape):
        return  # a history recorded before replays as it ran
    settled = [
        step.key for step in s.steps
        if step.kind is StepKind.manual and step.status in FORGETTABLE and step.key not in s.resends_due
    ]
    forgotten = set(settled[:-KEPT_MANUAL_STEPS])
    if not forgotten:
        return
    s.steps = [step for step in s.steps if step.key not in forgotten]
    for key in forgotten:
        s.manual_messages.pop(key, None)
        s.late_failures.pop(key, None)


# -- requests and answers -------------------------------------------------------


def seen(s: JourneyState, request_id: str) -> bool:
    """True for a request already applied (a retry); remembers new ones."""
    if request_id in s.applied_requests or request_id == s.created_request_id:
        return True
    s.applied_requests = [*s.applied_requests, request_id][-REMEMBERED_REQUESTS:]
    return False


def ack(s: JourneyState, **fields: Any) -> JourneyAck:
    r = s.reservation
    return JourneyAck(
        reservation_id=r.reservation_id,
        workflow_id=workflow_id_for(r.reservation_id),
        stage=s.stage,
        **fields,
    )


# -- the view -------------------------------------------------------------------


def view(s: JourneyState) -> JourneyView:
    r = s.reservation
    return JourneyView(
        reservation_id=r.reservation_id,
        workflow_id=workflow_id_for(r.reservation_id),
        hotel_id=r.hotel_id,
        stage=s.stage,
        guest=r.guest,
        arrival=r.arrival,
        departure=r.departure,
        room_type=r.room_type,
        rate_plan=r.rate_plan,
        steps=s.steps,
        upsells=upsells(s),
        checkin=s.checkin,
        feedback=s.feedback,
        preferences=s.preferences,
        guest_changes=s.guest_changes,
        revision=s.revision,
        updated_at=workflow.now(),
    )


def upsells(s: JourneyState) -> list[Upsell]:
    steps = {step.key: step for step in s.steps}
    upsells = []
    for offer in s.policy.upsell_offers:
        step = steps.get(upsell_key(offer.offer))
        status = UpsellStatus.planned
        if offer.offer in s.answers:
            status = UpsellStatus.accepted if s.answers[offer.offer] else UpsellStatus.declined
        elif step is not None and step.status in (StepStatus.done, StepStatus.in_doubt):
            status = UpsellStatus.offered
        elif offer.offer in s.staff_offers:
            status = UpsellStatus.offered
        elif step is not None and step.status in (StepStatus.skipped, StepStatus.cancelled, StepStatus.failed):
            status = UpsellStatus.skipped
        upsells.append(
            Upsell(
                offer=offer.offer,
                status=status,
                price=offer.price,
                currency=offer.currency,
                offered_at=step.done_at if step is not None else None,
                answered_at=s.answered_at.get(offer.offer),
            )
        )
    return upsells
