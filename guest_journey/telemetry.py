"""Traces and metrics of every process.

Traces: one `TracerProvider` per process, set by `configure_telemetry` at start
(`guest-journey dev|api|worker`, `python worker.py`). Spans go to an OTLP
collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set;
the SDK reads the other standard `OTEL_*` variables itself (headers, protocol,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). Temporal carries the trace
from the API's client call into the workflow and its activities through
`TracingInterceptor` (see `guest_journey.temporal.connect_temporal`). Every
exporter gets the spans through `PrivateSpanExporter`: e-mail addresses and
phone numbers in names, attributes, events (an exception's message) and
statuses are masked (`guest_journey.privacy`).

Metrics: the Prometheus instruments below (`guest_journey_*`, base units), as
text from `metrics_text()`. A worker serves them at `GUEST_JOURNEY_METRICS_ADDRESS`
(`guest_journey.metrics_server`); the API there in production, on its own
`GET /metrics` in development (to a key limited to some hotels, only their
series). Labels are channels, templates, hotels, KPI windows and route
templates: never a guest's name, address or reservation. The OTLP exporter's
last result is kept in `otlp_export_status` (`/health/otel`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from guest_journey.privacy import mask, mask_text
from guest_journey.settings import Settings, get_settings
from guest_journey.version import package_version

logger = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

# Every series is named `guest_journey_*`, in base units (seconds, ratios 0-1);
# prometheus_client adds `_total` to a counter's name.
MESSAGES_SENT = Counter(
    "guest_journey_messages_sent", "Messages handed over to their channel.", ["channel"]
)
MESSAGES_FAILED = Counter(
    "guest_journey_messages_failed",
    "Messages that failed on their channel for good (no retry can fix them).",
    ["channel"],
)
MESSAGES_IN_DOUBT = Counter(
    "guest_journey_messages_in_doubt",
    "Messages whose provider may or may not have taken them (its answer was lost): "
    "listed for staff, never sent again without them.",
    ["channel"],
)
MESSAGE_STEPS_FAILED = Counter(
    "guest_journey_message_steps_failed",
    "Journey steps whose message failed on every channel tried.",
    ["template"],
)
GUEST_REPLY_TIME_SECONDS = Histogram(  # not the response time: that is staff's (communications.response_times)
    "guest_journey_guest_reply_time_seconds",
    "The guest's reply time: seconds from one of our messages to the guest's reply to it.",
    ["channel"],
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800),
)

REQUESTS_RATE_LIMITED = Counter(
    "guest_journey_requests_rate_limited",
    "Requests refused with 429 because their caller was over a rate limit.",
    ["limit"],
)
HTTP_REQUESTS = Counter(
    "guest_journey_http_requests",
    "HTTP requests answered by the API, by route template (never the path) and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "guest_journey_http_request_duration_seconds",
    "Seconds from an HTTP request's arrival to the end of its answer, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# KPI gauges: the latest closed window's stored snapshot per hotel and window kind
# (`services.kpi_gauges.publish_kpi_gauges`, at scrape time); keys are the
# values `kpis_measured` takes.
KPI_GAUGES: dict[str, Gauge] = {
    name: Gauge(f"guest_journey_kpi_{metric}", description, ["hotel", "window"])
    for name, (metric, description) in {
        "satisfaction": ("satisfaction_score", "Average satisfaction score (0-10) of the last closed window."),
        "nps": ("nps", "Net promoter score (-100 to 100) of the last closed window."),
        "upsell_conversion": ("upsell_conversion_ratio", "Share (0-1) of upsell offers accepted in the last closed window."),
        "avg_response_time_seconds": (
            "response_time_seconds", "Average seconds to a staff reply to a guest in the last closed window."
        ),
        "failure_rate": ("message_failure_ratio", "Share (0-1) of messages that failed in the last closed window."),
        "checkin_adoption": (
            "checkin_adoption_ratio", "Share (0-1) of arrived journeys whose digital check-in was completed."
        ),
        "window_end": (
            "window_end_timestamp_seconds", "End (Unix time) of the window the other KPI gauges measure."
        ),
    }.items()
}
ALL_HOTELS = "all"
KPI_ALERTS = Counter(
    "guest_journey_kpi_alerts", "KPI alerts raised (falling trend or a target missed).", ["kpi", "kind", "hotel"]
)


class ExportStatus:
    """The last export of the OTLP span exporter: its result and when (`/health/otel`)."""

    def __init__(self) -> None:
        self.configured = False
        self.last_result: str | None = None
        self.last_export_at: datetime | None = None

    def exported(self, result: SpanExportResult) -> None:
        self.last_result = "ok" if result is SpanExportResult.SUCCESS else "failed"
        self.last_export_at = datetime.now(UTC)

    def check(self) -> str:
        """"ok" (exported, or nothing to export yet), "off" (no OTLP endpoint), or the failure."""
        if not self.configured:
            return "off"
        if self.last_result == "failed" and self.last_export_at is not None:
            return f"last export failed at {self.last_export_at.isoformat(timespec='seconds')}"
        return "ok"


otlp_export_status = ExportStatus()


class RememberingSpanExporter(SpanExporter):
    """Hands every batch to `exporter` and records how its export went in `status`."""

    def __init__(self, exporter: SpanExporter, status: ExportStatus) -> None:
        self.exporter = exporter
        self.status = status

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.exporter.export(spans)
        except Exception:
            self.status.exported(SpanExportResult.FAILURE)
            raise
        self.status.exported(result)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider

    def shutdown(self) -> None:
        """Flush the spans not exported yet; call once, when the process stops."""
        self.tracer_provider.shutdown()


class PrivateSpanExporter(SpanExporter):
    """Hands `exporter` each span with guests' addresses masked."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([_masked(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def _masked(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.description:
        status = Status(status.status_code, mask_text(status.description))
    return ReadableSpan(
        name=mask_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_masked_attributes(span.attributes),
        events=[Event(mask_text(event.name), _masked_attributes(event.attributes), event.timestamp)
                for event in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _masked_attributes(attributes: Attributes) -> Attributes:
    return None if attributes is None else {key: mask(value) for key, value in attributes.items()}


def process_resource(default_service_name: str) -> Resource:
    """The process as traces name it: the name `OTEL_SERVICE_NAME` (or `service.name` in
    `OTEL_RESOURCE_ATTRIBUTES`) gives, else `default_service_name`; `service.version` is
    this release's."""
    named = os.environ.get("OTEL_SERVICE_NAME", "").strip() or any(
        pair.split("=", 1)[0].strip() == SERVICE_NAME for pair in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    )
    attributes = {SERVICE_VERSION: package_version()}
    if not named:
        attributes[SERVICE_NAME] = default_service_name
    return Resource.create(attributes)


def configure_telemetry(
    service_name: str,
    *,
    settings: Settings | None = None,
    span_exporter: SpanExporter | None = None,
) -> Telemetry:
    """Set this process's tracer provider (once per process: OpenTelemetry keeps
    the first one). `span_exporter` receives every span as it ends (tests)."""
    settings = settings or get_settings()
    provider = TracerProvider(resource=process_resource(service_name))
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(PrivateSpanExporter(span_exporter)))
    if settings.otlp_traces_configured:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp_export_status.configured = True
        provider.add_span_processor(BatchSpanProcessor(
            RememberingSpanExporter(PrivateSpanExporter(OTLPSpanExporter()), otlp_export_status)
        ))
        logger.info("traces exported over OTLP", extra={"service": service_name})
    trace.set_tracer_provider(provider)
    if settings.otlp_traces_configured:
        trace_client_calls()
    return Telemetry(tracer_provider=provider)


def trace_client_calls() -> None:
    """Spans for this process's outgoing calls, when its spans go somewhere: HTTP through
    httpx (the WhatsApp Cloud API, the KPI webhook) and the database through SQLAlchemy
    (statements with their placeholders, never the values). Engines made before this
    call are not traced: processes configure telemetry first."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), SQLAlchemyInstrumentor()):
        if not instrumentor.is_instrumented_by_opentelemetry:
            # The SQLAlchemy instrumentor declares support up to 2.0 and we run 2.1, whose
            # engine events (all it uses) are unchanged: tests/test_telemetry.py checks the spans.
            instrumentor.instrument(skip_dep_check=True)


@lru_cache
def temporal_runtime(metrics_address: str) -> Runtime:
    """One Temporal runtime per process that serves the SDK's metrics (workflow task
    and activity latencies, polls, cache) at `metrics_address` for Prometheus."""
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_address)))


def tracer() -> trace.Tracer:
    """The service's tracer (it follows the provider set by `configure_telemetry`)."""
    return trace.get_tracer("guest_journey")


