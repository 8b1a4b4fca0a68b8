"""`db_sessions`: each test once on SQLite and once on PostgreSQL, in a schema of its own.

A test module takes the fixture in with `db_sessions = database_fixtures.db_sessions`.
The PostgreSQL run uses the server at `POSTGRES_URL` and is skipped, with the
reason, when that server cannot be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

import communications.message_status  # noqa: F401  (registers the status history table)
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.schema import upgrade_database
from guest_journey.settings import Settings

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_sessions(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[SessionFactory]:
    databases = {"sqlite": _sqlite_file, "postgresql": _postgres_schema}
    async for sessions in databases[request.param](settings):
        yield sessions


async def _sqlite_file(settings: Settings) -> AsyncIterator[SessionFactory]:
    engine = create_engine(f"sqlite+aiosqlite:///{settings.data_dir.resolve() / 'guest-journey.sqlite'}")
    try:
        await upgrade_database(engine)
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def _postgres_schema(_: Settings) -> AsyncIterator[SessionFactory]:
    schema = f"test_{uuid.uuid4().hex}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        await admin.dispose()
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable (start it; .ci/run does): {error.orig}")
    engine = create_async_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        await upgrade_database(engine)
        yield session_factory(engine)
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
