"""The simulated clock (`guest_journey.clock`): on the time-skipping server, what a
journey's activities stamp is the simulated moment they ran at, not the real one;
and without the interceptor, `utcnow()` is the real clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from communications.channels.base import ChannelSender
from communications.message_store import MessageRecord
from guest_journey.clock import SimulatedClock
from guest_journey.database import SessionFactory, utcnow
from guest_journey.read_model import JourneyRecord
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import booking, finish, now, put, quiet_policy
from worker import build_worker

CLOSE = timedelta(seconds=30)  # a stamp within this of its simulated moment


def test_utcnow_is_the_real_clock_outside_a_simulated_activity() -> None:
    assert abs(utcnow() - datetime.now(UTC)) < timedelta(seconds=1)


async def test_a_journey_s_activities_stamp_the_simulated_moments(
    env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory, email: RecordingSender
) -> None:
    start = await now(env)
    reservation = booking(start, arrive_in=timedelta(days=5), nights=2)
    channels: dict[Channel, ChannelSender] = {Channel.email: email}
    async with build_worker(env.client, settings, sessions, channels, interceptors=[SimulatedClock()]):
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy())
        await finish(env, handle)

    async with sessions() as session:
        messages = (await session.exec(select(MessageRecord).where(
            col(MessageRecord.reservation_id) == reservation.reservation_id))).all()
        journey = await session.get(JourneyRecord, reservation.reservation_id)
    assert journey is not None
    steps = {step["key"]: step for step in journey.view["steps"]}
    assert len(messages) >= 6  # the invitation, reminders, offers, feedback and its reminder
    for message in messages:  # the send activity's rows, at the simulated moment of the step
        assert message.step_key is not None
        due = datetime.fromisoformat(steps[message.step_key]["scheduled_for"])
        assert abs(message.created_at - due) < CLOSE, message.step_key
        assert message.sent_at is not None and abs(message.sent_at - due) < CLOSE
    # the read model's row, written by a local activity: last written when the journey closed
    close = reservation.departure + quiet_policy().close_after_departure
    assert abs(journey.updated_at - close) < CLOSE
    assert journey.created_at - start < CLOSE
    assert journey.updated_at - datetime.now(UTC) > timedelta(days=6)
