"""Record journey histories from the current workflow code for the replay test.

Run `python -m tests.workflows.record_histories` (after bumping SHAPE) after a change to
the workflow (guarded by `workflow.patched`) to add the new shape; keep the
old files, so that CI proves old journeys still replay.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from commands.devserver import find_installed_binary
from guest_journey.database import create_engine, session_factory
from guest_journey.journeys import StepStatus
from guest_journey.policy import HotelPolicy, QuietHours
from guest_journey.reservations import Channel
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings
from guest_journey.temporal import register_search_attributes
from tests.recording_sender import RecordingSender
from tests.workflows.journeys import booking, finish, put, quiet_policy
from worker import build_worker
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import (
    CheckinSubmission,
    FeedbackSubmission,
    InboundNotice,
    ManualMessage,
    MessageFailedLater,
    OfferAnswer,
    PmsEvent,
    PmsEventType,
    SendAgainRequest,
)

HISTORIES = Path(__file__).parent / "histories"
# Bump with every workflow change guarded by `workflow.patched`: new files are
# added beside the old ones, which must keep replaying.
SHAPE = "quiet-hours-with-answer-when-recorded"
Scenario = Callable[[WorkflowEnvironment, str], Awaitable[WorkflowHandle[Any, Any]]]


async def whole_stay(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=5), nights=3)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    return handle


async def changes_and_answers(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """Date change, check-in (offers declined on the form), an offer answer, a staff
    message, PMS events, feedback."""
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=4), nights=2)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    later = reservation.model_copy(
        update={"arrival": reservation.arrival + timedelta(days=1),
                "departure": reservation.departure + timedelta(days=1)}
    )
    await put(env.client, task_queue, later, quiet_policy())
    await handle.execute_update(GuestJourneyWorkflow.complete_checkin,
                                CheckinSubmission(request_id="c", details={"marketing_consent": False},
                                                  preferences={"pillow": "firm"}))
    # Only an offer sent to the guest can be answered: staff send it first.
    await handle.execute_update(GuestJourneyWorkflow.send_message, ManualMessage(
        request_id="offer", template="upsell_offer", context={"upsell_offer": "room_upgrade"}))
    await _until_done(handle, "manual:offer")
    await handle.execute_update(GuestJourneyWorkflow.answer_offer,
                                OfferAnswer(request_id="o", offer="room_upgrade", accepted=True))
    await handle.execute_update(GuestJourneyWorkflow.send_message,
                                ManualMessage(request_id="m", template="free_text", context={"body": "Olá!"}))
    await handle.execute_update(GuestJourneyWorkflow.record_event,
                                PmsEvent(type=PmsEventType.checked_in, request_id="e1"))
    await handle.execute_update(GuestJourneyWorkflow.record_event,
                                PmsEvent(type=PmsEventType.checked_out, request_id="e2"))
    await handle.execute_update(GuestJourneyWorkflow.submit_feedback,
                                FeedbackSubmission(request_id="f", score=9))
    return handle


async def checked_in_declining_offers(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """The reservation consents to offers; the guest declines them on the check-in form."""
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=5), nights=2, marketing_consent=True)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    await handle.execute_update(GuestJourneyWorkflow.complete_checkin,
                                CheckinSubmission(request_id="c", details={"marketing_consent": False}))
    return handle


async def guest_replaced(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """The guest checks in; the reservation system then gives the reservation to another guest."""
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=5), nights=2)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    await handle.execute_update(GuestJourneyWorkflow.complete_checkin,
                                CheckinSubmission(request_id="c", details={"nationality": "BR"},
                                                  preferences={"pillow": "firm"}))
    other = reservation.guest.model_copy(update={"name": "Bruno Lima", "email": "bruno@example.com"})
    await put(env.client, task_queue, reservation.model_copy(update={"guest": other}), quiet_policy())
    return handle


async def whatsapp_failed_later(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """A staff message sent as WhatsApp free text, reported failed later (131047, twice):
    sent again as the template, once."""
    now = await env.get_current_time()
    reservation = booking(now, arrive_in=timedelta(days=5), nights=2, marketing_consent=False,
                          email=None, phone="+5511999990000")
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    await handle.signal(GuestJourneyWorkflow.record_inbound,
                        InboundNotice(message_id="in", channel=Channel.whatsapp, received_at=now))
    ack = await handle.execute_update(
        GuestJourneyWorkflow.send_message,
        ManualMessage(request_id="m", template="checkin_invitation", channel=Channel.whatsapp),
    )
    assert ack.message_id is not None
    await _until_done(handle, "manual:m")  # the failure is reported once the message went out
    failure = MessageFailedLater(message_id=ack.message_id, step_key="manual:m", channel=Channel.whatsapp,
                                 error_code=131047, reason="Re-engagement message (code 131047)", failed_at=now)
    for _ in range(2):
        await handle.signal(GuestJourneyWorkflow.message_failed_later, failure)
    return handle


async def in_doubt_sent_again(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """The invitation's answer is lost (in doubt); staff send it again, once."""
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=2), nights=1, marketing_consent=False)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy())
    await _until(handle, "checkin_invitation", StepStatus.in_doubt)
    await handle.execute_update(GuestJourneyWorkflow.send_again,
                                SendAgainRequest(request_id="again", step_key="checkin_invitation"))
    await _until_done(handle, "checkin_invitation")
    return handle


