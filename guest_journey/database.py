"""The database: one async engine per process, SQLite by default, PostgreSQL in production."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.ext import asyncio as sqlalchemy_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.clock import clock_offset

SessionFactory = async_sessionmaker[AsyncSession]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, as every row is stamped: the real clock, or an activity's simulated one
    (`guest_journey.clock`: the demo's time-skipping runs; production has no offset)."""
    return datetime.now(UTC) + clock_offset.get()


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _use_write_ahead_log(path)
        # Looked up at each call, so that tracing (`telemetry.trace_client_calls`) sees every engine.
        engine = sqlalchemy_asyncio.create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return sqlalchemy_asyncio.create_async_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _use_write_ahead_log(path: str, patience_seconds: float = 30.0) -> None:
    """Put the SQLite file in WAL mode, once, before the engine's first connection.

    The mode is kept in the file. Switching needs the file to itself, and SQLite
    answers "database is locked" at once, without waiting, when another process
    is writing (say, upgrading the schema): so this waits and tries again.
    """
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=patience_seconds)) as connection:
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
                return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)

