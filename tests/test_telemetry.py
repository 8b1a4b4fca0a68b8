"""Telemetry: one trace from an API request through the Temporal client into the
workflow and its activity; metrics on `/metrics`; trace ids in the JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from guest_journey.database import SessionFactory
from guest_journey.logs import JsonFormatter
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.recording_sender import RecordingSender
from tests.smtp_server import free_port
from tests.spans import recording_exporter
from tests.workflows.journeys import booking, end, now, put, quiet_policy
from worker import build_worker
from workflows.journey import GuestJourneyWorkflow

HISTORIES = sorted((Path(__file__).parent / "workflows" / "histories").glob("*.json"))


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    """The process's tracer provider, set once (OpenTelemetry keeps the first one)."""
    return recording_exporter()


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    exporter.clear()
    yield exporter
    exporter.clear()


@pytest.fixture
def api_settings(env: WorkflowEnvironment, settings: Settings, tmp_path: Path) -> Settings:
    """The app's settings as in `tests/api/conftest.py`: the test server, no quiet hours."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("quiet_hours: null\n")
    target = env.client.service_client.config.target_host
    return settings.model_copy(update={"temporal_address": target, "policy_file": policy})


@pytest.fixture
async def traced_api(spans: InMemorySpanExporter, api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(api_settings):
        yield client


@pytest.fixture
async def traced_worker(
    spans: InMemorySpanExporter, api_settings: Settings, sessions: SessionFactory, email: RecordingSender
) -> AsyncIterator[Worker]:
    """A worker built the way `worker.py` builds it: from `connect_temporal`'s client."""
    client = await connect_temporal(api_settings)
    async with build_worker(client, api_settings, sessions, {Channel.email: email}) as running:
        yield running


def _named(spans: tuple[ReadableSpan, ...], prefix: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name.startswith(prefix)]


async def test_one_trace_spans_api_request_workflow_and_activity(env, spans, traced_worker, traced_api, email):
    arrival = await now(env) + timedelta(days=2)
    answer = await traced_api.put("/reservations/RT1", json=reservation_body(arrival))
    assert answer.status_code == 201, answer.text
    await email.wait_for(1)
    await end(env, "RT1")

    finished = tuple(spans.get_finished_spans())
    [request] = _named(finished, "PUT /reservations/{reservation_id}")
    assert request.kind is trace.SpanKind.SERVER
    assert request.attributes is not None
    assert request.attributes["http.request.method"] == "PUT"
    assert request.attributes["http.route"] == "/reservations/{reservation_id}"
    assert request.attributes["http.response.status_code"] == 201
    trace_id = request.context.trace_id
    in_trace = tuple(span for span in finished if span.context.trace_id == trace_id)
    [client_call] = _named(in_trace, "StartUpdateWithStartWorkflow:GuestJourneyWorkflow")
    assert client_call.parent is not None and client_call.parent.span_id == request.context.span_id
    assert _named(in_trace, "RunWorkflow:GuestJourneyWorkflow")
    assert _named(in_trace, "StartActivity:send_message")
    assert _named(in_trace, "RunActivity:send_message")


async def test_metrics_count_the_message_sent_by_channel(env, spans, traced_worker, traced_api, email):
    def sent_by_email(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('guest_journey_messages_sent_total{channel="email"}'):
                return float(line.split()[-1])
        return 0.0

    before = sent_by_email((await traced_api.get("/metrics")).text)
    arrival = await now(env) + timedelta(days=2)
    assert (await traced_api.put("/reservations/RT2", json=reservation_body(arrival))).status_code == 201
    await email.wait_for(1)
    await end(env, "RT2")

    metrics = await traced_api.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert sent_by_email(metrics.text) == before + 1
    assert "ana@example.com" not in metrics.text and "Ana Souza" not in metrics.text


def test_json_log_lines_carry_the_current_trace_and_span(exporter):
    record = logging.LogRecord("guest_journey.test", logging.INFO, __file__, 1, "sent", None, None)
    record.reservation_id = "R1"
    with trace.get_tracer("tests").start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record))
    context = span.get_span_context()
    assert line["reservation_id"] == "R1"
    assert line["trace_id"] == trace.format_trace_id(context.trace_id)
    assert line["span_id"] == trace.format_span_id(context.span_id)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))


@pytest.mark.parametrize("path", HISTORIES, ids=lambda path: path.stem)
async def test_recorded_history_replays_with_tracing(exporter, path: Path) -> None:
    replayer = Replayer(
        workflows=[GuestJourneyWorkflow],
        data_converter=pydantic_data_converter,
        interceptors=[TracingInterceptor()],
    )
    await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


async def test_temporal_sdk_metrics_are_served_for_prometheus(dev_env, settings, sessions, email):
    metrics_address = f"127.0.0.1:{free_port()}"
    sdk_settings = settings.model_copy(update={
        "temporal_address": dev_env.client.service_client.config.target_host,
        "temporal_metrics_address": metrics_address,
    })
    client = await connect_temporal(sdk_settings)
    reservation = booking(await dev_env.get_current_time(), arrive_in=timedelta(days=2))
    async with build_worker(client, sdk_settings, sessions, {Channel.email: email}):
        await put(client, sdk_settings.task_queue, reservation, quiet_policy())
        await email.wait_for(1)
        await end(dev_env, reservation.reservation_id)
        async with httpx.AsyncClient() as http:
            exposition = (await http.get(f"http://{metrics_address}/metrics")).text
    assert "temporal_workflow_completed" in exposition
    assert "temporal_workflow_task_execution_latency_bucket" in exposition
    assert "temporal_activity_execution_latency_bucket" in exposition


async def test_outgoing_http_and_database_calls_are_spans_of_the_trace(tmp_path):
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from sqlalchemy import text

    from guest_journey.database import create_engine
    from guest_journey.telemetry import trace_client_calls, tracer

    spans = recording_exporter()
    spans.clear()
    trace_client_calls()  # what a process exporting its traces over OTLP does at start
    try:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'traced.sqlite'}")

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        with tracer().start_as_current_span("send a message") as parent:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            async with httpx.AsyncClient() as http:
                await http.post(f"http://127.0.0.1:{port}/v21.0/123/messages", content=b"{}")
        server.close()
        await engine.dispose()
    finally:
        HTTPXClientInstrumentor().uninstrument()
        SQLAlchemyInstrumentor().uninstrument()

    children = [span for span in spans.get_finished_spans()
                if span.parent is not None and span.parent.span_id == parent.get_span_context().span_id]
    kinds = {span.kind for span in children}
    assert trace.SpanKind.CLIENT in kinds
    assert any(span.name == "POST" for span in children), [span.name for span in children]
    assert any("SELECT" in span.name for span in children), [span.name for span in children]
