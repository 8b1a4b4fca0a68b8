"""The WhatsApp Cloud API rate limiting (429) and then unavailable (503) for a
while: messages are retried with backoff, then each is delivered exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from guest_journey.reservations import Channel
from tests.chaos.databases import (
    message_ids_by_provider_id,
    messages_retried,
    messages_waiting_to_retry,
    most_attempts,
)
from tests.chaos.faults import Clock
from tests.chaos.journeys import (
    delivery_problems,
    journey_problems,
    start_journeys,
    step_summary,
    wait_for_results,
)
from tests.chaos.processes import (
    WHATSAPP_ACCESS_TOKEN,
    WORKER_READY,
    Processes,
    TemporalServerProcess,
    service_environment,
    wait_until,
)
from tests.chaos.short_policy import FAST_DELIVERY, new_reservation_id, short_policy, short_stay
from tests.chaos.size import ChaosSize, chaos_size
from tests.fake_whatsapp import FakeWhatsAppApi

TASK_QUEUE = "guest-journey"
RATE_LIMIT_HIT = 130429
SERVICE_UNAVAILABLE = 131016


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_whatsapp_rate_limited_then_down_delivers_each_message_once(
    temporal: TemporalServerProcess,
    database_url: str,
    processes: Processes,
    size: ChaosSize,
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with FakeWhatsAppApi(access_token=WHATSAPP_ACCESS_TOKEN) as provider:
        worker = processes.worker(
            service_environment(
                data_dir=data_dir, temporal_address=temporal.address,
                database_url=database_url, whatsapp_api_base_url=provider.base_url,
            )
        )
        worker.start()
        await worker.wait_for_log(WORKER_READY)
        client = await temporal.client()
        policy = short_policy(lead=size.lead, stay=size.stay, close_after=size.close_after)
        half = size.whatsapp_outage.total_seconds() / 2

        clock = Clock()
        provider.start_outage(status=429, code=RATE_LIMIT_HIT)
        print(f"{clock():7.1f} s  WhatsApp answers 429 (code {RATE_LIMIT_HIT})")
        try:
            journeys = await start_journeys(
                client,
                task_queue=TASK_QUEUE,
                policy=policy,
                count=size.whatsapp_journeys,
                in_flight=size.starts_in_flight,
                reservation=lambda index: short_stay(
                    new_reservation_id("WAPP"), booked_at=datetime.now(UTC), lead=size.lead, stay=size.stay,
                    email=None, phone=f"+55119{index:08d}",
                ),
            )
            print(f"{clock():7.1f} s  {len(journeys)} journeys started")
            await asyncio.sleep(max(0.0, half - clock()))
            provider.start_outage(status=503, code=SERVICE_UNAVAILABLE)
            print(f"{clock():7.1f} s  WhatsApp answers 503 (code {SERVICE_UNAVAILABLE})")
            await asyncio.sleep(max(0.0, 2 * half - clock()))

            async def messages_waiting() -> bool:
                return await messages_waiting_to_retry(database_url, Channel.whatsapp.value) > 0

            await wait_until(messages_waiting, timeout=60, what="a WhatsApp message waiting to be retried")
            provider.end_outage()
            outage_lasted = clock()
            print(f"{outage_lasted:7.1f} s  WhatsApp answers again, {provider.refused_in_outage} requests refused")
            results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
        except AssertionError as error:
            raise AssertionError(f"{error}\n{processes.logs()}") from None
    print(f"{clock():7.1f} s  every journey finished\n{step_summary(results)}")

    problems = journey_problems(results)
    assert not problems, "\n".join(problems)
    sent_as = await message_ids_by_provider_id(database_url, Channel.whatsapp.value)
    received = [sent_as.get(wamid, f"{wamid} (a provider id no message recorded)") for wamid in provider.sent_ids]
    problems = delivery_problems(results, received, Channel.whatsapp)
    assert not problems, "\n".join(problems)
    assert provider.refused_in_outage > 0
    assert await messages_retried(database_url, Channel.whatsapp.value) > 0
    # Backoff: retries at least `first_retry_after` apart, never a burst.
    attempts_bound = 2 + outage_lasted / FAST_DELIVERY.first_retry_after.total_seconds()
    assert await most_attempts(database_url, Channel.whatsapp.value) <= attempts_bound
