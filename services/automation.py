"""Preference sync and satisfaction telemetry (runbook: `automation.py`): the
objects the runbook names.

`guest_journey_bridge.pending()` counts pending snapshots and
`automation_queue.pending()` the Temporal task-queue backlog, for operators;
both objects are bound to the Temporal client and the database at start.

Satisfaction telemetry is `record_dashboard_guest_experience`
(`services.kpi_store`), run every hour by the KPI schedule in the worker;
`telemetry_check()` says whether it is going well: this process's last run, and
(given a session) whether the stored snapshots are fresh and the alerts reach
the webhook.

The work itself lives beside this module: the snapshots in sync and async
mode (`services.journey_snapshots`), the `snapshot_pending` table and its
counts (`services.snapshot_pending`), the journeys' figures
(`services.journey_volume`) and the task-queue backlog (`services.task_queue`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from guest_journey.database import SessionFactory, utcnow
from guest_journey.settings import Settings
from services.journey_snapshots import (
    GuestJourneySnapshotRequest,
    SnapshotMode,
    SnapshotResult,
    apply_snapshots,
    send_snapshots,
)
from services.journey_volume import JourneyVolume, journey_volume
from services.kpi_store import record_dashboard_guest_experience, telemetry_status
from services.kpi_tables import KpiAlert, KpiSnapshot
from services.snapshot_pending import pending_snapshots
from services.task_queue import AutomationUnavailable, task_queue_backlog

__all__ = [
    "AutomationQueue",
    "AutomationUnavailable",
    "GuestJourneyBridge",
    "automation_queue",
    "guest_journey_bridge",
    "record_dashboard_guest_experience",
    "telemetry_check",
]


class GuestJourneyBridge:
    """Preference sync for operators: `await guest_journey_bridge.pending()`."""

    def __init__(self) -> None:
        self._client: Client | None = None
        self._sessions: SessionFactory | None = None

    def bind(self, *, client: Client, sessions: SessionFactory) -> None:
        self._client, self._sessions = client, sessions

    def _parts(self) -> tuple[Client, SessionFactory]:
        if self._client is None or self._sessions is None:
            raise AutomationUnavailable("guest_journey_bridge is not bound: call bind(client=..., sessions=...)")
        return self._client, self._sessions

    async def pending(self) -> int:
        _, sessions = self._parts()
        async with sessions() as session:
            return await pending_snapshots(session=session)

    async def volume(self) -> JourneyVolume:
        _, sessions = self._parts()
        async with sessions() as session:
            return await journey_volume(session=session)

    async def push(self, request: GuestJourneySnapshotRequest) -> SnapshotResult:
        client, sessions = self._parts()
        apply = apply_snapshots if request.mode is SnapshotMode.sync else send_snapshots
        async with sessions() as session:
            return await apply(client=client, session=session, snapshots=request.snapshots)


class AutomationQueue:
    """The Temporal task-queue backlog for operators: `await automation_queue.pending()`."""

    def __init__(self) -> None:
        self._client: Client | None = None
        self._settings: Settings | None = None

    def bind(self, *, client: Client, settings: Settings) -> None:
        self._client, self._settings = client, settings

    async def pending(self) -> int:
        if self._client is None or self._settings is None:
            raise AutomationUnavailable("automation_queue is not bound: call bind(client=..., settings=...)")
        return await task_queue_backlog(client=self._client, settings=self._settings)


STALE_AFTER = timedelta(hours=2)  # two runs of the hourly KPI schedule missed
UNDELIVERED_AFTER = timedelta(hours=1)  # an alert the webhook has refused for an hour of retries

guest_journey_bridge = GuestJourneyBridge()
automation_queue = AutomationQueue()


async def telemetry_check(
    *, session: AsyncSession | None = None, webhook_url: str | None = None, now: datetime | None = None
) -> str:
    """"ok", or what is wrong with the KPI telemetry: this process's last KPI computation
    failed; or, read from the database (`session`, for a process that does not compute them
    itself, the API): the stored snapshots are older than `STALE_AFTER` (the hourly KPI
    schedule is not running, or failing), or alerts have waited over `UNDELIVERED_AFTER`
    for the webhook (`webhook_url`)."""
    here = telemetry_status.check()
    if here != "ok" or session is None:
        return here
    now = now or utcnow()
    latest = (await session.exec(select(func.max(col(KpiSnapshot.computed_at))))).one()
    if latest is not None and _aware(latest) < now - STALE_AFTER:
        return f"KPI snapshots last measured {_aware(latest):%Y-%m-%d %H:%M} UTC: the hourly KPI schedule is not running"
    if webhook_url:
        waiting = (await session.exec(select(func.count()).select_from(KpiAlert).where(
            col(KpiAlert.notified_at).is_(None), col(KpiAlert.created_at) < now - UNDELIVERED_AFTER))).one()
        if waiting:
            return f"{waiting} KPI alert{'s' if waiting != 1 else ''} not taken by the webhook for over an hour"
    return "ok"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
