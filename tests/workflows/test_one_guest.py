"""A journey answers only for what it sent its guest, and its guest only: an offer
is answered only once it was offered; another guest on the reservation does not
inherit what the earlier one gave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from guest_journey.journeys import (
    Checkin,
    CheckinStatus,
    Feedback,
    FeedbackStatus,
    UpsellStatus,
    workflow_id_for,
)
from guest_journey.policy import UpsellOffer
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import (
    OFFER_NOT_OFFERED,
    CancelRequest,
    JourneyInput,
    JourneyState,
    ManualMessage,
    OfferAnswer,
    ReservationUpdate,
)

OFFERS = [
    UpsellOffer(offer="room_upgrade", send_before_arrival=timedelta(hours=48), price="120.00", currency="BRL"),
    UpsellOffer(offer="late_checkout", send_before_departure=timedelta(hours=20), price="45.50", currency="EUR"),
]


async def upsells(handle):  # type: ignore[no-untyped-def]
    state = await handle.query(GuestJourneyWorkflow.state)
    return {upsell.offer: upsell for upsell in state.upsells}


async def test_an_offer_is_answered_only_once_it_was_offered_to_the_guest(env, worker, email, settings):
    reservation = booking(await now(env), arrive_in=timedelta(days=1))  # room_upgrade is due at once
    unsent = booking(await now(env), arrive_in=timedelta(days=1), marketing_consent=False)
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(upsell_offers=OFFERS))
        no_consent, _ = await put(env.client, settings.task_queue, unsent, quiet_policy(upsell_offers=OFFERS))
        while (await upsells(handle))["room_upgrade"].status is not UpsellStatus.offered:
            await env.sleep(timedelta(seconds=1))

        refused = {}
        for name, target, offer in (("planned", handle, "late_checkout"), ("skipped", no_consent, "room_upgrade")):
            with pytest.raises(WorkflowUpdateFailedError) as raised:
                await target.execute_update(
                    GuestJourneyWorkflow.answer_offer, OfferAnswer(request_id=f"a-{name}", offer=offer, accepted=True)
                )
            refused[name] = raised.value.cause
        accepted = await handle.execute_update(
            GuestJourneyWorkflow.answer_offer, OfferAnswer(request_id="a-ok", offer="room_upgrade", accepted=True)
        )
        retried = await handle.execute_update(
            GuestJourneyWorkflow.answer_offer, OfferAnswer(request_id="a-ok", offer="room_upgrade", accepted=True)
        )
        after = await upsells(handle)
        for journey in (handle, no_consent):
            await journey.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
            await finish(env, journey)

    for name, cause in refused.items():
        assert isinstance(cause, ApplicationError) and cause.type == OFFER_NOT_OFFERED, name
    assert "late_checkout' is planned, not offered" in str(refused["planned"])
    assert "room_upgrade' is skipped, not offered" in str(refused["skipped"])
    assert accepted.changed and not retried.changed
    assert after["room_upgrade"].status is UpsellStatus.accepted
    assert after["late_checkout"].status is UpsellStatus.planned


async def test_an_offer_staff_sent_is_offered_and_can_be_answered(env, worker, email, settings):
    reservation = booking(await now(env), arrive_in=timedelta(days=5))  # late_checkout is days away
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(upsell_offers=OFFERS))
        await handle.execute_update(GuestJourneyWorkflow.send_message, ManualMessage(
            request_id="staff-offer", template="upsell_offer", context={"upsell_offer": "late_checkout"}))
        while (await upsells(handle))["late_checkout"].status is not UpsellStatus.offered:
            await env.sleep(timedelta(seconds=1))
        ack = await handle.execute_update(
            GuestJourneyWorkflow.answer_offer, OfferAnswer(request_id="a", offer="late_checkout", accepted=False)
        )
        after = await upsells(handle)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        await finish(env, handle)
    assert ack.changed and after["late_checkout"].status is UpsellStatus.declined
    assert after["room_upgrade"].status is UpsellStatus.planned


async def test_another_guest_clears_what_the_earlier_one_gave_even_from_a_journey_checked_in_before(
    env, worker, email, settings
):
    """A journey whose check-in predates the note of which preferences the form gave (a state
    carried from an earlier run): the form's keys are cleared, the preference sync's stay."""
    reservation = booking(await now(env), arrive_in=timedelta(days=5), marketing_consent=False)
    policy = quiet_policy()
    state = JourneyState(
        reservation=reservation, policy=policy, created_request_id="booked",
        checkin=Checkin(status=CheckinStatus.completed, completed_at=await now(env),
                        details={"date_of_birth": "1990-05-01", "nationality": "BR"}),
        preferences={"bed": "double", "arrival_notes": "Late flight", "loyalty_tier": "gold"},
        feedback=Feedback(status=FeedbackStatus.received, score=9, comment="Ana loved room 12"),
    )
    other = reservation.model_copy(
        update={"guest": reservation.guest.model_copy(update={"name": "Bruno Lima", "phone": "+5511988887777"})}
    )
    async with worker():
        handle = await env.client.start_workflow(
            GuestJourneyWorkflow.run, JourneyInput(reservation=reservation, policy=policy, request_id="booked",
                                                   state=state),
            id=workflow_id_for(reservation.reservation_id), task_queue=settings.task_queue,
        )
        ack = await handle.execute_update(
            GuestJourneyWorkflow.update_reservation,
            ReservationUpdate(reservation=other, policy=policy, request_id="given-to-bruno"),
        )
        view = await handle.query(GuestJourneyWorkflow.state)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        await handle.result()  # the environment's own handle lets time skip itself

    assert ack.changed and view.guest.name == "Bruno Lima"
    assert view.checkin == Checkin() and view.preferences == {"loyalty_tier": "gold"}
    assert view.feedback.comment is None and view.feedback.score == 9
    [change] = view.guest_changes
    assert change.cleared == ["checkin", "preferences", "feedback_comment"]
    assert "Ana" not in change.model_dump_json()
