"""Every process observable (issue 11, item 3), scraped over HTTP:

- a worker serves its metrics at GUEST_JOURNEY_METRICS_ADDRESS, the message
  counters included, and closes the listener when it stops;
- the KPI gauges come from the schedule's stored snapshots, without anyone
  opening `/analytics`.

The API's side (production's metrics address, HTTP metrics) is in tests/api/test_metrics.py.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress
from datetime import timedelta

import httpx
import pytest
from pydantic import ValidationError
from temporalio.service import RPCError

from guest_journey.policy import JourneyPolicy
from guest_journey.settings import Settings
from guest_journey.telemetry import KPI_GAUGES
from services.kpi_tables import KpiSnapshot
from tests.chaos.processes import wait_until
from tests.smtp_server import free_port
from tests.test_kpi_store import RJ, SP, T0, load
from tests.workflows.journeys import booking, end, put, quiet_policy
from worker import run_worker, worker_metrics
from workflows.dashboard_kpis import SCHEDULE_ID, DashboardKpisInput, DashboardKpisWorkflow


def sample(exposition: str, series: str) -> float | None:
    """The value of one series (`name{labels}`, labels as prometheus_client orders them)."""
    for line in exposition.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


async def scrape(address: str, path: str = "/metrics") -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"http://{address}{path}")


def with_metrics_address(settings: Settings) -> Settings:
    return settings.model_copy(update={"metrics_address": f"127.0.0.1:{free_port()}"})


@pytest.mark.parametrize("address", ["9464", "localhost", "127.0.0.1:port", "127.0.0.1:70000", "::1:9464", ":9464"])
def test_a_metrics_address_that_is_not_host_port_is_refused_naming_the_setting(address):
    with pytest.raises(ValidationError) as refused:
        Settings(metrics_address=address)
    assert "metrics_address" in str(refused.value) and address in str(refused.value)


def test_the_metrics_address_cannot_be_the_temporal_sdks():
    with pytest.raises(ValidationError, match="need a port each"):
        Settings(metrics_address="0.0.0.0:9464", temporal_metrics_address="0.0.0.0:9464")
    assert Settings(metrics_address=" [::1]:9464 ").metrics_address == "[::1]:9464"
    assert Settings().metrics_address is None  # development default: the worker serves none


async def test_the_worker_process_serves_its_metrics_with_the_message_counter(dev_env, settings, sessions):
    """`run_worker`, as `python worker.py` runs it, against the dev server (the worker
    creates the KPI schedule, which the time-skipping server does not offer)."""
    worker_settings = with_metrics_address(settings.model_copy(
        update={"temporal_address": dev_env.client.service_client.config.target_host}
    ))
    address = worker_settings.metrics_address
    assert address is not None
    series = 'guest_journey_messages_sent_total{channel="email"}'
    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(worker_settings, stop))
    try:
        async def listening() -> bool:
            if running.done():
                await running
            try:
                return (await scrape(address, "/health/live")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(listening, timeout=30, what="the worker's metrics listener")
        before = sample((await scrape(address)).text, series) or 0.0
        reservation = booking(await dev_env.get_current_time(), arrive_in=timedelta(days=2))
        await put(dev_env.client, worker_settings.task_queue, reservation, quiet_policy())

        async def counted() -> bool:  # the invitation (and an offer) go to the outbox: no SMTP in the tests
            return (sample((await scrape(address)).text, series) or 0.0) >= before + 1

        await wait_until(counted, timeout=30, what="the journey's first e-mail in the worker's metrics")
        exposition = await scrape(address)
        await end(dev_env, reservation.reservation_id)
    finally:
        stop.set()
        await running
        with suppress(RPCError):  # `run_worker` created it; tests/workflows/test_dashboard_kpis.py creates its own
            await dev_env.client.get_schedule_handle(SCHEDULE_ID).delete()
    assert exposition.status_code == 200
    assert exposition.headers["content-type"].startswith("text/plain")
    assert "# TYPE guest_journey_messages_sent_total counter" in exposition.text
    assert "ana@example.com" not in exposition.text and reservation.reservation_id not in exposition.text
    with pytest.raises(httpx.ConnectError):  # closed on shutdown
        await scrape(address)


async def test_kpi_gauges_are_scraped_from_the_schedules_snapshots_without_the_dashboard(
    env, worker, settings, sessions
):
    for gauge in KPI_GAUGES.values():
        gauge.clear()  # the registry is the process's: start from no KPI series
    await load(sessions)  # day T0: hotel SP satisfaction 8.0, NPS 0, upsell conversion 0.5, a staff reply in 12 min
    metrics_settings = with_metrics_address(settings)
    address = metrics_settings.metrics_address
    assert address is not None
    async with worker_metrics(metrics_settings, sessions):
        before = (await scrape(address)).text
        async with worker(policy=JourneyPolicy(hotel_timezone="UTC")):  # the data's days are UTC days
            result = await env.client.execute_workflow(
                DashboardKpisWorkflow.run, DashboardKpisInput(at=T0 + timedelta(days=1, minutes=30)),
                id=f"kpis-{uuid.uuid4()}", task_queue=settings.task_queue,
            )
        after = (await scrape(address)).text
    assert result.snapshots == 3 * (15 + 9)  # SP, RJ and all hotels: days and weeks, open and caught up
    sp = 'hotel="hotel-sp",window="day"'
    assert sample(before, f"guest_journey_kpi_satisfaction_score{{{sp}}}") is None  # no gauge before the run
    assert sample(after, f"guest_journey_kpi_satisfaction_score{{{sp}}}") == pytest.approx(8.0)
    assert sample(after, f"guest_journey_kpi_nps{{{sp}}}") == pytest.approx(0.0)
    assert sample(after, f"guest_journey_kpi_upsell_conversion_ratio{{{sp}}}") == pytest.approx(0.5)
    assert sample(after, f"guest_journey_kpi_response_time_seconds{{{sp}}}") == pytest.approx(720.0)
    # J1, J2 and (measured now, after its arrival) J6 arrived; J1 checked in
    assert sample(after, f"guest_journey_kpi_checkin_adoption_ratio{{{sp}}}") == pytest.approx(1 / 3, abs=1e-3)
    assert sample(after, f"guest_journey_kpi_window_end_timestamp_seconds{{{sp}}}") == (
        (T0 + timedelta(days=1)).timestamp()
    )
    assert sample(after, f'guest_journey_kpi_satisfaction_score{{hotel="{RJ}",window="day"}}') == 0.0
    assert sample(after, 'guest_journey_kpi_message_failure_ratio{hotel="all",window="day"}') is not None
    assert SP in after  # hotel ids are labels; guests never are
    assert "Ana Souza" not in after and "ana@example.com" not in after


async def test_a_dashboard_views_unfinished_window_is_not_published(env, settings, sessions):
    """A snapshot measured before its window closed (the dashboard's current window) is
    not the last closed window's figure: the gauges keep to complete windows."""
    for gauge in KPI_GAUGES.values():
        gauge.clear()
    when = T0 + timedelta(days=400)
    async with sessions() as session:
        session.add(KpiSnapshot(hotel_id="hotel-open", window_kind="day", window_start=when,
                                window_end=when + timedelta(days=1), satisfaction_avg=3.0,
                                computed_at=when + timedelta(hours=5)))
        await session.commit()
    metrics_settings = with_metrics_address(settings)
    assert metrics_settings.metrics_address is not None
    async with worker_metrics(metrics_settings, sessions):
        exposition = (await scrape(metrics_settings.metrics_address)).text
    assert "hotel-open" not in exposition


async def test_the_metrics_listener_answers_only_its_two_routes(settings, sessions):
    metrics_settings = with_metrics_address(settings)
    address = metrics_settings.metrics_address
    assert address is not None
    async with worker_metrics(metrics_settings, sessions):
        async with httpx.AsyncClient(timeout=10) as http:
            posted = await http.post(f"http://{address}/metrics")
            head = await http.head(f"http://{address}/metrics")
            other = await http.get(f"http://{address}/")
    assert posted.status_code == 405 and head.status_code == 200 and other.status_code == 404


async def test_a_taken_metrics_address_stops_the_worker_with_a_clear_error(settings, sessions):
    metrics_settings = with_metrics_address(settings)
    address = metrics_settings.metrics_address
    assert address is not None
    async with worker_metrics(metrics_settings, sessions):
        with pytest.raises(RuntimeError, match=f"GUEST_JOURNEY_METRICS_ADDRESS={address}"):
            async with worker_metrics(metrics_settings, sessions):
                pass
