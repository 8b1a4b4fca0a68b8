"""A journey stays small however long the stay: 1,000 web-chat messages on one
journey (the guest's, and staff's answers sent through the journey, each with
a long text) leave every run's history and every payload in it at least 10x
under Temporal's limits, and no payload grows with the number of messages.
The texts live in the database; the workflow keeps ids.

Run with `-s` to see the report: events and bytes of each run (the journey
continues as new on the way), and the largest payload of each kind.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from communications.channels.base import Delivery, Outgoing
from communications.channels.webchat import WebchatSender
from communications.inbound import store_inbound
from communications.message_store import list_for_reservation
from communications.staff_texts import body_stored_apart
from guest_journey.database import SessionFactory
from guest_journey.journeys import Stage, StepKind
from guest_journey.messages import MessageDirection
from guest_journey.read_model import get_journey
from guest_journey.reservations import Channel
from services.journey_service import notify_inbound
from tests.workflows.journeys import booking, end, now, put, quiet_policy
from workflows.journey import KEPT_MANUAL_STEPS, GuestJourneyWorkflow
from workflows.journey_inputs import ManualMessage

MESSAGES = 1_000
BURST = 20  # the guest writes 15 messages, staff answer 5 (each its own step)
STAFF_PER_BURST = 5
STAFF_MESSAGES = MESSAGES // BURST * STAFF_PER_BURST
CHECKPOINT = 100  # payloads after this many messages (25 staff texts) are the yardstick
STAFF_TEXT_LENGTH = 4_000  # the longest text staff may send
MARKER = "TEXT-KEPT-IN-THE-DATABASE"
# Temporal's limits: per run, events and bytes of its history; per payload, bytes.
EVENT_LIMIT = 51_200
HISTORY_LIMIT = 50 * 1024 * 1024
PAYLOAD_LIMIT = 2 * 1024 * 1024
MARGIN = 10
GROWTH, SLACK = 1.1, 256  # "does not grow": at most 10% (and 256 B) over the yardstick
STATE = "state carried across continue-as-new"
CONTINUE_AFTER_EVENTS = 3_000


async def test_a_thousand_web_chat_messages_keep_history_and_payloads_small(env, make_worker, settings, sessions):
    webchat = CountingWebchat()
    reservation = booking(await now(env), arrive_in=timedelta(days=30), nights=5, email=None,
                          preferred_channels=[Channel.webchat])
    rid = reservation.reservation_id
    async with make_worker({Channel.webchat: webchat}):
        # 1,000 messages take fewer events than the production threshold (10,000) now that
        # updates are answered in the task that records them: a lower one makes the run
        # continue as new on the way, so that the state it carries is checked too.
        handle, _ = await put(env.client, settings.task_queue, reservation, quiet_policy(),
                              continue_as_new_after_events=CONTINUE_AFTER_EVENTS)
        await until_recorded(sessions, rid)  # the guest's chat page opens once it is
        for first in range(0, MESSAGES, BURST):
            guest = range(first, first + BURST - STAFF_PER_BURST)
            staff = range(guest.stop, first + BURST)
            await asyncio.gather(*(guest_writes(env.client, sessions, rid, number) for number in guest))
            await asyncio.gather(*(staff_answers(handle, sessions, rid, number) for number in staff))
            await webchat.wait_for(first // BURST * STAFF_PER_BURST + STAFF_PER_BURST)
            if first + BURST == CHECKPOINT:
                yardstick = await runs_of(env.client, handle.id)
        result = await end(env, rid)
    runs = await runs_of(env.client, handle.id)
    report(yardstick, runs)

    assert max(run.events for run in runs) * MARGIN <= EVENT_LIMIT
    assert max(run.size for run in runs) * MARGIN <= HISTORY_LIMIT
    assert largest(runs).size * MARGIN <= PAYLOAD_LIMIT
    assert sum(run.texts_inside for run in runs) == 0  # not one staff text in any payload
    # Nothing grows with the messages: each kind of payload is as large after 1,000
    # as after 100, once old staff messages were forgotten (a state keeping every
    # staff message would be ~10x larger)...
    assert CHECKPOINT // BURST * STAFF_PER_BURST > KEPT_MANUAL_STEPS
    before, after = largest_by_kind(yardstick), largest_by_kind(runs)
    grown = {kind: (before[kind], size) for kind, size in after.items()
             if kind in before and size > before[kind] * GROWTH + SLACK}
    assert grown == {}
    # ... and the state carried to the next run keeps the last few staff messages only.
    carried = [run.carried for run in runs if run.carried is not None]
    assert len(carried) >= 1 and all(
        len(state["manual_messages"]) <= KEPT_MANUAL_STEPS + STAFF_PER_BURST for state in carried
    )
    manual = [step for step in result.steps if step.kind is StepKind.manual]
    assert len(manual) == KEPT_MANUAL_STEPS and result.stage is Stage.cancelled
    # The message table keeps every message, each staff text rendered from the database.
    async with sessions() as session:
        messages = await list_for_reservation(session=session, reservation_id=rid)
    answers = [m for m in messages if m.direction == MessageDirection.outbound.value]
    assert len(messages) == MESSAGES and len(answers) == STAFF_MESSAGES
    assert all(m.sent_at is not None and (m.body_text or "").startswith(MARKER) for m in answers)
    # Forgetting old steps and continuing as new while busy replay exactly as they ran.
    replayer = Replayer(workflows=[GuestJourneyWorkflow], data_converter=pydantic_data_converter)
    for run in runs:
        await replayer.replay_workflow(run.history)


# -- the messages ------------------------------------------------------------------------


class CountingWebchat(WebchatSender):
    """The web chat channel, counting what it is handed."""

    def __init__(self) -> None:
        self.sent = 0
        self._changed = asyncio.Condition()

    async def send(self, outgoing: Outgoing) -> Delivery:
        async with self._changed:
            self.sent += 1
            self._changed.notify_all()
        return await super().send(outgoing)

    async def wait_for(self, count: int, timeout: float = 60.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.sent >= count)


async def until_recorded(sessions: SessionFactory, reservation_id: str) -> None:
    async with asyncio.timeout(10):
        while True:
            async with sessions() as session:
                if await get_journey(session=session, reservation_id=reservation_id) is not None:
                    return
            await asyncio.sleep(0.05)


async def guest_writes(client: Client, sessions: SessionFactory, reservation_id: str, number: int) -> None:
    """What the guest's chat page does: store the message, tell the journey."""
    async with sessions() as session:
        result = await store_inbound(
            session=session, channel=Channel.webchat, sender=f"webchat:{reservation_id}",
            body=f"Guest message {number}", received_at=datetime.now(UTC), reservation_id=reservation_id,
        )
    await notify_inbound(client=client, message=result.message)


