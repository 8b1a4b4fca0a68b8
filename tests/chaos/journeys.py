"""Many journeys at once: started the way the API starts them, awaited with a
deadline, and their messages accounted for step by step."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateRPCTimeoutOrCancelledError

from guest_journey.journeys import JourneyView, Stage, StepKind, StepStatus
from guest_journey.messages import message_id_for, message_key
from guest_journey.policy import HotelPolicy
from guest_journey.reservations import Channel, Reservation
from tests.workflows.journeys import put


@dataclass(frozen=True)
class StartedJourney:
    reservation: Reservation
    handle: WorkflowHandle[Any, Any]


async def start_journeys(
    client: Client,
    *,
    task_queue: str,
    policy: HotelPolicy,
    count: int,
    in_flight: int,
    reservation: Callable[[int], Reservation],
) -> list[StartedJourney]:
    """`count` journeys, `in_flight` starts at a time; `reservation(i)` is built just
    before its start, so that its moments count from then."""
    gate = asyncio.Semaphore(in_flight)

    async def start(index: int) -> StartedJourney:
        async with gate:
            booked = reservation(index)
            request_id = f"start-{booked.reservation_id}"
            while True:
                try:
                    handle, _ = await put(client, task_queue, booked, policy, request_id=request_id)
                except WorkflowUpdateRPCTimeoutOrCancelledError:
                    # No worker answered in time (killed, or busy): ask again, as the
                    # reservation system does on a 503; the same request counts once.
                    continue
                return StartedJourney(booked, handle)

    return list(await asyncio.gather(*(start(index) for index in range(count))))


async def wait_for_results(journeys: list[StartedJourney], *, timeout: float) -> list[JourneyView]:
    """Every journey's result; fail naming the ones still running after `timeout` seconds."""
    tasks = [asyncio.ensure_future(journey.handle.result()) for journey in journeys]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    if pending:
        for task in pending:
            task.cancel()
        unfinished = [j.reservation.reservation_id for j, t in zip(journeys, tasks, strict=True) if t in pending]
        raise AssertionError(
            f"{len(unfinished)} of {len(journeys)} journeys did not finish within {timeout:.0f} s: "
            f"{unfinished[:20]}"
        )
    return [task.result() for task in tasks]


def journey_problems(results: Iterable[JourneyView]) -> list[str]:
    """What is wrong with journeys that should have run from booking to close.

    A step may be skipped when a fault delayed it past its moment (a reminder
    after arrival, an offer after its window), but only with the reason
    recorded; none may fail or be left pending."""
    problems = []
    for journey in results:
        rid = journey.reservation_id
        if journey.stage is not Stage.completed:
            problems.append(f"{rid}: stage {journey.stage}, not completed")
        for step in journey.steps:
            if step.status in (StepStatus.failed, StepStatus.planned, StepStatus.due):
                problems.append(f"{rid} {step.key}: {step.status} ({step.reason})")
            elif step.status is not StepStatus.done and not step.reason:
                problems.append(f"{rid} {step.key}: {step.status} without a reason")
    return problems


def every_message_sent(journey: JourneyView) -> bool:
    """No step of the journey was skipped or cancelled."""
    return all(step.status is StepStatus.done for step in journey.steps)


def sent_steps(results: Iterable[JourneyView]) -> dict[str, tuple[str, str]]:
    """Message id -> (reservation, step) of every message the journeys say they sent."""
    return {
        step.message_id: (journey.reservation_id, step.key)
        for journey in results
        for step in journey.steps
        if step.status is StepStatus.done and step.kind is not StepKind.close and step.message_id
    }


def delivery_problems(results: list[JourneyView], received: Iterable[str], channel: Channel) -> list[str]:
    """Each message the journeys sent must have arrived exactly once, and nothing else.

    `received` holds the message id of every message the provider accepted.
    (Faults that may leave a step in doubt are counted by `outcomes.step_outcomes`.)"""
    expected = sent_steps(results)
    every_step = {
        message_id_for(message_key(journey.reservation_id, step.key, channel)): (journey.reservation_id, step.key)
        for journey in results
        for step in journey.steps
    }
    counts = Counter(received)
    problems = []
    for message_id, (rid, step) in sorted(expected.items(), key=lambda item: item[1]):
        if counts[message_id] != 1:
            problems.append(f"{rid} {step}: sent, received {counts[message_id]} times")
    for message_id, times in sorted(counts.items()):
        if message_id in expected:
            continue
        rid, step = every_step.get(message_id, ("?", f"unknown message {message_id}"))
        problems.append(f"{rid} {step}: not sent according to its journey, received {times} times")
    return problems


def step_summary(results: Iterable[JourneyView]) -> str:
    """Per step and status, how many journeys; and why steps were not sent. For the test's log."""
    results = list(results)
    counts = Counter((step.key, step.status.value) for journey in results for step in journey.steps)
    reasons = Counter(
        (step.key, step.reason)
        for journey in results
        for step in journey.steps
        if step.status is not StepStatus.done
    )
    lines = [f"  {key}: {status} {n}" for (key, status), n in sorted(counts.items())]
    lines += [f"  {key} not sent ({n}): {reason}" for (key, reason), n in sorted(reasons.items())]
    return "\n".join(lines)
