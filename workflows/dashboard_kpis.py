"""DashboardKpisWorkflow: started every hour by a Temporal Schedule, it records
the KPI snapshots due then, in each hotel's local days (`services.kpi_windows`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

SCHEDULE_ID = "guest-journey-dashboard-kpis"
WORKFLOW_ID = "dashboard-kpis"
MEASURE_AT = "15 * * * *"  # every hour at :15; a hotel's local midnight passes in some hour of the day

RECORD_KPI_WINDOWS = "record_kpi_windows"
"""The activity's name: its code is the KPI service's (`services.kpi_windows`);
the workflow knows only its name and its input and result, defined here."""


class KpiWindowsInput(BaseModel):
    """The moment the windows are measured as of (`at`). A run started before
    windows followed hotels' local days gave `window_end`, a UTC midnight."""

    at: AwareDatetime | None = None
    window_end: AwareDatetime | None = None

    @property
    def moment(self) -> datetime:
        moment = self.at or self.window_end
        if moment is None:
            raise ValueError("KpiWindowsInput needs `at`")
        return moment


class KpiWindowsResult(BaseModel):
    snapshots: int


class DashboardKpisInput(BaseModel):
    """`at` defaults to the run's start (the schedule's hour)."""

    at: datetime | None = None


@workflow.defn
class DashboardKpisWorkflow:
    @workflow.run
    async def run(self, input: DashboardKpisInput) -> KpiWindowsResult:
        # Called by name, the activity's result is typed `Any` in temporalio;
        # `result_type` makes it a KpiWindowsResult, which the annotation states.
        result: KpiWindowsResult = await workflow.execute_activity(
            RECORD_KPI_WINDOWS,
            KpiWindowsInput(at=input.at or workflow.now()),
            result_type=KpiWindowsResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=5),
        )
        return result
