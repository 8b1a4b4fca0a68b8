"""A worker stopped mid-journey and started again, on the real Temporal dev server."""

from __future__ import annotations

from datetime import timedelta

from guest_journey.journeys import Stage, StepStatus
from guest_journey.messages import message_id_for, message_key
from guest_journey.policy import HotelPolicy, UpsellOffer
from guest_journey.reservations import Channel
from tests.workflows.journeys import booking, put, quiet_policy
from worker import build_worker

SECONDS = timedelta(seconds=1)


def short_stay_policy() -> HotelPolicy:
    """A whole journey in about twenty seconds of real time."""
    return quiet_policy(
        checkin_reminders_before_arrival=[4 * SECONDS],
        upsell_offers=[
            UpsellOffer(offer="room_upgrade", send_before_arrival=timedelta(hours=48)),
            UpsellOffer(offer="late_checkout", send_before_departure=5 * SECONDS, follow_up_after=2 * SECONDS),
        ],
        post_stay_feedback_after_departure=1 * SECONDS,
        feedback_reminder_after=2 * SECONDS,
        close_after_departure=6 * SECONDS,
    )


async def test_worker_restart_mid_journey_sends_every_message_exactly_once(
    dev_env, settings, sessions, email
):
    t0 = await dev_env.get_current_time()
    reservation = booking(t0, arrive_in=8 * SECONDS)
    reservation = reservation.model_copy(update={"departure": reservation.arrival + 8 * SECONDS})
    channels = {Channel.email: email}
    async with build_worker(dev_env.client, settings, sessions, channels):
        handle, _ = await put(dev_env.client, settings.task_queue, reservation, short_stay_policy())
        await email.wait_for(2)  # the invitation and the upgrade offer went out; stop mid-journey
    async with build_worker(dev_env.client, settings, sessions, channels):
        result = await handle.result()

    assert result.stage is Stage.completed
    assert email.templates() == [
        "checkin_invitation", "upsell_offer", "checkin_reminder", "upsell_offer",
        "upsell_follow_up", "guest_post_stay_feedback", "feedback_reminder",
    ]
    expected = {
        message_id_for(message_key(reservation.reservation_id, step.key, Channel.email))
        for step in result.steps
        if step.status is StepStatus.done and step.key != "close"
    }
    assert sorted(outgoing.message_id for outgoing in email.sent) == sorted(expected)  # each once
