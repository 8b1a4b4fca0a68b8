"""The Temporal Schedule that records the dashboard's KPI snapshots every day."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
)

from workflows.dashboard_kpis import (
    DAILY_AT,
    SCHEDULE_ID,
    WORKFLOW_ID,
    DashboardKpisInput,
    DashboardKpisWorkflow,
)


async def ensure_kpi_schedule(client: Client, task_queue: str) -> bool:
    """Create the daily schedule unless it exists; True when it was created now."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            DashboardKpisWorkflow.run, DashboardKpisInput(), id=WORKFLOW_ID, task_queue=task_queue
        ),
        spec=ScheduleSpec(cron_expressions=[DAILY_AT]),
    )
    try:
        await client.create_schedule(SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        return False
    return True