# Scenarios whose first e-mail's answer is lost.
FIRST_EMAIL_IN_DOUBT = frozenset({"in_doubt_sent_again"})


async def _until_done(handle: WorkflowHandle[Any, Any], key: str) -> None:
    await _until(handle, key, StepStatus.done)


async def _until(handle: WorkflowHandle[Any, Any], key: str, status: StepStatus) -> None:
    for _ in range(600):
        state = await handle.query(GuestJourneyWorkflow.state)
        if any(step.key == key and step.status is status for step in state.steps):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"step {key} was not {status} within 30 s")


async def continued_as_new(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    reservation = booking(await env.get_current_time(), arrive_in=timedelta(days=5), nights=3)
    handle, _ = await put(env.client, task_queue, reservation, quiet_policy(), continue_as_new_after_events=60)
    return handle


async def late_booking_in_quiet_hours(env: WorkflowEnvironment, task_queue: str) -> WorkflowHandle[Any, Any]:
    """Booked in quiet hours two hours before arrival: the check-in invitation goes at
    once (quiet hours by kind of message), where before it was skipped."""
    now = await env.get_current_time()
    local = now.astimezone(ZoneInfo(HotelPolicy().hotel_timezone))
    quiet = QuietHours(start=(local - timedelta(hours=1)).time().replace(second=0, microsecond=0),
                       end=(local + timedelta(hours=8)).time().replace(second=0, microsecond=0))
    reservation = booking(now, arrive_in=timedelta(hours=2), nights=1)
    handle, _ = await put(env.client, task_queue, reservation, HotelPolicy(quiet_hours=quiet))
    return handle


SCENARIOS: dict[str, Scenario] = {
    "whole_stay": whole_stay,
    "changes_and_answers": changes_and_answers,
    "continued_as_new": continued_as_new,
    "checked_in_declining_offers": checked_in_declining_offers,
    "whatsapp_failed_later": whatsapp_failed_later,
    "guest_replaced": guest_replaced,
    "in_doubt_sent_again": in_doubt_sent_again,
    "late_booking_in_quiet_hours": late_booking_in_quiet_hours,
}


async def record(target: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(find_installed_binary("temporal-test-server")),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client, "default")
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), task_queue=f"record-{uuid.uuid4()}", secret_key="record")
        engine = create_engine(settings.resolved_database_url)
        await upgrade_database(engine)
        channels = {Channel.email: RecordingSender(Channel.email), Channel.whatsapp: RecordingSender(Channel.whatsapp)}
        async with build_worker(env.client, settings, session_factory(engine), channels):
            for name, scenario in SCENARIOS.items():
                if name in FIRST_EMAIL_IN_DOUBT:
                    channels[Channel.email].in_doubt_failures = 1
                handle = await scenario(env, settings.task_queue)
                await finish(env, handle)
                first_run = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id
                                                           or (await handle.describe()).run_id)
                history = await first_run.fetch_history()
                (target / f"{name}.{SHAPE}.json").write_text(history.to_json())
        await engine.dispose()
    await env.shutdown()


if __name__ == "__main__":
    HISTORIES.mkdir(exist_ok=True)
    asyncio.run(record(HISTORIES))
