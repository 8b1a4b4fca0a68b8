"""GuestJourneyWorkflow on the time-skipping test server: whole stays in seconds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.service import RPCError, RPCStatusCode

from communications.message_store import list_for_reservation
from guest_journey.journeys import Stage, StepStatus
from guest_journey.policy import Delivery
from guest_journey.read_model import get_journey
from guest_journey.reservations import Channel
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import (
    CancelRequest,
    CheckinSubmission,
    FeedbackSubmission,
    PmsEvent,
    PmsEventType,
)

WHOLE_STAY_TEMPLATES = [
    "checkin_invitation",
    "upsell_offer",  # room_upgrade, 48 h before arrival
    "checkin_reminder",  # 24 h
    "checkin_reminder",  # 3 h
    "upsell_offer",  # late_checkout, 20 h before departure
    "upsell_follow_up",
    "guest_post_stay_feedback",
    "feedback_reminder",
]
FAST_RETRY = Delivery(first_retry_after=timedelta(seconds=1), max_retry_interval=timedelta(seconds=1))


async def test_whole_stay_sends_each_message_once_at_its_moment_and_closes(env, worker, email, settings, sessions):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=5), nights=3)
    async with worker():
        handle, ack = await put(env.client, settings.task_queue, reservation, quiet_policy())
        assert ack.created and ack.stage is Stage.pre_arrival
        result = await finish(env, handle)

    assert result.stage is Stage.completed
    assert email.templates() == WHOLE_STAY_TEMPLATES
    assert len({outgoing.message_id for outgoing in email.sent}) == len(WHOLE_STAY_TEMPLATES)
    by_key = {step.key: step for step in result.steps}
    invitation = by_key["checkin_invitation"]
    assert invitation.status is StepStatus.done
    assert abs(invitation.done_at - (reservation.arrival - timedelta(hours=72))) < timedelta(minutes=1)
    reminder = by_key["checkin_reminder:PT3H"]
    assert abs(reminder.done_at - (reservation.arrival - timedelta(hours=3))) < timedelta(minutes=1)
    assert by_key["close"].status is StepStatus.done
    assert abs(by_key["close"].done_at - (reservation.departure + timedelta(days=7))) < timedelta(minutes=1)
    assert {upsell.status.value for upsell in result.upsells} == {"offered"}

    async with sessions() as session:
        stored = await get_journey(session=session, reservation_id=reservation.reservation_id)
        messages = await list_for_reservation(session=session, reservation_id=reservation.reservation_id)
    assert stored is not None and stored.stage is Stage.completed
    assert [m.template for m in messages] == WHOLE_STAY_TEMPLATES
    assert {m.status for m in messages} == {"sent"}


async def test_date_change_moves_timers_and_never_resends(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2), nights=1, marketing_consent=False)
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)  # invitation at once: arrival is within 72 h

        later = reservation.model_copy(
            update={"arrival": reservation.arrival + timedelta(days=3),
                    "departure": reservation.departure + timedelta(days=3)}
        )
        _, ack = await put(env.client, settings.task_queue, later, quiet_policy())
        assert ack.changed and not ack.created
        state = await handle.query(GuestJourneyWorkflow.state)
        steps = {step.key: step for step in state.steps}
        assert steps["checkin_reminder:PT24H"].scheduled_for == later.arrival - timedelta(hours=24)
        assert steps["checkin_invitation"].status in (StepStatus.due, StepStatus.done)  # sent, not re-planned

        await env.sleep(timedelta(days=3))  # the old reminder moments pass: nothing is sent
        assert email.templates() == ["checkin_invitation"]
        result = await finish(env, handle)

    assert email.templates() == [
        "checkin_invitation", "checkin_reminder", "checkin_reminder",
        "guest_post_stay_feedback", "feedback_reminder",
    ]
    reminder = next(step for step in result.steps if step.key == "checkin_reminder:PT24H")
    assert abs(reminder.done_at - (later.arrival - timedelta(hours=24))) < timedelta(minutes=1)


async def test_cancel_stops_every_pending_message(env, worker, email, settings, sessions):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2))
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)
        ack = await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="c1"))
        assert ack.stage is Stage.cancelled
        result = await finish(env, handle)

    assert result.stage is Stage.cancelled
    assert email.templates() == ["checkin_invitation"]
    statuses = {step.key: step.status for step in result.steps}
    assert statuses["checkin_invitation"] is StepStatus.done
    assert statuses["checkin_reminder:PT24H"] is StepStatus.cancelled
    assert statuses["close"] is StepStatus.cancelled
    cancelled = next(step for step in result.steps if step.key == "checkin_reminder:PT24H")
    assert cancelled.reason == "reservation cancelled"
    async with sessions() as session:
        stored = await get_journey(session=session, reservation_id=reservation.reservation_id)
    assert stored is not None and stored.stage is Stage.cancelled


async def test_pms_events_advance_stages_and_feedback_follows_check_out(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(hours=30), nights=3, marketing_consent=False)
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)  # the invitation goes at once: arrival is within 72 h
        ack = await handle.execute_update(
            GuestJourneyWorkflow.record_event, PmsEvent(type=PmsEventType.checked_in, request_id="e1")
        )
        assert ack.stage is Stage.in_stay
        state = await handle.query(GuestJourneyWorkflow.state)
        reminder = next(step for step in state.steps if step.key == "checkin_reminder:PT24H")
        assert reminder.status is StepStatus.skipped

        early_check_out = reservation.arrival + timedelta(days=1)
        ack = await handle.execute_update(
            GuestJourneyWorkflow.record_event,
            PmsEvent(type=PmsEventType.checked_out, at=early_check_out, request_id="e2"),
        )
        assert ack.stage is Stage.post_stay
        state = await handle.query(GuestJourneyWorkflow.state)
        feedback = next(step for step in state.steps if step.key == "guest_post_stay_feedback")
        assert feedback.scheduled_for == early_check_out + timedelta(hours=2)

        await env.sleep(early_check_out + timedelta(hours=3) - await now(env))
        await email.wait_for(2)  # then the feedback request, two hours after the early check-out
        ack = await handle.execute_update(
            GuestJourneyWorkflow.submit_feedback, FeedbackSubmission(request_id="f1", score=9, comment="Ótimo")
        )
        result = await finish(env, handle)

    assert result.stage is Stage.completed
    assert result.feedback.score == 9
    assert email.templates() == ["checkin_invitation", "guest_post_stay_feedback"]
    reminder = next(step for step in result.steps if step.key == "feedback_reminder")
    assert reminder.status is StepStatus.skipped and reminder.reason == "feedback already received"


async def test_consent_refused_on_the_check_in_form_stops_offers_the_pms_allowed(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=5), nights=2, marketing_consent=True)
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await handle.execute_update(
            GuestJourneyWorkflow.complete_checkin,
            CheckinSubmission(request_id="form", details={"marketing_consent": False}),
        )
        result = await finish(env, handle)

    steps = {step.key: step for step in result.steps}
    for key in ("upsell:room_upgrade", "upsell:late_checkout", "upsell_follow_up:late_checkout"):
        assert steps[key].status is StepStatus.skipped, key
        assert steps[key].reason == "no marketing consent: the guest declined offers on the check-in form", key
    assert email.templates() == ["guest_post_stay_feedback", "feedback_reminder"]  # no offer, ever


async def test_transient_failures_are_retried_and_the_message_is_sent_once(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2), nights=1, marketing_consent=False)
    email.transient_failures = 2
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(delivery=FAST_RETRY))
        await email.wait_for(1)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        await finish(env, handle)
    assert email.calls == 3
    assert email.templates() == ["checkin_invitation"]


async def test_permanent_failure_falls_back_to_the_next_channel(env, worker, email, settings, sessions):
    t0 = await now(env)
    reservation = booking(
        t0, arrive_in=timedelta(days=2), marketing_consent=False,
        preferred_channels=[Channel.email, Channel.webchat],
    )
    email.permanent_failure = "550 mailbox unknown"
    webchat = RecordingSender(Channel.webchat)
    async with worker({Channel.email: email, Channel.webchat: webchat}):
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(delivery=FAST_RETRY))
        await webchat.wait_for(1)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        state = await finish(env, handle)

    invitation = next(step for step in state.steps if step.key == "checkin_invitation")
    assert invitation.status is StepStatus.done and invitation.channel == "webchat"
    assert email.calls == 1  # a permanent failure is not retried
    async with sessions() as session:
        messages = await list_for_reservation(session=session, reservation_id=reservation.reservation_id)
    assert [(m.channel, m.status) for m in messages] == [("email", "failed"), ("webchat", "sent")]
    assert messages[0].reason == "550 mailbox unknown"


async def test_every_channel_failing_marks_the_step_failed_and_the_journey_goes_on(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2), nights=1, marketing_consent=False)
    email.permanent_failure = "550 mailbox unknown"
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        result = await finish(env, handle)
    steps = {step.key: step for step in result.steps}
    assert steps["checkin_invitation"].status is StepStatus.failed
    assert steps["checkin_invitation"].reason == "every channel failed: email: 550 mailbox unknown"
    assert result.stage is Stage.completed


async def test_identical_repeat_changes_nothing_and_sends_nothing_twice(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2), nights=1, marketing_consent=False)
    async with worker():
        handle, first = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)
        _, second = await put(env.client, settings.task_queue, reservation, quiet_policy())
        _, retried = await put(env.client, settings.task_queue, reservation, quiet_policy(), request_id="same")
        _, again = await put(env.client, settings.task_queue, reservation, quiet_policy(), request_id="same")
        revision = (await handle.query(GuestJourneyWorkflow.state)).revision
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        await finish(env, handle)
    assert first.created and not second.created
    assert not second.changed and not retried.changed and not again.changed
    assert email.templates() == ["checkin_invitation"]
    assert revision > 0


async def test_finished_journey_refuses_changes(env, worker, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2))
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="c"))
        await finish(env, handle)
        with pytest.raises(RPCError) as refused:
            await handle.execute_update(
                GuestJourneyWorkflow.record_event, PmsEvent(type=PmsEventType.checked_in, request_id="late")
            )
    assert refused.value.status is RPCStatusCode.NOT_FOUND  # the API answers 409 from the read model


async def test_continue_as_new_keeps_the_whole_state(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=5), nights=3)
    async with worker():
        handle, _ = await put(
            env.client, settings.task_queue, reservation, quiet_policy(), continue_as_new_after_events=60
        )
        first_run = (await handle.describe()).run_id
        await handle.execute_update(
            GuestJourneyWorkflow.submit_feedback, FeedbackSubmission(request_id="early", score=10)
        )
        result = await finish(env, handle)
        last_run = (await handle.describe()).run_id

    assert last_run != first_run
    assert result.feedback.score == 10
    assert email.templates() == WHOLE_STAY_TEMPLATES[:-2]  # feedback already in: no request, no reminder
    assert len({outgoing.message_id for outgoing in email.sent}) == len(email.sent)
