"""HTTP server metrics: every request counted by method, route template and status
(`guest_journey_http_requests_total`) and timed (`guest_journey_http_request_duration_seconds`).

Labelled by the route's template (`/reservations/{reservation_id}`, as `api.tracing`
names spans), never by the path: a guest's link token or a reservation id never
becomes a label, and the series stay few.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.tracing import route_of
from guest_journey.telemetry import http_request_answered

SERVER_ERROR = 500


class RequestMetrics:
    """ASGI middleware: counts and times each HTTP request once it is answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = SERVER_ERROR  # an exception before the answer started is a 500

        async def measured_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, measured_send)
        finally:
            http_request_answered(scope["method"], route_of(scope), status, time.perf_counter() - started)
