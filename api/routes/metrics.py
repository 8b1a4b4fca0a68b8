"""Prometheus metrics of this process (`guest_journey.telemetry`): public, like
the health check, and free of guest data (labels are channels, templates,
hotels and KPI windows).

Without a key the answer is every series, of every hotel: keep `/metrics` for
the scraper, on the internal network (docs/deploy.md, "Security model"). A
request that sends a key is answered as that key may see (`api.access`): an
unknown key is 401, and a key limited to some hotels gets only the series
labelled with its hotels (not the counts over every hotel)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import SettingsDep, caller_principal
from guest_journey.telemetry import METRICS_CONTENT_TYPE, metrics_text

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {METRICS_CONTENT_TYPE: {}}}})
async def read_metrics(request: Request, settings: SettingsDep) -> Response:
    sends_key = bool(request.headers.get("authorization")) and bool(settings.api_key_access)
    hotels = caller_principal(request, settings).hotels if sends_key else None
    return Response(content=metrics_text(hotels), media_type=METRICS_CONTENT_TYPE)
