"""What an operator checks first (runbook): one block, the same for `guest-journey status`
and the ops panel.

- the database and Temporal answer;
- workers poll the task queue (Temporal's DescribeTaskQueue lists them);
- the backlogs the runbook names: `guest_journey_bridge.pending()` (preference
  snapshots not applied yet) and `automation_queue.pending()` (the task queue's);
- the failure rate of the last hour, by channel;
- journeys without progress (a step overdue by more than 15 minutes).

A part that cannot be read says why instead of a figure; nothing here raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import text
from temporalio.client import Client

from api.staff.attention import STUCK_AFTER, stuck_journeys
from communications.delivery_summary import ChannelSummary, delivery_summary
from guest_journey.database import SessionFactory
from guest_journey.schema import SchemaNotCurrent, check_database_is_current
from guest_journey.settings import Settings
from guest_journey.temporal import workflow_pollers
from services.snapshot_pending import pending_snapshots
from services.task_queue import task_queue_backlog

CHECK_TIMEOUT_SECONDS = 5.0
FAILURE_WINDOW = timedelta(hours=1)
STUCK_SHOWN = 5


class ServiceStatus(BaseModel):
    checked_at: datetime
    task_queue: str
    database: str = Field(description="ok, or why not")
    temporal: str = Field(description="ok, or why not")
    workers: list[str] | None = Field(description="identities of the workers polling the task queue; None: unknown")
    task_queue_backlog: int | None = Field(description="automation_queue.pending(): tasks waiting for a worker")
    snapshots_pending: int | None = Field(description="guest_journey_bridge.pending(): snapshots not applied yet")
    failures_last_hour: dict[str, ChannelSummary] | None = Field(description="by channel; None: unknown")
    journeys_without_progress: list[str] | None = Field(
        description=f"reservations with a step overdue by more than {STUCK_AFTER}; None: unknown")

    @property
    def healthy(self) -> bool:
        return self.database == "ok" and self.temporal == "ok" and bool(self.workers)

    def lines(self) -> list[str]:
        """The block as text: one line per part, in the runbook's words."""
        def known(value: object, shown: str) -> str:
            return "unknown" if value is None else shown

        failures = self.failures_last_hour or {}
        rates = ", ".join(f"{channel} {summary.failure_rate:.1%} ({summary.failed} of {summary.total})"
                          for channel, summary in sorted(failures.items())) or "no message"
        stuck = self.journeys_without_progress or []
        shown = ", ".join(stuck[:STUCK_SHOWN]) + (", ..." if len(stuck) > STUCK_SHOWN else "")
        return [
            f"status: {'ok' if self.healthy else 'degraded'} at {self.checked_at:%Y-%m-%d %H:%M:%S %Z}",
            f"database: {self.database}",
            f"temporal: {self.temporal}",
            f"workers polling {self.task_queue}: "
            + known(self.workers, f"{len(self.workers or [])} {' '.join(self.workers or [])}".strip()),
            "automation_queue.pending(): " + known(self.task_queue_backlog, f"{self.task_queue_backlog} tasks"),
            "guest_journey_bridge.pending(): " + known(self.snapshots_pending, f"{self.snapshots_pending} snapshots"),
            "failure rate, last hour: " + known(self.failures_last_hour, rates),
            "journeys without progress: " + known(self.journeys_without_progress,
                                                 f"{len(stuck)}" + (f" ({shown})" if stuck else "")),
        ]


async def service_status(
    *, client: Client | None, sessions: SessionFactory, settings: Settings, now: datetime,
    hotels: Collection[str] | None = None, temporal_problem: str | None = None,
) -> ServiceStatus:
    """The block, of these hotels (a caller's scope) for the figures of journeys and messages.
    `client` None: Temporal could not be reached (`temporal_problem` says why)."""
    database, figures = await _database_figures(sessions, now, hotels)
    temporal, workers, backlog = await _temporal_figures(client, settings, temporal_problem)
    return ServiceStatus(
        checked_at=now, task_queue=settings.task_queue, database=database, temporal=temporal, workers=workers,
        task_queue_backlog=backlog, snapshots_pending=figures.snapshots_pending,
        failures_last_hour=figures.failures_last_hour, journeys_without_progress=figures.journeys_without_progress,
    )


@dataclass(frozen=True)
class _DatabaseFigures:
    snapshots_pending: int | None = None
    failures_last_hour: dict[str, ChannelSummary] | None = None
    journeys_without_progress: list[str] | None = None


async def _database_figures(
    sessions: SessionFactory, now: datetime, hotels: Collection[str] | None
) -> tuple[str, _DatabaseFigures]:
    unknown = _DatabaseFigures()
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), sessions() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as error:  # any failure is the answer
        return f"unreachable: {type(error).__name__}", unknown
    try:
        async with sessions() as session:
            await check_database_is_current(session.bind)  # type: ignore[arg-type]
    except SchemaNotCurrent as error:
        return f"answers, but {error}", unknown
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), sessions() as session:
            pending = await pending_snapshots(session=session, hotels=hotels)
            summary = await delivery_summary(session=session, since=now - FAILURE_WINDOW, until=now, hotels=hotels)
            stuck = await stuck_journeys(session=session, now=now, hotels=hotels)
    except Exception as error:
        return f"answers, but reading it failed: {type(error).__name__}", unknown
    return "ok", _DatabaseFigures(
        snapshots_pending=pending,
        failures_last_hour=summary.by_channel,
        journeys_without_progress=sorted({item.reservation_id for item in stuck if item.reservation_id}),
    )


async def _temporal_figures(
    client: Client | None, settings: Settings, problem: str | None
) -> tuple[str, list[str] | None, int | None]:
    if client is None:
        return f"unreachable: {problem or 'not connected'}", None, None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            pollers = await workflow_pollers(client, settings.task_queue)
            backlog = await task_queue_backlog(client=client, settings=settings)
    except Exception as error:
        return f"unreachable: {type(error).__name__}", None, None
    return "ok", sorted(poller.identity for poller in pollers), backlog
