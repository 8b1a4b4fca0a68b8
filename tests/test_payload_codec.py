"""The journey payload codec (`guest_journey.payload_codec`) and its keys
(`guest_journey.journey_keys`), without Temporal: what is encrypted, what
passes through, and what an erase leaves readable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import ActivitySerializationContext, WorkflowSerializationContext
from temporalio.exceptions import ApplicationError

from guest_journey.database import SessionFactory
from guest_journey.journey_keys import JourneyKeyErased, JourneyKeys, destroy_journey_keys
from guest_journey.journeys import workflow_id_for
from guest_journey.payload_codec import (
    ENCODING,
    KEY_ID,
    JourneyPayloadCodec,
    UndecodablePayload,
    journey_data_converter,
)
from services.kpi_schedule import WORKFLOW_ID as KPI_WORKFLOW_ID
from tests.workflows.journeys import booking

NAME, EMAIL = "Ana Souza", "ana.souza@example.com"
JOURNEY = workflow_id_for("R-CODEC-1")


def in_workflow(workflow_id: str) -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)


def in_activity(workflow_id: str | None) -> ActivitySerializationContext:
    return ActivitySerializationContext(
        namespace="default", activity_id="1", activity_type="send_message", activity_task_queue="q",
        workflow_id=workflow_id, workflow_type="GuestJourneyWorkflow" if workflow_id else None, is_local=False,
    )


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_journeys_payloads_are_encrypted_and_decode_without_context(sessions: SessionFactory):
    keys = JourneyKeys(sessions)
    codec = JourneyPayloadCodec(keys)

    for context in (in_workflow(JOURNEY), in_activity(JOURNEY)):
        encoded = await codec.with_context(context).encode([plain(NAME), plain(EMAIL)])

        assert [payload.metadata["encoding"] for payload in encoded] == [ENCODING, ENCODING]
        assert all(NAME.encode() not in p.SerializeToString() and EMAIL.encode() not in p.SerializeToString()
                   for p in encoded)
        assert await JourneyPayloadCodec(JourneyKeys(sessions)).decode(encoded) == [plain(NAME), plain(EMAIL)]


async def test_other_workflows_and_payloads_without_context_pass_through(sessions: SessionFactory):
    codec = JourneyPayloadCodec(JourneyKeys(sessions))
    payloads = [plain(NAME)]

    assert await codec.encode(payloads) == payloads
    assert await codec.with_context(in_workflow(KPI_WORKFLOW_ID)).encode(payloads) == payloads
    assert await codec.with_context(in_activity(None)).encode(payloads) == payloads
    # what was recorded before the codec (or without it) decodes as it is
    assert await codec.decode(payloads) == payloads


async def test_the_data_converter_round_trips_a_reservation(sessions: SessionFactory):
    reservation = booking(datetime(2026, 5, 1, tzinfo=UTC), arrive_in=timedelta(days=3), name=NAME, email=EMAIL)
    converter = journey_data_converter(JourneyKeys(sessions)).with_context(
        in_workflow(workflow_id_for(reservation.reservation_id)))

    encoded = await converter.encode([reservation])

    assert EMAIL.encode() not in encoded[0].SerializeToString()
    assert await converter.decode(encoded, [type(reservation)]) == [reservation]


async def test_an_erase_destroys_every_key_of_the_journey(sessions: SessionFactory):
    first = await JourneyPayloadCodec(JourneyKeys(sessions)).with_context(in_workflow(JOURNEY)).encode([plain(NAME)])
    # another process made a key of its own for the same journey
    second = await JourneyPayloadCodec(JourneyKeys(sessions)).with_context(in_workflow(JOURNEY)).encode([plain(NAME)])
    other = await JourneyPayloadCodec(JourneyKeys(sessions)).with_context(
        in_workflow(workflow_id_for("R-CODEC-2"))).encode([plain(EMAIL)])

    async with sessions() as session:
        destroyed = await destroy_journey_keys(session=session, workflow_id=JOURNEY)
        await session.commit()
        again = await destroy_journey_keys(session=session, workflow_id=JOURNEY)

    assert destroyed >= 1 and again == 0
    for payloads in (first, second):
        with pytest.raises(JourneyKeyErased, match=f"journey {JOURNEY!r} was destroyed by a GDPR erase"):
            await JourneyPayloadCodec(JourneyKeys(sessions)).decode(payloads)
    assert await JourneyPayloadCodec(JourneyKeys(sessions)).decode(other) == [plain(EMAIL)]


async def test_a_cached_key_outlives_an_erase_only_until_its_time_is_up(sessions: SessionFactory):
    clock = Clock()
    codec = JourneyPayloadCodec(JourneyKeys(sessions, ttl=30, clock=clock))
    encoded = await codec.with_context(in_workflow(JOURNEY)).encode([plain(NAME)])
    async with sessions() as session:
        await destroy_journey_keys(session=session, workflow_id=JOURNEY)
        await session.commit()

    clock.now = 29.9
    assert await codec.decode(encoded) == [plain(NAME)]
    clock.now = 30.0
    with pytest.raises(JourneyKeyErased):
        await codec.decode(encoded)


async def test_a_tampered_payload_is_refused(sessions: SessionFactory):
    codec = JourneyPayloadCodec(JourneyKeys(sessions))
    [encoded] = await codec.with_context(in_workflow(JOURNEY)).encode([plain(NAME)])
    encoded.data = encoded.data[:-1] + bytes([encoded.data[-1] ^ 1])

    with pytest.raises(UndecodablePayload, match=JOURNEY):
        await codec.decode([encoded])


async def test_one_process_makes_one_key_per_journey_however_many_encode_at_once(sessions: SessionFactory):
    keys = JourneyKeys(sessions)
    codec = JourneyPayloadCodec(keys).with_context(in_workflow(JOURNEY))

    encoded = await asyncio.gather(*(codec.encode([plain(NAME)]) for _ in range(20)))

    assert len({payloads[0].metadata[KEY_ID] for payloads in encoded}) == 1


async def test_a_failures_message_is_encrypted_with_the_journeys_payloads(sessions: SessionFactory):
    converter = journey_data_converter(JourneyKeys(sessions)).with_context(in_workflow(JOURNEY))
    failure = Failure()

    await converter.encode_failure(ApplicationError(f"550 5.1.1 <{EMAIL}>: Recipient address rejected"), failure)

    assert EMAIL.encode() not in failure.SerializeToString()
    assert EMAIL in str(await converter.decode_failure(failure))


async def test_keys_leave_memory_once_their_time_is_up_however_few_are_cached(sessions: SessionFactory):
    clock = Clock()
    keys = JourneyKeys(sessions, ttl=30, clock=clock)
    for number in range(3):
        await JourneyPayloadCodec(keys).with_context(in_workflow(f"journey-{number}")).encode([plain(NAME)])
    assert keys.held == 3

    clock.now = 30.0
    await JourneyPayloadCodec(keys).with_context(in_workflow("journey-later")).encode([plain(NAME)])

    assert keys.held == 1  # a worker that has seen thousands of journeys holds only the last ttl's keys
