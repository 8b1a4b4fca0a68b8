"""Health of the service and of what it depends on (runbook: API Health).

- `GET /health/live`: the process answers; nothing else is asked (a container's
  health check: a database or Temporal outage must not restart the API).
- `GET /health/ready`: the database, Temporal, and at least one worker polling
  the task queue (Temporal's DescribeTaskQueue); 503 with what is missing
  (a load balancer's check, a deployment's `depends_on`).
- `GET /health/otel`: the runbook's check, `{status, checks}`: Temporal, the
  database, the KPI telemetry, the workers polling and the OTLP exporter's last
  export; with the pollers and the last export's time beside.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ServicesDep
from api.error_responses import WRONG_KEYS, errors
from guest_journey.telemetry import otlp_export_status
from guest_journey.temporal import Poller, workflow_pollers
from services.automation import telemetry_check

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3
OK = "ok"
# Values of a check that do not make the service degraded: no OTLP endpoint is configured.
HEALTHY = frozenset({OK, "off"})


class LiveOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    missing: list[str]


class PollerOut(BaseModel):
    identity: str
    last_access_time: datetime | None


class WorkersOut(BaseModel):
    task_queue: str
    pollers: list[PollerOut] | None  # None: Temporal did not say


class ExportOut(BaseModel):
    configured: bool
    last_result: Literal["ok", "failed"] | None
    last_export_at: datetime | None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
    workers: WorkersOut | None = None
    otlp_export: ExportOut | None = None


async def _check_temporal(services: ServicesDep) -> str:
    try:
        await asyncio.wait_for(services.temporal.service_client.check_health(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is the answer: degraded
        return f"unreachable: {type(error).__name__}"
    return OK


async def _check_database(services: ServicesDep) -> str:
    try:
        async with services.sessions() as session:
            await asyncio.wait_for(session.exec(text("SELECT 1")), CHECK_TIMEOUT_SECONDS)  # type: ignore[call-overload]
    except Exception as error:
        return f"unreachable: {type(error).__name__}"
    return OK


async def _pollers(services: ServicesDep) -> list[Poller] | str:
    """The workers polling the task queue, or why they could not be listed."""
    try:
        return await asyncio.wait_for(
            workflow_pollers(services.temporal, services.settings.task_queue), CHECK_TIMEOUT_SECONDS
        )
    except Exception as error:
        return f"unknown: {type(error).__name__}"


def _workers_check(services: ServicesDep, pollers: list[Poller] | str) -> str:
    if isinstance(pollers, str):
        return pollers
    if not pollers:
        return f"no worker polling task queue {services.settings.task_queue}"
    return OK


@router.get("/health/live", response_model=LiveOut, responses=errors(429, why={429: WRONG_KEYS}))
async def live() -> LiveOut:
    return LiveOut(status="ok")


@router.get("/health/ready", response_model=ReadyOut,
            responses={503: {"model": ReadyOut}, **errors(429, why={429: WRONG_KEYS})})
async def ready(services: ServicesDep, response: Response) -> ReadyOut:
    database, temporal, pollers = await asyncio.gather(
        _check_database(services), _check_temporal(services), _pollers(services)
    )
    checks = {"database": database, "temporal": temporal, "workers": _workers_check(services, pollers)}
    missing = [name for name, value in checks.items() if value != OK]
    response.status_code = 503 if missing else 200
    return ReadyOut(status="not ready" if missing else "ready", checks=checks, missing=missing)


async def _telemetry(services: ServicesDep) -> str:
    try:
        async with services.sessions() as session:
            return await telemetry_check(session=session, webhook_url=services.settings.kpi_webhook_url)
    except (OSError, SQLAlchemyError):  # the database check reports the database itself
        return await telemetry_check()


@router.get("/health/otel", response_model=HealthOut,
            responses={503: {"model": HealthOut}, **errors(429, why={429: WRONG_KEYS})})
async def health(services: ServicesDep, response: Response) -> HealthOut:
    temporal, database, pollers = await asyncio.gather(
        _check_temporal(services), _check_database(services), _pollers(services)
    )
    checks = {
        "temporal": temporal,
        "database": database,
        "telemetry": await _telemetry(services),
        "workers": _workers_check(services, pollers),
        "otlp_export": otlp_export_status.check(),
    }
    healthy = all(value in HEALTHY for value in checks.values())
    response.status_code = 200 if healthy else 503
    return HealthOut(
        status="ok" if healthy else "degraded",
        checks=checks,
        workers=WorkersOut(
            task_queue=services.settings.task_queue,
            pollers=None if isinstance(pollers, str)
            else [PollerOut(identity=p.identity, last_access_time=p.last_access_time) for p in pollers],
        ),
        otlp_export=ExportOut(
            configured=otlp_export_status.configured,
            last_result=otlp_export_status.last_result,  # type: ignore[arg-type]
            last_export_at=otlp_export_status.last_export_at,
        ),
    )
