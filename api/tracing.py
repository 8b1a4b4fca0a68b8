"""Request tracing: every HTTP request is a server span, so the Temporal client
calls a handler makes (and the workflow and activities behind them) join its trace.

A caller's `traceparent` header is continued. Span names and attributes use the
route's template (`/reservations/{reservation_id}`), never the path a guest's
link token or a reservation id fills in.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guest_journey.telemetry import tracer

UNMATCHED_ROUTE = "unmatched"


class RequestTracing:
    """ASGI middleware: one server span per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers") or []}
        method = scope["method"]
        with tracer().start_as_current_span(
            f"{method} request",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            # OpenTelemetry's HTTP semantic conventions (stable): request method, status, route, scheme.
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
            record_exception=True,
            set_status_on_exception=True,
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status_code = int(message["status"])
                    span.set_attribute("http.response.status_code", status_code)
                    if status_code >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            finally:
                route = route_of(scope)
                span.set_attribute("http.route", route)
                span.update_name(f"{method} {route}")


def route_of(scope: Scope) -> str:
    """The template of the route that answered (`/reservations/{reservation_id}`), else "unmatched"."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
