"""The spans of this test process: telemetry is configured once per process
(OpenTelemetry keeps the first tracer provider), so every test module that
reads spans shares this exporter."""

from __future__ import annotations

from functools import lru_cache

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from guest_journey.settings import Settings
from guest_journey.telemetry import configure_telemetry


@lru_cache(maxsize=1)
def recording_exporter() -> InMemorySpanExporter:
    spans = InMemorySpanExporter()
    configure_telemetry("guest-journey-test", settings=Settings(), span_exporter=spans)
    return spans
