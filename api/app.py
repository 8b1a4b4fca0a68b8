"""The FastAPI application: routers assembled in one place, clients built once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

from fastapi import FastAPI

from api.cors import CodecCors
from api.deps import Services
from api.errors import install_error_handlers
from api.hosts import AllowedHosts
from api.limits import BodySizeLimit
from api.pages import mount_static
from api.rate_limits import RateLimiter, RateLimits
from api.request_metrics import RequestMetrics
from api.routes import (
    codec,
    communications,
    guest_experience,
    guest_pages,
    health,
    inbound,
    inbox,
    journey_ops,
    metrics,
    reservations,
    reservations_batch,
    staff_analytics,
    staff_login,
    staff_panel,
    staff_policy,
    unsubscribe,
    webhooks,
)
from api.security_headers import SecurityHeaders
from api.tracing import RequestTracing
from communications.templates import TemplateCatalogue
from guest_journey.database import create_engine, session_factory
from guest_journey.metrics_server import MetricsServer
from guest_journey.policy import load_policy, refuse_retired_targets_file
from guest_journey.schema import prepare_database
from guest_journey.secret_keys import MIN_SECRET_BITS
from guest_journey.settings import Settings, get_settings
from guest_journey.temporal import connect_temporal
from guest_journey.version import package_version
from services.automation import automation_queue, guest_journey_bridge

logger = logging.getLogger("guest_journey.api")


@asynccontextmanager
async def api_metrics(settings: Settings) -> AsyncIterator[None]:
    """In production, the API's metrics at `GUEST_JOURNEY_METRICS_ADDRESS` (off the public
    listener, whose `/metrics` is 404) while the app runs. The KPI gauges are the
    workers' (`worker.worker_metrics`): the API serves its own series."""
    if settings.env != "production":
        yield
        return
    if not settings.metrics_address:
        logger.warning("GUEST_JOURNEY_METRICS_ADDRESS is not set: this API serves no metrics")
        yield
        return
    async with MetricsServer(settings.metrics_address):
        yield


def create_app(
    settings: Settings | None = None, *, rate_limiter: RateLimiter | None = None, serve_metrics: bool = True
) -> FastAPI:
    """The app; `rate_limiter` replaces the one built from the settings (tests give it a clock).
    `serve_metrics=False` leaves the metrics address to a worker in the same process
    (`guest-journey dev`), which serves the same registry there."""
    settings = settings or get_settings()
    policy = load_policy(settings.policy_file)
    refuse_retired_targets_file(settings.data_dir)
    templates = TemplateCatalogue.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.api_key_roles:
            logger.warning("GUEST_JOURNEY_API_KEYS is not set: only loopback callers are allowed, "
                           "and only under the Host localhost, 127.0.0.1, [::1] or the public base URL's")
        for weak in settings.weak_secrets():  # production refuses these at start (`Settings`)
            logger.warning("%s is shorter than %d bits; production would refuse it", weak, MIN_SECRET_BITS)
        engine = create_engine(settings.resolved_database_url)
        try:
            await prepare_database(engine, settings)  # production: refuses a schema not at the head
        except BaseException:
            await engine.dispose()
            raise
        sessions = session_factory(engine)
        # The codec's keys come through a pool of their own: a handler that holds a connection
        # while it calls Temporal must never wait for one the codec needs (`guest_journey.journey_keys`).
        keys_engine = create_engine(settings.resolved_database_url)
        client = await connect_temporal(settings, sessions=session_factory(keys_engine), lazy=True)
        # The runbook's `guest_journey_bridge.pending()` and `automation_queue.pending()`.
        guest_journey_bridge.bind(client=client, sessions=sessions)
        automation_queue.bind(client=client, settings=settings)
        app.state.services = Services(
            settings=settings,
            temporal=client,
            sessions=sessions,
            policy=policy,
            templates=templates,
        )
        try:
            async with api_metrics(settings) if serve_metrics else nullcontext():
                yield
        finally:
            await keys_engine.dispose()
            await engine.dispose()

    app = FastAPI(
        title="Guest Journey",
        version=package_version(),
        description="Each hotel reservation's digital guest journey as one durable Temporal workflow.",
        lifespan=lifespan,
        # Requests are traced by `RequestTracing`, which names spans by route
        # template: FastAPI's own spans would record paths and queries that carry
        # guest link tokens, and its log records the values a guest typed.
        telemetry={"tracing": False, "logs": False},
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RateLimits, limiter=rate_limiter or RateLimiter.from_settings(settings))
    if not settings.api_key_roles:
        app.add_middleware(AllowedHosts, public_base_url=settings.public_base_url)
    app.add_middleware(SecurityHeaders, hsts=settings.public_base_url.lower().startswith("https://"))
    app.add_middleware(CodecCors, prefix=codec.CODEC_PREFIX, temporal_ui_url=settings.resolved_temporal_ui_url)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestTracing)  # outermost: the span covers the whole request
    app.include_router(reservations.router)
    app.include_router(reservations_batch.router)
    app.include_router(journey_ops.router)  # /guest-experience/journey before /{reservation_id}
    app.include_router(guest_experience.router)
    app.include_router(communications.router)
    app.include_router(inbound.router)
    app.include_router(webhooks.router)
    app.include_router(unsubscribe.router)
    app.include_router(guest_pages.router)
    app.include_router(staff_panel.router)
    app.include_router(inbox.router)  # the staff inbox (`api.staff.inbox`)  # the staff pages (`api.staff`): panel, dashboard, sign-in
    app.include_router(staff_analytics.router)
    app.include_router(staff_policy.router)
    app.include_router(staff_login.router)
    mount_static(app)
    app.include_router(health.router)
    if settings.env != "production":  # production: only at GUEST_JOURNEY_METRICS_ADDRESS (`api_metrics`)
        app.include_router(metrics.router)
    app.include_router(codec.router)
    return app
