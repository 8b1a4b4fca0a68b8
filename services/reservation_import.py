"""Bulk onboarding: many reservations started at once, by `guest-journey import FILE` and
`POST /reservations/batch`.

Each line is the PUT's body with its `reservation_id`, checked by the PUT's own model
(`Reservation`) and scope rule (`journey_id`), and started by `journey_service.start_journey`:
`start_workflow`, without waiting for the journey's first workflow task, at most
`concurrency` at a time. A line's request id is a digest of its reservation, so a re-run
of the same line is recognised by its journey (`update_reservation` answers "created by
this very request"): it counts as unchanged and never starts a second journey. A line
that changes an existing journey updates it, as a PUT would. A bad line is reported
(its number, its reservation id, what is wrong, naming the field) and the others go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError

from guest_journey.database import SessionFactory
from guest_journey.journey_ids import JourneyIdTooLong, journey_id
from guest_journey.policy import JourneyPolicy, PolicyError
from guest_journey.reservations import Reservation
from guest_journey.settings import Settings
from services.errors import DomainError
from services.journey_service import start_journey

logger = logging.getLogger(__name__)
BATCH_LIMIT = 1_000  # reservations in one `POST /reservations/batch`
DEFAULT_CONCURRENCY = 32
NO_ANSWER = "its journey exists but did not answer in time (is a worker running?); run the import again"


class Outcome(StrEnum):
    started = "started"
    updated = "updated"
    unchanged = "unchanged"
    failed = "failed"


@dataclass(frozen=True)
class ImportLine:
    """One line of a file, or one item of a batch: its number (from 1), and its fields or
    why they could not be read (`problem`: a line that is not JSON, say)."""

    number: int
    fields: dict[str, Any] | None
    problem: str | None = None

    @property
    def reservation_id(self) -> str | None:
        value = (self.fields or {}).get("reservation_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class LineFailure:
    line: int
    reservation_id: str | None
    error: str


@dataclass
class ImportTally:
    """Where an import stands: lines done by outcome, the failures, the time it took."""

    total: int | None = None
    counts: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    failures: list[LineFailure] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def seconds(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return ", ".join(f"{count} {outcome.value}" for outcome, count in self.counts.items())


class LineError(Exception):
    """A line that cannot be started, and why (naming the field)."""


def describe(error: ValidationError) -> str:
    """A validation error as `field: problem; field: problem` (the body's own field names)."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "line"
        problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def read_reservation(line: ImportLine, settings: Settings) -> Reservation:
    """The reservation a line names, checked as a PUT's body and path are (`LineError`)."""
    if line.fields is None:
        raise LineError(line.problem or "the line is empty")
    try:
        given = Reservation.model_validate(line.fields)
    except ValidationError as error:
        raise LineError(describe(error)) from None
    try:
        journey = journey_id(given.hotel_id, given.reservation_id, settings.workflow_id_scope)
    except JourneyIdTooLong as error:
        raise LineError(str(error)) from None
    return given if journey == given.reservation_id else given.model_copy(update={"reservation_id": journey})


def request_id_of(reservation: Reservation) -> str:
    """The same reservation gives the same request id, run after run."""
    return "import-" + hashlib.sha256(reservation.model_dump_json().encode()).hexdigest()[:32]


LineCheck = Callable[[AsyncSession, Reservation], Awaitable[None]]
Progress = Callable[[ImportTally], None]


async def import_reservations(
    lines: Iterable[ImportLine],
    *,
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    policy: JourneyPolicy,
    concurrency: int = DEFAULT_CONCURRENCY,
    total: int | None = None,
    check: LineCheck | None = None,
    progress: Progress | None = None,
) -> ImportTally:
    """Start (or update) the journey of every line, `concurrency` at a time; `check` is the
    caller's own (a key's hotels), raising a `DomainError` for a line it refuses."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    tally = ImportTally(total=total)
    queue: asyncio.Queue[ImportLine | None] = asyncio.Queue(maxsize=concurrency * 2)

    async def one(line: ImportLine) -> None:
        outcome = Outcome.failed
        try:
            outcome = await _start_line(line, client=client, settings=settings, sessions=sessions,
                                        policy=policy, check=check)
        except (LineError, DomainError, PolicyError) as error:
            tally.failures.append(LineFailure(line.number, line.reservation_id, _reason(error)))
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            tally.failures.append(LineFailure(line.number, line.reservation_id, NO_ANSWER))
        except Exception as error:  # one line's surprise is reported, the others go on
            logger.exception("reservation line %d failed", line.number)
            tally.failures.append(LineFailure(line.number, line.reservation_id, f"{type(error).__name__}: {error}"))
        tally.counts[outcome] += 1
        if progress is not None:
            progress(tally)

    async def work() -> None:
        while (line := await queue.get()) is not None:
            await one(line)

    workers = [asyncio.create_task(work()) for _ in range(concurrency)]
    try:
        for line in lines:
            await queue.put(line)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
    finally:
        for worker in workers:
            worker.cancel()
    tally.failures.sort(key=lambda failure: failure.line)
    tally.finished_at = time.monotonic()
    return tally


async def _start_line(
    line: ImportLine,
    *,
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    policy: JourneyPolicy,
    check: LineCheck | None,
) -> Outcome:
    reservation = read_reservation(line, settings)
    if check is not None:
        async with sessions() as session:
            await check(session, reservation)
    ack = await start_journey(client=client, settings=settings, sessions=sessions, policy=policy,
                              reservation=reservation, request_id=request_id_of(reservation))
    if ack.created:
        # A journey just started is created and changed; the journey answers "created" (not
        # changed) to the very request that started it: a re-run of the same line.
        return Outcome.started if ack.changed else Outcome.unchanged
    return Outcome.updated if ack.changed else Outcome.unchanged


def _reason(error: Exception) -> str:
    return error.detail if isinstance(error, DomainError) else str(error)
