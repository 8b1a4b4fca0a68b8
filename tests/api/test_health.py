"""Health over real HTTP (issue 11, item 4): `/health/live` asks nothing,
`/health/ready` needs the database, Temporal and a worker polling the task queue,
`/health/otel` keeps the runbook's shape and adds the pollers and the OTLP export.

Readiness asks Temporal's DescribeTaskQueue, which the time-skipping test server
does not implement: those tests run against the real dev server (`dev_env`)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from api.app import create_app
from commands.cli import api_server_config
from guest_journey.database import create_engine, session_factory
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from guest_journey.telemetry import ExportStatus, RememberingSpanExporter, otlp_export_status
from tests.chaos.processes import wait_until
from tests.smtp_server import free_port
from worker import build_worker


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The app over HTTP on 127.0.0.1 as the CLI configures it, with a client for it."""
    port = free_port()
    settings = settings.model_copy(update={"api_host": "127.0.0.1", "api_port": port})
    app = create_app(settings)
    config = api_server_config(settings, app)
    config.log_level = "warning"
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(15):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
                if serving.done():
                    await serving
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, app
    finally:
        server.should_exit = True
        await serving


async def test_ready_is_503_naming_the_workers_until_one_polls_then_200(dev_env, settings, sessions, email):
    on_dev_server = settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    )
    async with served(on_dev_server) as (web, _):
        alone = await web.get("/health/ready")
        otel_alone = await web.get("/health/otel")
        async with build_worker(dev_env.client, on_dev_server, sessions, {Channel.email: email}):

            async def ready() -> bool:
                return (await web.get("/health/ready")).status_code == 200

            await wait_until(ready, timeout=30, what="/health/ready with a worker polling")
            with_worker = await web.get("/health/ready")
            otel = await web.get("/health/otel")
        live = await web.get("/health/live")

    assert alone.status_code == 503
    assert alone.json()["status"] == "not ready" and alone.json()["missing"] == ["workers"]
    assert alone.json()["checks"]["workers"] == f"no worker polling task queue {on_dev_server.task_queue}"
    assert alone.json()["checks"]["database"] == alone.json()["checks"]["temporal"] == "ok"
    assert otel_alone.status_code == 503 and otel_alone.json()["status"] == "degraded"

    assert with_worker.json() == {
        "status": "ready", "checks": {"database": "ok", "temporal": "ok", "workers": "ok"}, "missing": [],
    }
    assert otel.status_code == 200
    body = otel.json()
    assert body["status"] == "ok"
    assert body["checks"] == {
        "temporal": "ok", "database": "ok", "telemetry": "ok", "workers": "ok",
        "otlp_export": "off",  # no OTEL_EXPORTER_OTLP_ENDPOINT in the tests
    }
    assert body["workers"]["task_queue"] == on_dev_server.task_queue and body["workers"]["pollers"]
    assert all("@" in poller["identity"] for poller in body["workers"]["pollers"])
    assert body["otlp_export"] == {"configured": False, "last_result": None, "last_export_at": None}
    assert live.status_code == 200 and live.json() == {"status": "ok"}


async def test_live_answers_while_the_database_is_unreachable(api_settings, tmp_path):
    gone = tmp_path / "gone"
    nowhere = create_engine(f"sqlite+aiosqlite:///{gone / 'app.sqlite'}")
    shutil.rmtree(gone)
    gone.write_text("a file where the database's directory was: SQLite cannot open it")
    async with served(api_settings) as (web, app):
        app.state.services = dataclasses.replace(app.state.services, sessions=session_factory(nowhere))
        live = await web.get("/health/live")
        ready = await web.get("/health/ready")
        otel = await web.get("/health/otel")
    await nowhere.dispose()
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 503 and "database" in ready.json()["missing"]
    assert ready.json()["checks"]["database"].startswith("unreachable: ")
    assert otel.status_code == 503 and otel.json()["checks"]["database"] != "ok"


async def test_live_needs_no_temporal_either(api_without_temporal):
    live = await api_without_temporal.get("/health/live")
    ready = await api_without_temporal.get("/health/ready")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert {"temporal", "workers"} <= set(ready.json()["missing"])


class _Collector(SpanExporter):
    """Stands for an OTLP collector that answers as told."""

    def __init__(self, result: SpanExportResult) -> None:
        self.result = result

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.result


@pytest.fixture
def otlp_status() -> Iterator[ExportStatus]:
    """The process's OTLP export status, configured for the test and restored after it."""
    saved = vars(otlp_export_status).copy()
    otlp_export_status.configured = True
    yield otlp_export_status
    vars(otlp_export_status).update(saved)


async def test_otel_reports_the_otlp_exporters_last_export(api, otlp_status):
    failing = RememberingSpanExporter(_Collector(SpanExportResult.FAILURE), otlp_status)
    assert failing.export([]) is SpanExportResult.FAILURE
    failed = (await api.get("/health/otel")).json()
    RememberingSpanExporter(_Collector(SpanExportResult.SUCCESS), otlp_status).export([])
    recovered = (await api.get("/health/otel")).json()

    assert failed["status"] == "degraded"
    assert failed["checks"]["otlp_export"].startswith("last export failed at ")
    assert failed["otlp_export"]["configured"] is True and failed["otlp_export"]["last_result"] == "failed"
    assert recovered["checks"]["otlp_export"] == "ok"
    assert recovered["otlp_export"]["last_result"] == "ok" and recovered["otlp_export"]["last_export_at"]
