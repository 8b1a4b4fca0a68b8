"""Fixtures of the chaos suite: its size, a seeded random, the Temporal dev
server and the SMTP server on loopback, the service's database (the one
`pytest --database` chooses), and the processes a test starts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from guest_journey.settings import Settings
from tests.chaos.outcomes import REPORTED, outcome_table
from tests.chaos.processes import Processes, TemporalServerProcess, free_ports
from tests.chaos.size import ChaosSize, chaos_seed, chaos_size
from tests.databases import chosen_database, postgres_schema
from tests.smtp_server import SmtpTestServer


@pytest.fixture(scope="session")
def size() -> ChaosSize:
    return chaos_size()


@pytest.fixture
def chaos_random(request: pytest.FixtureRequest, size: ChaosSize) -> random.Random:
    """The random kill moments; the seed is printed so that a run can be replayed."""
    seed = chaos_seed(default=random.SystemRandom().randrange(2**32))
    print(f"\n{request.node.name}: {size.name} size, seed {seed} (GUEST_JOURNEY_CHAOS_SEED={seed} replays it)")
    return random.Random(seed)


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[TemporalServerProcess]:
    """The Temporal dev server on a SQLite file in its own subprocess."""
    port, ui_port = free_ports(2)
    server = TemporalServerProcess(
        port=port, ui_port=ui_port, db_file=tmp_path / "temporal.sqlite", log_dir=tmp_path / "logs"
    )
    try:
        server.start()
        await server.wait_ready()
        yield server
    finally:
        server.kill()


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpTestServer]:
    server = SmtpTestServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The service's database: SQLite in the data dir, or a PostgreSQL schema of its own."""
    if chosen_database(request.config) == "postgresql":
        with postgres_schema() as url:
            yield Settings(database_url=url).resolved_database_url
    else:
        yield Settings(data_dir=tmp_path / "data").resolved_database_url


@pytest.fixture
def processes(tmp_path: Path, temporal: TemporalServerProcess, database_url: str) -> Iterator[Processes]:
    """Workers and APIs of the test, killed before the Temporal server stops and
    the database is dropped."""
    started = Processes(tmp_path / "logs")
    try:
        yield started
    finally:
        started.kill_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The outcome of every (reservation, step) of the scenarios that counted them."""
    if REPORTED:
        terminalreporter.section(f"never twice, never lost ({chaos_size().name} size)")
        terminalreporter.write_line(outcome_table(REPORTED))
