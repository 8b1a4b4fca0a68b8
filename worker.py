"""The worker process: runs journey workflows and their activities.

`python worker.py` runs one worker against `GUEST_JOURNEY_TEMPORAL_ADDRESS`;
run as many as the load needs, all on the same task queue. With
`GUEST_JOURNEY_METRICS_ADDRESS` set, it serves its Prometheus metrics (and
`/health/live`) there (`guest_journey.metrics_server`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import NoReturn

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner

from activities.journey_record import JourneyRecorder
from activities.messaging import MessagingActivities
from communications.channels.base import ChannelSender
from communications.channels.email import OutboxEmailSender, SmtpEmailSender
from communications.channels.webchat import WebchatSender
from communications.channels.whatsapp import WhatsAppSender
from communications.templates import TemplateCatalogue
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.guest_links import GuestLinks
from guest_journey.logs import configure_logging
from guest_journey.metrics_server import MetricsServer, MetricsServerError
from guest_journey.policy import (
    JourneyPolicy,
    PolicyError,
    load_policy,
    refuse_retired_targets_file,
)
from guest_journey.process_exit import leave
from guest_journey.reservations import Channel
from guest_journey.schema import SchemaNotCurrent, prepare_database
from guest_journey.settings import Settings, get_settings, settings_problems
from guest_journey.telemetry import configure_telemetry
from guest_journey.temporal import connect_temporal
from services.kpi_gauges import publish_kpi_gauges
from services.kpi_schedule import ensure_kpi_schedule
from services.kpi_windows import KpiActivities
from workflows.dashboard_kpis import DashboardKpisWorkflow
from workflows.journey import GuestJourneyWorkflow

logger = logging.getLogger("guest_journey.worker")
# On shutdown, sends in flight finish and are recorded before the worker stops:
# the grace is the longest send of any channel plus the time to record it.
HAND_OVER_RECORD_TIME = timedelta(seconds=15)
DEFAULT_SENDER = "Guest Journey <no-reply@guest-journey.localhost>"


class EmailNotConfigured(RuntimeError):
    """A production worker without an SMTP relay: guests' e-mails would stay on its disk."""


def build_channels(settings: Settings) -> dict[Channel, ChannelSender]:
    """The configured channels. E-mail without SMTP settings goes to a local outbox of
    `.eml` files in development; production refuses that (`EmailNotConfigured`)."""
    if settings.env == "production" and not settings.smtp_configured:
        raise EmailNotConfigured(
            "production sends guests' e-mail through an SMTP relay, never to a local outbox: "
            "set GUEST_JOURNEY_SMTP_HOST (and _SMTP_PORT, _SMTP_USERNAME, _SMTP_PASSWORD as the relay needs)"
        )
    sender = settings.email_from or DEFAULT_SENDER
    email: ChannelSender
    if settings.smtp_configured:
        assert settings.smtp_host is not None
        if settings.smtp_starttls is not None:
            logger.warning(
                "GUEST_JOURNEY_SMTP_STARTTLS is deprecated: read as GUEST_JOURNEY_SMTP_TLS=%s; set that instead",
                settings.resolved_smtp_tls,
            )
        email = SmtpEmailSender(
            host=settings.smtp_host,
            # The deprecated SMTP_STARTTLS=true kept its default port, 587; else the sender's default.
            port=settings.smtp_port or (587 if settings.smtp_starttls else None),
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            tls=settings.resolved_smtp_tls,
            sender=sender,
            timeout=settings.smtp_timeout_seconds,
        )
    else:
        email = OutboxEmailSender(directory=settings.outbox_dir, sender=sender)
    channels: dict[Channel, ChannelSender] = {Channel.email: email, Channel.webchat: WebchatSender()}
    if settings.whatsapp_configured:
        assert settings.whatsapp_phone_number_id and settings.whatsapp_access_token
        channels[Channel.whatsapp] = WhatsAppSender(
            phone_number_id=settings.whatsapp_phone_number_id,
            access_token=settings.whatsapp_access_token.get_secret_value(),
            api_base_url=settings.whatsapp_api_base_url,
            timeout=settings.whatsapp_timeout_seconds,
        )
    return channels


