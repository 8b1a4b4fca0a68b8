"""Faults at random moments: a process killed and started again, a dependency
down for a while. The moments come from the test's seeded random."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from tests.chaos.processes import ServiceProcess, wait_until


class Clock:
    """Seconds since the scenario began, for its log and its fault moments."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started


def random_moments(rng: random.Random, count: int, *, start: float, end: float) -> list[float]:
    """`count` moments (seconds from the scenario's start) between `start` and `end`, in order."""
    return sorted(rng.uniform(start, end) for _ in range(count))


async def kill_and_restart(process: ServiceProcess, moments: list[float], clock: Clock) -> None:
    """At each moment, SIGKILL the process and start it again at once."""
    for moment in moments:
        await asyncio.sleep(max(0.0, moment - clock()))
        process.kill()
        process.start()
        print(f"{clock():7.1f} s  {process.name} killed (SIGKILL) and started again")


async def outage(
    *,
    what: str,
    at: float,
    lasting: float,
    stop: Callable[[], Awaitable[None]],
    start: Callable[[], Awaitable[None]],
    clock: Clock,
    until: Callable[[], Awaitable[bool]] | None = None,
    until_what: str = "",
    timeout: float = 120.0,
) -> None:
    """`what` is down from `at` for `lasting` seconds, and longer until `until()`
    is true (e.g. until a message has met the outage)."""
    await asyncio.sleep(max(0.0, at - clock()))
    await stop()
    print(f"{clock():7.1f} s  {what} down")
    await asyncio.sleep(lasting)
    if until is not None:
        await wait_until(until, timeout=timeout, what=f"{what} down: {until_what}", interval=0.5)
    await start()
    print(f"{clock():7.1f} s  {what} up again")
