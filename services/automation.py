"""Preference sync and satisfaction telemetry (runbook: `automation.py`): the
objects the runbook names.

`guest_journey_bridge.pending()` counts pending snapshots and
`automation_queue.pending()` the Temporal task-queue backlog, for operators;
both objects are bound to the Temporal client and the database at start.

Satisfaction telemetry is `record_dashboard_guest_experience`
(`services.kpi_store`); `telemetry_check()` says whether its last run in
this process went well.

The work itself lives beside this module: the snapshots in sync and async
mode (`services.journey_snapshots`), the `snapshot_pending` table and its
counts (`services.snapshot_pending`), the journeys' figures
(`services.journey_volume`) and the task-queue backlog (`services.task_queue`).
"""

from __future__ import annotations

from temporalio.client import Client

from guest_journey.database import SessionFactory
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


guest_journey_bridge = GuestJourneyBridge()
automation_queue = AutomationQueue()


async def telemetry_check() -> str:
    """"ok" unless the last KPI computation of this process failed; else what failed."""
    return telemetry_status.check()
