"""The service's clock, and the simulated clock the demo's activities read.

Every moment the service stamps on a row (a message's `created_at`, a read-model
row's `updated_at`, ...) comes from `guest_journey.database.utcnow`, which is the
real clock plus `clock_offset` (zero unless something set it: production never does).

`SimulatedClock` is a worker interceptor for runs on Temporal's time-skipping
test server (`guest-journey demo`), whose clock jumps ahead over timers: for each
activity attempt it sets the offset so that `utcnow()` is the attempt's scheduled
time on the server's clock plus the real time the attempt has taken, so what the
activity stamps is the simulated moment it ran at, as workflow code's
`workflow.now()` is. A local activity has no scheduled time on the server's clock
(the worker schedules it on its own), so the interceptor gives each one the moment
of its workflow (`workflow.now()`) in a header when it is started. The offset lives
in a context variable, so it holds only in that attempt's task (and tasks it starts).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.converter import default as default_converter
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

clock_offset: ContextVar[timedelta] = ContextVar("clock_offset", default=timedelta(0))
WORKFLOW_NOW_HEADER = "guest-journey-workflow-now"


class SimulatedClock(Interceptor):
    """Activities stamp the moment the server's clock says they were scheduled at (module rules)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _SimulatedActivityClock(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _LocalActivitiesGetTheWorkflowsMoment


class _LocalActivitiesGetTheWorkflowsMoment(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowMomentHeader(outbound))


class _WorkflowMomentHeader(WorkflowOutboundInterceptor):
    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        moment = default_converter().payload_converter.to_payloads([workflow.now().isoformat()])[0]
        input.headers = {**input.headers, WORKFLOW_NOW_HEADER: moment}
        return super().start_local_activity(input)


class _SimulatedActivityClock(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        scheduled = info.current_attempt_scheduled_time
        header = input.headers.get(WORKFLOW_NOW_HEADER) if info.is_local else None
        if header is not None:
            [moment] = default_converter().payload_converter.from_payloads([header], [str])
            scheduled = datetime.fromisoformat(moment)
        token = clock_offset.set(scheduled - datetime.now(UTC))
        try:
            return await super().execute_activity(input)
        finally:
            clock_offset.reset(token)
