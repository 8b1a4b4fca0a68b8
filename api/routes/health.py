"""Health of the service and of what it depends on (runbook: API Health)."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ServicesDep
from guest_journey.automation import telemetry_check

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 3


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]


async def _check_temporal(services: ServicesDep) -> str:
    try:
        await asyncio.wait_for(services.temporal.service_client.check_health(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure is the answer: degraded
        return f"unreachable: {type(error).__name__}"
    return "ok"


async def _check_database(services: ServicesDep) -> str:
    try:
        async with services.sessions() as session:
            await asyncio.wait_for(session.exec(text("SELECT 1")), CHECK_TIMEOUT_SECONDS)  # type: ignore[call-overload]
    except Exception as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"


@router.get("/health/otel", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def health(services: ServicesDep, response: Response) -> HealthOut:
    temporal, database = await asyncio.gather(_check_temporal(services), _check_database(services))
    checks = {"temporal": temporal, "database": database, "telemetry": await telemetry_check()}
    healthy = all(value == "ok" for value in checks.values())
    response.status_code = 200 if healthy else 503
    return HealthOut(status="ok" if healthy else "degraded", checks=checks)
