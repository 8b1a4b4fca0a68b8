"""`guest-journey status`: the operator's first look (runbook), in one block.

Health of the database and Temporal, the workers polling the task queue, the
backlogs the runbook names (`automation_queue.pending()`,
`guest_journey_bridge.pending()`), the failure rate of the last hour by channel
and the journeys without progress (`api.service_status`, the same block the ops
panel shows). Exits 0 when the database and Temporal answer and a worker polls,
1 otherwise: usable in a cron or a monitoring check.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from guest_journey.database import create_engine, session_factory, utcnow
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal

CONNECT_TIMEOUT_SECONDS = 10.0


def add_parser(commands: Any) -> None:
    status = commands.add_parser(
        "status", help="health, workers, backlogs, failures and stuck journeys in one block",
        description="What an operator checks first: exits 1 when the database or Temporal does not "
        "answer or no worker polls the task queue.",
    )
    status.set_defaults(run_with_args=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    status = asyncio.run(_status(settings))
    sys.stdout.write("\n".join(status.lines()) + "\n")
    return 0 if status.healthy else 1


async def _status(settings: Settings) -> Any:
    from api.service_status import service_status

    engine = create_engine(settings.resolved_database_url)
    try:
        sessions = session_factory(engine)
        client, problem = None, None
        try:
            client = await asyncio.wait_for(connect_temporal(settings), CONNECT_TIMEOUT_SECONDS)
        except (RuntimeError, TimeoutError, OSError) as error:
            problem = f"{settings.temporal_address}: {type(error).__name__}"
        return await service_status(client=client, sessions=sessions, settings=settings, now=utcnow(),
                                    temporal_problem=problem)
    finally:
        await engine.dispose()
