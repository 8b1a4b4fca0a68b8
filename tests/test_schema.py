"""The database schema: the migrations build exactly what the models declare, on
the database `--database` chose; upgrading is safe to repeat and to run from
many processes at once; a database made by `create_all` before migrations
existed is taken over; production refuses to start on a schema not at the head."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from api.app import create_app
from communications.message_store import MessageRecord
from guest_journey.database import create_engine, session_factory
from guest_journey.schema import (
    INITIAL_REVISION,
    SchemaNotCurrent,
    UnrecognisedSchema,
    check_database_is_current,
    database_revision,
    head_revision,
    upgrade_database,
)
from guest_journey.settings import Settings
from tests.databases import postgres_schema
from tests.every_table import every_table
from worker import run_worker

BEFORE_MIGRATIONS = Path(__file__).with_name("schema_before_migrations")
# SQLite cannot reflect expression-based indexes, so Alembic leaves them out of the
# comparison (and says so); `_index_names` checks that they exist.
pytestmark = pytest.mark.filterwarnings("ignore:.*expression-based index")


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.resolved_database_url)
    yield engine
    await engine.dispose()


async def differences_from_the_models(engine: AsyncEngine) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, every_table()))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


async def index_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            rows = await connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        else:
            rows = await connection.execute(
                text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            )
        return set(rows.scalars())


def declared_index_names() -> set[str]:
    return {str(index.name) for table in every_table().tables.values() for index in table.indexes}


async def run_sql_file(engine: AsyncEngine, path: Path) -> None:
    statements = [s.strip() for s in path.read_text().split(";\n") if s.strip()]
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


async def insert_message(engine: AsyncEngine, message_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(
            "INSERT INTO message (id, reservation_id, direction, channel, status, attempts, created_at, updated_at) "
            f"VALUES ('{message_id}', 'R1', 'outbound', 'email', 'sent', 1, "
            "'2025-01-31 10:00:00', '2025-01-31 10:00:00')"
        ))


async def message_ids(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return [record.id for record in (await session.exec(select(MessageRecord))).all()]


async def test_an_empty_database_is_migrated_to_exactly_what_the_models_declare(engine: AsyncEngine) -> None:
    assert await database_revision(engine) is None

    assert await upgrade_database(engine) == head_revision()

    assert await database_revision(engine) == head_revision()
    assert await differences_from_the_models(engine) == []
    assert declared_index_names() <= await index_names(engine)
    await check_database_is_current(engine)


async def test_upgrading_again_changes_nothing_and_keeps_the_data(engine: AsyncEngine) -> None:
    await upgrade_database(engine)
    await insert_message(engine, "m-1")
    indexes = await index_names(engine)

    assert await upgrade_database(engine) == head_revision()

    assert await message_ids(engine) == ["m-1"]
    assert await index_names(engine) == indexes
    assert await differences_from_the_models(engine) == []


async def test_many_processes_starting_at_once_upgrade_one_after_another(settings: Settings) -> None:
    engines = [create_engine(settings.resolved_database_url) for _ in range(4)]
    try:
        revisions = await asyncio.gather(*(upgrade_database(engine) for engine in engines))
        assert revisions == [head_revision()] * 4
        assert await differences_from_the_models(engines[0]) == []
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_database_made_before_migrations_is_stamped_and_upgraded(engine: AsyncEngine) -> None:
    await run_sql_file(engine, BEFORE_MIGRATIONS / f"{engine.dialect.name}.sql")
    await insert_message(engine, "from-before")
    assert await database_revision(engine) is None

    assert await upgrade_database(engine) == head_revision()

    assert await differences_from_the_models(engine) == []
    assert declared_index_names() <= await index_names(engine)
    assert await message_ids(engine) == ["from-before"]


async def test_tables_unlike_the_initial_ones_are_refused_and_left_alone(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE journey (reservation_id VARCHAR(128) PRIMARY KEY)"))

    with pytest.raises(UnrecognisedSchema) as refused:
        await upgrade_database(engine)

    message = str(refused.value)
    assert f"not those of the initial revision {INITIAL_REVISION}" in message
    assert "table journey differs (missing columns: ['arrival'," in message
    assert "table message is missing" in message
    assert await database_revision(engine) is None


def production(database_url: str) -> Settings:
    return Settings(
        env="production", database_url=database_url, api_keys="pms-key-0123456789abcdefghij:reservations",
        secret_key="production-secret-0123456789abcdef", temporal_address="127.0.0.1:1", task_queue="schema-test",
        smtp_host="127.0.0.1",  # a production worker refuses to start without an SMTP relay
    )


async def test_production_refuses_to_start_until_the_schema_is_upgraded() -> None:
    """Production is PostgreSQL whatever `--database` says: its settings refuse SQLite."""
    with postgres_schema() as database_url:
        settings = production(database_url)
        engine = create_engine(settings.resolved_database_url)
        try:
            app = create_app(settings)
            with pytest.raises(SchemaNotCurrent, match="run `guest-journey db upgrade`"):
                async with app.router.lifespan_context(app):
                    pass
            with pytest.raises(SchemaNotCurrent, match="has no schema yet.*run `guest-journey db upgrade`"):
                await run_worker(settings, asyncio.Event())
            assert await database_revision(engine) is None, "production changed the schema itself"

            await upgrade_database(engine)
            async with app.router.lifespan_context(app):
                pass
        finally:
            await engine.dispose()


async def test_production_names_the_revision_it_found_and_the_one_it_needs() -> None:
    with postgres_schema() as database_url:
        engine = create_engine(production(database_url).resolved_database_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
                await connection.execute(text(f"INSERT INTO alembic_version VALUES ('{INITIAL_REVISION}')"))
            with pytest.raises(SchemaNotCurrent) as refused:
                await check_database_is_current(engine)
        finally:
            await engine.dispose()
    assert str(refused.value) == (
        f"the database is at schema revision {INITIAL_REVISION}; this release needs revision "
        f"{head_revision()}: run `guest-journey db upgrade` (same GUEST_JOURNEY_DATABASE_URL) "
        "before starting the API and the workers"
    )
