"""A step whose message is in doubt: shown as such, not sent on another channel,
and sent again once when staff ask for it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from communications.message_store import list_for_reservation
from guest_journey.journeys import StepStatus
from guest_journey.reservations import Channel
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import CancelRequest, SendAgainRequest


async def invitation_step(handle):  # type: ignore[no-untyped-def]
    state = await handle.query(GuestJourneyWorkflow.state)
    return next(step for step in state.steps if step.key == "checkin_invitation")


async def test_an_invitation_in_doubt_is_not_sent_on_the_next_channel_until_staff_send_it_again(
    env, worker, email, settings, sessions
):
    t0 = await now(env)
    reservation = booking(
        t0, arrive_in=timedelta(days=2), marketing_consent=False,
        preferred_channels=[Channel.email, Channel.webchat],
    )
    email.in_doubt_failures = 1
    webchat = RecordingSender(Channel.webchat)
    async with worker({Channel.email: email, Channel.webchat: webchat}):
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.in_doubt_raised.wait()
        step = await invitation_step(handle)
        while step.status is not StepStatus.in_doubt:  # the workflow records the activity's failure
            await env.sleep(timedelta(seconds=1))
            step = await invitation_step(handle)
        assert step.channel == "email" and "answer was lost" in (step.reason or "")

        ack = await handle.execute_update(
            GuestJourneyWorkflow.send_again, SendAgainRequest(request_id="staff-1", step_key=step.key)
        )
        assert ack.changed and ack.message_id == step.message_id
        await email.wait_for(2)
        while (await invitation_step(handle)).status is StepStatus.in_doubt:
            await env.sleep(timedelta(seconds=1))
        with pytest.raises(WorkflowUpdateFailedError) as raised:  # sent: nothing more to send again
            await handle.execute_update(
                GuestJourneyWorkflow.send_again, SendAgainRequest(request_id="staff-2", step_key=step.key)
            )
        assert "is done, not in doubt" in str(raised.value.cause)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        state = await finish(env, handle)

    invitation = next(step for step in state.steps if step.key == "checkin_invitation")
    assert invitation.status is StepStatus.done and invitation.channel == "email"
    assert webchat.calls == 0  # in doubt: never a second copy on another channel
    assert [outgoing.message_id for outgoing in email.sent] == [step.message_id, step.message_id]
    async with sessions() as session:
        messages = await list_for_reservation(session=session, reservation_id=reservation.reservation_id)
    assert [(m.channel, m.status, m.attempts) for m in messages if m.step_key == "checkin_invitation"] == [
        ("email", "sent", 2)
    ]


async def test_only_a_step_in_doubt_can_be_sent_again(env, worker, email, settings):
    t0 = await now(env)
    reservation = booking(t0, arrive_in=timedelta(days=2), marketing_consent=False)
    async with worker():
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await handle.execute_update(
                GuestJourneyWorkflow.send_again,
                SendAgainRequest(request_id="staff-1", step_key="checkin_invitation"),
            )
        assert "not in doubt" in str(raised.value.cause)
        with pytest.raises(WorkflowUpdateFailedError) as raised:
            await handle.execute_update(
                GuestJourneyWorkflow.send_again, SendAgainRequest(request_id="staff-2", step_key="no_such_step")
            )
        assert "no step 'no_such_step'" in str(raised.value.cause)
        await handle.execute_update(GuestJourneyWorkflow.cancel, CancelRequest(request_id="stop"))
        await finish(env, handle)