async def staff_answers(
    handle: WorkflowHandle[Any, Any], sessions: SessionFactory, reservation_id: str, number: int
) -> None:
    """What `POST /communications/send` does: store the text, send its id through the journey."""
    request_id = str(uuid.uuid4())
    text = f"{MARKER} {number}: " + "Claro, podemos ajudar com isso. " * (STAFF_TEXT_LENGTH // 32)
    async with sessions() as session:
        context = await body_stored_apart(session=session, reservation_id=reservation_id, request_id=request_id,
                                          context={"body": text[:STAFF_TEXT_LENGTH]})
    await handle.execute_update(
        GuestJourneyWorkflow.send_message,
        ManualMessage(request_id=request_id, template="free_text", channel=Channel.webchat, context=context),
    )


# -- measuring the histories -------------------------------------------------------------


@dataclass(frozen=True)
class Largest:
    size: int
    where: str


@dataclass
class Run:
    run_id: str
    events: int
    size: int  # bytes of its history
    history: WorkflowHistory
    largest: dict[str, Largest] = field(default_factory=dict)  # by kind of payload
    texts_inside: int = 0  # payloads holding a staff text
    carried: dict[str, Any] | None = None  # the state it continued as new with


async def runs_of(client: Client, workflow_id: str) -> list[Run]:
    """Every run of the journey so far, first to last (following continue-as-new back)."""
    runs: list[Run] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.insert(0, measure(history))
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return runs


def measure(history: WorkflowHistory) -> Run:
    events = history.events
    run = Run(history.run_id, len(events), sum(event.ByteSize() for event in events), history)
    for event in events:
        kind = kind_of(event)
        for payload in payloads(event):
            run.texts_inside += MARKER.encode() in payload.data
            known = run.largest.get(kind)
            if known is None or payload.ByteSize() > known.size:
                run.largest[kind] = Largest(payload.ByteSize(), f"event {event.event_id}")
        if event.HasField("workflow_execution_continued_as_new_event_attributes"):
            data = event.workflow_execution_continued_as_new_event_attributes.input.payloads[0].data
            run.carried = json.loads(data)["state"]
    return run


def kind_of(event: HistoryEvent) -> str:
    if event.HasField("activity_task_scheduled_event_attributes"):
        return f"input of activity {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if event.HasField("workflow_execution_update_accepted_event_attributes"):
        name = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        return f"argument of update {name}"
    if event.HasField("workflow_execution_signaled_event_attributes"):
        return f"input of signal {event.workflow_execution_signaled_event_attributes.signal_name}"
    if event.HasField("workflow_execution_continued_as_new_event_attributes"):
        return STATE
    if event.workflow_execution_started_event_attributes.continued_execution_run_id:
        return STATE  # the same state, as the next run's input
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()


def payloads(message: Message) -> Iterator[Payload]:
    """Every payload inside an event: activity inputs and results, update arguments and
    answers, signal inputs, the workflow's input and result, headers, search attributes."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value) if descriptor.is_repeated else [value]
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads(item)


def largest_by_kind(runs: list[Run]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for run in runs:
        for kind, found in run.largest.items():
            sizes[kind] = max(sizes.get(kind, 0), found.size)
    return sizes


def largest(runs: list[Run]) -> Largest:
    return max((found for run in runs for found in run.largest.values()), key=lambda found: found.size)


def report(yardstick: list[Run], runs: list[Run]) -> None:
    print(f"\n{MESSAGES:,} web-chat messages on one journey: {MESSAGES - STAFF_MESSAGES} from the guest, "
          f"{STAFF_MESSAGES} staff texts of {STAFF_TEXT_LENGTH:,} characters")
    print(f"{'run':<38} {'events':>7} {'history bytes':>14}  {'largest payload':>16}")
    for run in runs:
        top = max(run.largest.items(), key=lambda item: item[1].size)
        print(f"{run.run_id:<38} {run.events:>7,} {run.size:>14,}  {top[1].size:>14,} B  {top[0]}, {top[1].where}")
    before, after = largest_by_kind(yardstick), largest_by_kind(runs)
    print(f"{'largest payload of each kind':<46} {f'after {CHECKPOINT}':>11} {f'after {MESSAGES:,}':>12}")
    for kind, size in sorted(after.items(), key=lambda item: -item[1]):
        print(f"  {kind:<44} {before.get(kind, 0) or '-':>11} {size:>12,}")
    events, size, payload = max(run.events for run in runs), max(run.size for run in runs), largest(runs).size
    print(f"Temporal's limits: {EVENT_LIMIT:,} events and {HISTORY_LIMIT:,} B per run, {PAYLOAD_LIMIT:,} B per payload")
    print(f"most events in a run {events:,} ({EVENT_LIMIT / events:.1f}x under), largest history {size:,} B "
          f"({HISTORY_LIMIT / size:.0f}x under), largest payload {payload:,} B ({PAYLOAD_LIMIT / payload:.0f}x under)")