def metrics_text(hotels: Collection[str] | None = None) -> bytes:
    """Every series; with `hotels` (a caller limited to those hotels), only the series
    labelled with one of them: series of other hotels, and those of no hotel (counts
    over every hotel), are left out."""
    if hotels is None:
        return generate_latest(REGISTRY)
    return generate_latest(_HotelSeries(REGISTRY, frozenset(hotels)))


@dataclass(frozen=True)
class _HotelSeries:
    """A registry's collector that keeps only the samples labelled `hotel` with one of `hotels`."""

    registry: CollectorRegistry
    hotels: frozenset[str]

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            samples = [sample for sample in family.samples if sample.labels.get("hotel") in self.hotels]
            if samples:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = samples
                yield kept


def message_sent(channel: str) -> None:
    MESSAGES_SENT.labels(channel=channel).inc()


def message_failed(channel: str) -> None:
    MESSAGES_FAILED.labels(channel=channel).inc()


def message_in_doubt(channel: str) -> None:
    MESSAGES_IN_DOUBT.labels(channel=channel).inc()


def message_step_failed(template: str) -> None:
    MESSAGE_STEPS_FAILED.labels(template=template).inc()


def guest_replied(channel: str, reply_time_minutes: float) -> None:
    GUEST_REPLY_TIME_SECONDS.labels(channel=channel).observe(reply_time_minutes * 60)


def http_request_answered(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(seconds)


def kpi_alert_raised(kpi: str, kind: str, hotel_id: str | None) -> None:
    KPI_ALERTS.labels(kpi=kpi, kind=kind, hotel=hotel_id or ALL_HOTELS).inc()


def kpis_measured(hotel_id: str | None, window: str, values: dict[str, float | None]) -> None:
    """Set the KPI gauges of one hotel (or all hotels) and window kind; a value that is
    None (nothing measured: no feedback, no message) removes its series."""
    hotel = hotel_id or ALL_HOTELS
    for name, value in values.items():
        gauge = KPI_GAUGES.get(name)
        if gauge is None:
            continue
        if value is not None:
            gauge.labels(hotel=hotel, window=window).set(value)
        else:
            with suppress(KeyError):
                gauge.remove(hotel, window)
