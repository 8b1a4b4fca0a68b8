"""The Temporal Schedule that records the dashboard's KPI snapshots every hour,
and a measure on demand (the dashboard's "Medir agora")."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDConflictPolicy

from workflows.dashboard_kpis import (
    MEASURE_AT,
    SCHEDULE_ID,
    WORKFLOW_ID,
    DashboardKpisInput,
    DashboardKpisWorkflow,
    KpiWindowsResult,
)

MEASURE_NOW_TIMEOUT = timedelta(seconds=60)


def _schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(), id=WORKFLOW_ID, task_queue=task_queue
        ),
        spec=ScheduleSpec(cron_expressions=[MEASURE_AT]),
    )


async def ensure_kpi_schedule(client: Client, task_queue: str) -> bool:
    """Create the hourly schedule, or bring an existing one (an earlier release's
    daily schedule) to this spec and action; True when it was created now."""
    schedule = _schedule(task_queue)
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        def same_but_current(current: ScheduleUpdateInput) -> ScheduleUpdate:
            current.description.schedule.spec = schedule.spec
            current.description.schedule.action = schedule.action
            return ScheduleUpdate(schedule=current.description.schedule)

        await client.get_schedule_handle(SCHEDULE_ID).update(same_but_current)
        return False
    return True


async def measure_kpis_now(client: Client, task_queue: str) -> KpiWindowsResult:
    """Run the schedule's workflow now and wait for it: the same activity writes the
    snapshots and sends the alerts. A run already under way is joined, not doubled."""
    return await client.execute_workflow(
        DashboardKpisWorkflow.run, DashboardKpisInput(), id=WORKFLOW_ID, task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        execution_timeout=MEASURE_NOW_TIMEOUT,
    )
