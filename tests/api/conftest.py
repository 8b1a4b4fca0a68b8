"""An HTTP client for the app, wired to the test Temporal server and database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from guest_journey.settings import Settings


@pytest.fixture
def api_settings(env: WorkflowEnvironment, settings: Settings, tmp_path: Path) -> Settings:
    """Settings for the app under test: the test server, and a policy without quiet
    hours so that what is due does not depend on the hour the suite runs at."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("quiet_hours: null\n")
    target = env.client.service_client.config.target_host
    return settings.model_copy(update={"temporal_address": target, "policy_file": policy})


async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=transport, base_url="http://guest-journey.test"
    ) as client:
        yield client


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(api_settings):
        yield client


@pytest.fixture
async def api_without_temporal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app pointed at a Temporal address where nothing listens."""
    async for client in app_client(settings.model_copy(update={"temporal_address": "127.0.0.1:1"})):
        yield client
