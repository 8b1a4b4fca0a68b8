"""Prometheus metrics of this process (`guest_journey.telemetry`): public, like
the health check, and free of guest data (labels are channels, templates,
hotels and KPI windows)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from guest_journey.telemetry import METRICS_CONTENT_TYPE, metrics_text

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}})
async def read_metrics() -> Response:
    return Response(content=metrics_text(), media_type=METRICS_CONTENT_TYPE)
