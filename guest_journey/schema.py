"""The database schema, kept by the Alembic migrations in `guest_journey/migrations/`.

`upgrade_database` brings a database to the newest revision (the head). A
development process upgrades at start; in production `guest-journey db upgrade`
runs once per release, before the new API and worker replicas, and those only
check that the schema is at the head (`prepare_database`).
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from guest_journey.settings import Settings

logger = logging.getLogger("guest_journey.schema")

MIGRATIONS = Path(__file__).with_name("migrations")
# The tables as `create_all` made them before there were migrations.
INITIAL_REVISION = "0001"
# PostgreSQL's advisory lock held for the whole upgrade, so that many replicas
# starting at once upgrade one after another (on SQLite: its write lock).
UPGRADE_LOCK = 724031
UPGRADE_COMMAND = "guest-journey db upgrade"


class _WithoutContextNotes(logging.Filter):
    """Alembic notes its dialect at every look at the database; the migrations it runs stay logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Context impl", "Will assume"))


logging.getLogger("alembic.runtime.migration").addFilter(_WithoutContextNotes())


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this release needs."""


class UnrecognisedSchema(RuntimeError):
    """The database has the app's tables but no migration history, and they are not the initial ones."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "guest_journey/migrations has no revision"
    return head


async def upgrade_database(engine: AsyncEngine) -> str:
    """Run every migration not yet applied; returns the revision the database is at.

    Safe to run again (nothing to do at the head) and from many processes at once
    on PostgreSQL (an advisory lock makes them take turns). A database made by
    `create_all` before migrations existed is recognised and stamped first.
    """
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({UPGRADE_LOCK})"))
        elif connection.dialect.name == "sqlite":
            await connection.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock, and DDL inside it
        return await connection.run_sync(_upgrade)


async def database_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database without migration history."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


async def check_database_is_current(engine: AsyncEngine) -> None:
    """Raise `SchemaNotCurrent`, saying what to run, unless the schema is at the head."""
    current, head = await database_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        found = "has no schema yet"
    elif current in _known_revisions():
        found = f"is at schema revision {current}"
    else:
        found = f"is at schema revision {current}, which this release does not know (a newer release upgraded it)"
    raise SchemaNotCurrent(
        f"the database {found}; this release needs revision {head}: run `{UPGRADE_COMMAND}` "
        "(same GUEST_JOURNEY_DATABASE_URL) before starting the API and the workers"
    )


async def prepare_database(engine: AsyncEngine, settings: Settings) -> None:
    """At a process's start: development upgrades the schema itself; production never
    changes it and refuses to run on a schema that is not at the head."""
    if settings.env == "production":
        await check_database_is_current(engine)
    else:
        await upgrade_database(engine)


def _upgrade(connection: Connection) -> str:
    config = alembic_config(connection)
    if _current_revision(connection) is None and _has_initial_tables(connection):
        _check_initial_tables(connection)
        logger.info("the database's tables predate migrations: stamping revision %s", INITIAL_REVISION)
        command.stamp(config, INITIAL_REVISION)
    command.upgrade(config, "head")
    revision = _current_revision(connection)
    assert revision is not None
    return revision


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


@cache
def _initial_tables() -> dict[str, frozenset[str]]:
    """Table name → column names at the initial revision, from running it on an empty database."""
    engine = sqlalchemy.create_engine("sqlite://")
    migration_log = logging.getLogger("alembic.runtime.migration")
    level = migration_log.level
    migration_log.setLevel(logging.WARNING)  # not the database being upgraded: nothing to report
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), INITIAL_REVISION)
            return _tables(connection, exclude={"alembic_version"})
    finally:
        migration_log.setLevel(level)
        engine.dispose()


def _tables(connection: Connection, *, exclude: set[str]) -> dict[str, frozenset[str]]:
    inspector = inspect(connection)
    return {
        table: frozenset(column["name"] for column in inspector.get_columns(table))
        for table in inspector.get_table_names()
        if table not in exclude
    }


def _has_initial_tables(connection: Connection) -> bool:
    found = set(inspect(connection).get_table_names())
    return bool(found) and bool(found & set(_initial_tables()))


def _check_initial_tables(connection: Connection) -> None:
    found = _tables(connection, exclude=set())
    problems = []
    for table, columns in sorted(_initial_tables().items()):
        if table not in found:
            problems.append(f"table {table} is missing")
        elif found[table] != columns:
            missing, extra = sorted(columns - found[table]), sorted(found[table] - columns)
            problems.append(f"table {table} differs (missing columns: {missing}, unknown columns: {extra})")
    if problems:
        raise UnrecognisedSchema(
            "the database has tables but no migration history, and they are not those of the "
            f"initial revision {INITIAL_REVISION}: " + "; ".join(problems)
        )
