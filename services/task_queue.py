"""The Temporal task-queue backlog: tasks waiting for a worker on the journey
task queue (`automation_queue.pending()` in the runbook)."""

from __future__ import annotations

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from guest_journey.settings import Settings


class AutomationUnavailable(RuntimeError):
    """The automation cannot answer: not bound at start, or the server cannot tell."""


async def task_queue_backlog(*, client: Client, settings: Settings) -> int:
    """Tasks waiting on the journey task queue (workflow and activity tasks).

    The server's statistics (`report_stats`) when it keeps them, else the
    backlog hint of the queue's status. Raises `AutomationUnavailable` when the
    server does not describe task queues (the time-skipping test server).
    """
    total = 0
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        request = DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=kind,
            report_stats=True,
            include_task_queue_status=True,
        )
        try:
            answer = await client.workflow_service.describe_task_queue(request)
        except RPCError as error:
            if error.status == RPCStatusCode.UNIMPLEMENTED:
                raise AutomationUnavailable("this Temporal server does not describe task queues") from error
            raise
        if answer.HasField("stats"):
            total += answer.stats.approximate_backlog_count
        else:
            total += answer.task_queue_status.backlog_count_hint
    return total
