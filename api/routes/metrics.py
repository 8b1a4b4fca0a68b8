"""Prometheus metrics of this process (`guest_journey.telemetry`) on the API's own
listener, in development only: in production this router is not mounted (404)
and the API serves its metrics at `GUEST_JOURNEY_METRICS_ADDRESS`
(`api.app.api_metrics`). Public, like the health checks, and free of guest
data (labels are channels, templates, hotels, KPI windows and route templates).

Each answer first sets the KPI gauges from the stored snapshots
(`services.kpi_gauges.publish_kpi_gauges`), as a worker's metrics listener
does, so `guest-journey dev` shows them here. Without a key the answer is
every series, of every hotel. A request that sends a key is answered as that
key may see (`api.access`): an unknown key is 401, and a key limited to some
hotels gets only the series labelled with its hotels (not the counts over
every hotel)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from api.deps import ServicesDep, caller_principal
from api.error_responses import WRONG_KEYS, json_errors_inline
from guest_journey.telemetry import METRICS_CONTENT_TYPE, metrics_text
from services.kpi_gauges import publish_kpi_gauges

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {METRICS_CONTENT_TYPE: {}}},
    **json_errors_inline(401, 429, why={401: "an `Authorization` header that is not one of our API keys "
                                             "(a key narrows the series to its hotels; none is needed)",
                                        429: WRONG_KEYS}),
})
async def read_metrics(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    sends_key = bool(request.headers.get("authorization")) and bool(settings.api_key_access)
    hotels = caller_principal(request, settings).hotels if sends_key else None
    try:
        async with services.sessions() as session:
            await publish_kpi_gauges(session=session)
    except Exception:  # the other series are still worth a scrape
        logger.warning("KPI gauges not refreshed from the stored snapshots", exc_info=True)
    return Response(content=metrics_text(hotels), media_type=METRICS_CONTENT_TYPE)