def build_worker(
    client: Client,
    settings: Settings,
    sessions: SessionFactory,
    channels: dict[Channel, ChannelSender] | None = None,
    policy: JourneyPolicy | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker with its activities; `channels` default to the configured ones, `policy`
    (the KPI schedule's time zones and targets) to the policy file's. `interceptors`: none
    in production (`guest-journey demo` gives its simulated clock)."""
    secret_key = settings.resolved_secret_key()
    channels = channels if channels is not None else build_channels(settings)
    messaging = MessagingActivities(
        sessions=sessions,
        templates=TemplateCatalogue.load(),
        channels=channels,
        links=GuestLinks(settings.public_base_url, secret_key),
        secret_key=settings.verification_secret_keys(),  # erased guests' digests under earlier keys too
    )
    recorder = JourneyRecorder(sessions=sessions)
    policy = policy if policy is not None else load_policy(settings.policy_file)
    kpis = KpiActivities(sessions=sessions, policy=policy, webhook_url=settings.kpi_webhook_url)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[GuestJourneyWorkflow, DashboardKpisWorkflow],
        activities=[
            messaging.send_message,
            messaging.record_guest_message_failure,
            recorder.record_journey,
            kpis.record_kpi_windows,
        ],
        graceful_shutdown_timeout=graceful_shutdown(channels),
        workflow_runner=workflow_runner(),
        interceptors=interceptors,
    )


def workflow_runner() -> WorkflowRunner:
    """Workflows run without the SDK's sandbox: in it every cached journey kept its own
    copy of `workflows/journey.py` (about 2.9 times a bare workflow's memory, and a
    fifth of the service's CPU per start). Passing the `workflows` modules through the
    sandbox saved about as much memory, but still builds a sandbox per journey
    (docs/performance.md). Determinism is guarded by the replay tests, which run
    every recorded history of the journey in the sandbox (tests/workflows/test_replay.py)."""
    return UnsandboxedWorkflowRunner()


def graceful_shutdown(channels: dict[Channel, ChannelSender]) -> timedelta:
    """How long a stopping worker lets the sends in flight finish and be recorded."""
    longest = max((sender.longest_send for sender in channels.values()), default=timedelta(0))
    return longest + HAND_OVER_RECORD_TIME


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run one worker until `stop` is set; in-flight activities finish first."""
    channels = build_channels(settings)  # production refuses to start without an SMTP relay
    policy = load_policy(settings.policy_file)
    refuse_retired_targets_file(settings.data_dir)
    if not settings.smtp_configured:
        logger.warning("SMTP is not configured: e-mails go to the local outbox %s", settings.outbox_dir)
    engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)  # production: refuses a schema not at the head
    except BaseException:
        await engine.dispose()
        raise
    keys_engine = create_engine(settings.resolved_database_url)  # the codec's own pool, as in `api.app`
    try:
        async with worker_metrics(settings, session_factory(engine)):
            client = await connect_temporal(settings, sessions=session_factory(keys_engine))
            if await ensure_kpi_schedule(client, settings.task_queue):
                logger.info("created the hourly schedule of the dashboard's KPI snapshots")
            worker = build_worker(client, settings, session_factory(engine), channels, policy)
            logger.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
            async with worker:
                await stop.wait()
    finally:
        await keys_engine.dispose()
        await engine.dispose()


@asynccontextmanager
async def worker_metrics(settings: Settings, sessions: SessionFactory) -> AsyncIterator[MetricsServer | None]:
    """The worker's metrics at `GUEST_JOURNEY_METRICS_ADDRESS` while the block runs (none when
    unset); each scrape first sets the KPI gauges from the stored snapshots."""
    if not settings.metrics_address:
        if settings.env == "production":
            logger.warning("GUEST_JOURNEY_METRICS_ADDRESS is not set: this worker serves no metrics")
        yield None
        return

    async def publish_kpis() -> None:
        async with sessions() as session:
            await publish_kpi_gauges(session=session)

    async with MetricsServer(settings.metrics_address, before_scrape=publish_kpis) as server:
        yield server


def refuse(why: str) -> NoReturn:
    """A worker that cannot start says why in one plain line on stderr, and exits 1."""
    sys.stderr.write(f"worker: {why}\n")
    sys.exit(1)


def main() -> None:
    configure_logging()
    try:
        settings = get_settings()
    except ValidationError as error:
        refuse(f"invalid settings: {settings_problems(error)}")
    configure_logging(settings.log_level)
    telemetry = configure_telemetry("guest-journey-worker", settings=settings)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, stop)

    try:
        asyncio.run(serve())
    except (SchemaNotCurrent, MetricsServerError, EmailNotConfigured, PolicyError) as error:
        refuse(str(error))
    finally:
        telemetry.shutdown()
    leave(0)


if __name__ == "__main__":
    main()
