"""DashboardKpisWorkflow: started daily by a Temporal Schedule, it records the
KPI snapshots of the windows that closed at the last UTC midnight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import AwareDatetime, BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

SCHEDULE_ID = "guest-journey-dashboard-kpis"
WORKFLOW_ID = "dashboard-kpis"
DAILY_AT = "15 0 * * *"  # 00:15 UTC: yesterday has closed everywhere the data is UTC


RECORD_KPI_WINDOWS = "record_kpi_windows"
"""The activity's name: its code is the KPI service's (`services.kpi_windows`);
the workflow knows only its name and its input and result, defined here."""


class KpiWindowsInput(BaseModel):
    """The windows that end at `window_end` (a UTC midnight): the day, and the week on Mondays."""

    window_end: AwareDatetime


class KpiWindowsResult(BaseModel):
    snapshots: int


class DashboardKpisInput(BaseModel):
    """`window_end` defaults to the last UTC midnight before the run."""

    window_end: datetime | None = None


@workflow.defn
class DashboardKpisWorkflow:
    @workflow.run
    async def run(self, input: DashboardKpisInput) -> KpiWindowsResult:
        now = workflow.now().astimezone(UTC)
        window_end = input.window_end or now.replace(hour=0, minute=0, second=0, microsecond=0)
        return await workflow.execute_activity(
            RECORD_KPI_WINDOWS,
            KpiWindowsInput(window_end=window_end),
            result_type=KpiWindowsResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=5),
        )
