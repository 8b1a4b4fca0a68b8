"""What every bench script shares: timing, percentiles, the machine's
description, and the reservations the journeys are given.

The service under test and the baselines' worker, as processes, are in
`bench.stand`.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from communications.channels.base import Delivery, Outgoing
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel

REPO = Path(__file__).resolve().parent.parent
PYCACHE = Path(tempfile.gettempdir()) / "guest-journey-bench-pycache"


# -- figures ------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (with 100 values, p99 is the second slowest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Timing:
    """Calls made, how long each took (seconds) and how long they all took."""

    label: str
    count: int
    seconds: float
    latencies: list[float]
    errors: list[str] = field(default_factory=list)

    HEADER = f"{'what':<40}{'per s':>9}{'median ms':>11}{'p99 ms':>10}{'errors':>8}"

    @property
    def rate(self) -> float:
        return (self.count - len(self.errors)) / self.seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else math.nan

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 0.99) * 1000

    def line(self) -> str:
        text = (
            f"{self.label:<40}{self.rate:>9.1f}{self.median_ms:>11.1f}{self.p99_ms:>10.1f}"
            f"{len(self.errors):>8}"
        )
        if self.errors:
            text += f"\n  first error: {self.errors[0]}"
        return text


async def timed(
    label: str, count: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> Timing:
    """`call(0..count-1)`, at most `concurrency` at a time, each one timed."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    errors: list[str] = []

    async def one(index: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                await call(index)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {error}"[:300])
                return
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    return Timing(label, count, time.perf_counter() - started, latencies, errors)


async def paced(
    label: str, rate: float, seconds: float, call: Callable[[int], Awaitable[None]]
) -> Timing:
    """Open loop: call `i` is started at `i / rate` seconds whether or not the
    earlier ones have answered; its latency runs from that planned moment, so a
    slow answer cannot hide the requests it held back."""
    count = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []

    async def one(index: int, planned: float) -> None:
        try:
            await call(index)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}"[:300])
            return
        latencies.append(time.perf_counter() - planned)

    started = time.perf_counter()
    calls = []
    for index in range(count):
        planned = started + index / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        calls.append(asyncio.create_task(one(index, planned)))
    await asyncio.gather(*calls)
    return Timing(label, count, time.perf_counter() - started, latencies, errors)


def ratio_line(name: str, ratio: float, target: str, met: bool) -> str:
    return f"{name} = {ratio:.2f} (target {target}: {'met' if met else 'not met'})"


# -- the machine --------------------------------------------------------------------


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True, cwd=REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    """Cores, commit and load average: the line every bench prints first and last."""
    one, five, fifteen = os.getloadavg()
    return (
        f"{os.cpu_count()} cores; commit {git_commit()}; "
        f"load average {one:.2f} {five:.2f} {fifteen:.2f}"
    )


def use_bytecode_cache() -> None:
    """Have this process's later imports (the workflow sandbox's among them) use
    Python's bytecode cache, as on a machine where the project was installed:
    with `PYTHONDONTWRITEBYTECODE=1` and no cache, the sandbox compiles
    `workflows/journey.py` again for every journey it loads."""
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(PYCACHE)


# -- what the journeys are given ----------------------------------------------------


def reservation_body(rng: random.Random, now: datetime) -> dict[str, Any]:
    """A new reservation arriving in 10-30 days: nothing is due for weeks."""
    arrival = (now + timedelta(days=rng.uniform(10, 30))).replace(
        hour=14, minute=0, second=0, microsecond=0
    )
    nights = rng.randint(1, 7)
    return {
        "hotel_id": rng.choice(("hotel-1", "hotel-2", "hotel-3")),
        "guest": {
            "name": rng.choice(("Ana Souza", "John Smith", "María García", "Lucas Oliveira")),
            "email": f"guest{rng.randrange(10**9)}@example.com",
            "phone": f"+55219{rng.randrange(10**8):08d}",
            "language": rng.choice(("pt-BR", "en", "es")),
            "marketing_consent": rng.random() < 0.6,
        },
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=nights, hours=-3)).isoformat(),
        "room_type": rng.choice(("standard", "deluxe", "suite")),
    }


class DiscardSender:
    """A channel that accepts every message and keeps none."""

    retry_is_safe = True  # nothing is kept, so nothing can be doubled
    reports_status = False
    longest_send = timedelta(seconds=1)

    def __init__(self, channel: Channel = Channel.email) -> None:
        self.channel = channel

    async def send(self, outgoing: Outgoing) -> Delivery:
        return Delivery(status=MessageStatus.sent)
