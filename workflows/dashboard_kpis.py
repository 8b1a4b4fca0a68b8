"""DashboardKpisWorkflow: started daily by a Temporal Schedule, it records the
KPI snapshots of the windows that closed at the last UTC midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.kpi_windows import KpiActivities, KpiWindowsInput, KpiWindowsResult

SCHEDULE_ID = "guest-journey-dashboard-kpis"
WORKFLOW_ID = "dashboard-kpis"
DAILY_AT = "15 0 * * *"  # 00:15 UTC: yesterday has closed everywhere the data is UTC


class DashboardKpisInput(BaseModel):
    """`window_end` defaults to the last UTC midnight before the run."""

    window_end: datetime | None = None


@workflow.defn
class DashboardKpisWorkflow:
    @workflow.run
    async def run(self, input: DashboardKpisInput) -> KpiWindowsResult:
        now = workflow.now().astimezone(UTC)
        window_end = input.window_end or now.replace(hour=0, minute=0, second=0, microsecond=0)
        return await workflow.execute_activity_method(
            KpiActivities.record_kpi_windows,
            KpiWindowsInput(window_end=window_end),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=5),
        )
