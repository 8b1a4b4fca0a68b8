"""Time `delivery_summary` on a database filled with a realistic mix of messages.

    python bench/delivery_summary.py                      # 100,000 rows, SQLite in a temp dir
    python bench/delivery_summary.py --count 1000000
    python bench/delivery_summary.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

The mix: 3 hotels (50/30/20 %), 3 channels (WhatsApp 50 %, e-mail 40 %,
web chat 10 %), outbound statuses with 3 % failed, 20 % of the messages
replies (guests to us, and staff to guests), spread over 180 days. After the
load the statistics are gathered (`ANALYZE`; `VACUUM ANALYZE` on PostgreSQL,
as autovacuum would, so that index-only scans are possible). On PostgreSQL the
rows go to a schema of their own, dropped at the end. Each
query shape is run once to warm up, then `--runs` times, each in a session of
its own as a request would; p99 is the nearest-rank percentile (with 20 runs,
the slowest).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from communications.delivery_summary import DeliverySummary, delivery_summary
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, create_engine, create_tables, session_factory

HOTELS = (("hotel-1", 0.5), ("hotel-2", 0.3), ("hotel-3", 0.2))
CHANNELS = (("whatsapp", 0.5), ("email", 0.4), ("webchat", 0.1))
OUTBOUND_STATUSES = (
    ("failed", 0.03),
    ("queued", 0.01),
    ("sent", 0.16),
    ("delivered", 0.35),
    ("read", 0.45),
)
REPLY_SHARE = 0.2
INBOUND_SHARE = 0.1  # of the messages that start a conversation
GUEST_REPLY_MINUTES = 45.0
HOTEL_REPLY_MINUTES = 12.0
SPAN = timedelta(days=180)
BATCH = 5_000
END = datetime(2025, 6, 30, tzinfo=UTC)


def message_rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """`count` message rows: conversations started by us or by guests, and replies."""
    rng = random.Random(seed)
    start = END - SPAN
    step = SPAN / count
    recent: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for index in range(count):
        created_at = start + step * index
        if recent and rng.random() < REPLY_SHARE:
            row = _reply(rng, rng.choice(recent), index)
        else:
            row = _opening(rng, index, created_at)
        rows.append(row)
        recent.append(row)
        if len(recent) > 1_000:
            recent.pop(0)
    return rows


def _opening(rng: random.Random, index: int, created_at: datetime) -> dict[str, Any]:
    inbound = rng.random() < INBOUND_SHARE
    guest = rng.randrange(20_000)
    return _row(
        index,
        hotel_id=_pick(rng, HOTELS),
        reservation_id=f"R-{guest}",
        channel=_pick(rng, CHANNELS),
        direction="inbound" if inbound else "outbound",
        status="received" if inbound else _pick(rng, OUTBOUND_STATUSES),
        created_at=created_at,
        recipient=None if inbound else f"guest-{guest}@example.com",
    )


def _reply(rng: random.Random, parent: dict[str, Any], index: int) -> dict[str, Any]:
    by_guest = parent["direction"] == "outbound"
    minutes = rng.expovariate(1 / (GUEST_REPLY_MINUTES if by_guest else HOTEL_REPLY_MINUTES))
    return _row(
        index,
        hotel_id=parent["hotel_id"],
        reservation_id=parent["reservation_id"],
        channel=parent["channel"],
        direction="inbound" if by_guest else "outbound",
        status="received" if by_guest else _pick(rng, OUTBOUND_STATUSES),
        created_at=parent["created_at"] + timedelta(minutes=minutes),
        in_reply_to=parent["id"],
    )


def _row(index: int, **values: Any) -> dict[str, Any]:
    values.setdefault("in_reply_to", None)
    values.setdefault("recipient", None)
    return {
        "id": f"m-{index:09d}",
        "attempts": 0,
        "updated_at": values["created_at"],
        **values,
    }


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


async def fill(engine: AsyncEngine, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    await create_tables(engine)
    async with engine.begin() as connection:
        for offset in range(0, len(rows), BATCH):
            await connection.execute(insert(MessageRecord.__table__), rows[offset : offset + BATCH])  # type: ignore[attr-defined]
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        vacuum = "ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE message"
        await connection.execute(text(vacuum))
    return time.perf_counter() - started


async def timed(
    runs: int, query: Callable[[], Awaitable[DeliverySummary]]
) -> tuple[float, float, DeliverySummary]:
    answer = await query()
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        await query()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    p99 = durations[max(0, math.ceil(0.99 * len(durations)) - 1)]
    return statistics.median(durations), p99, answer


@asynccontextmanager
async def sqlite_engine() -> AsyncIterator[tuple[AsyncEngine, str]]:
    with tempfile.TemporaryDirectory() as directory:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(directory) / 'bench.sqlite3'}")
        try:
            async with engine.connect() as connection:
                version = (await connection.execute(text("select sqlite_version()"))).scalar_one()
            yield engine, f"SQLite {version} (file in a temp dir)"
        finally:
            await engine.dispose()


@asynccontextmanager
async def postgres_engine(url: str) -> AsyncIterator[tuple[AsyncEngine, str]]:
    schema = f"bench_{uuid.uuid4().hex}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        version = (await connection.execute(text("show server_version"))).scalar_one()
    engine = create_async_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine, f"PostgreSQL {version} (schema {schema}, dropped after)"
    finally:
        await engine.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def run(count: int, runs: int, postgres: str | None) -> None:
    rows = message_rows(count)
    database = postgres_engine(postgres) if postgres else sqlite_engine()
    async with database as (engine, name):
        load_seconds = await fill(engine, rows)
        sessions = session_factory(engine)
        print(f"{name}: {count:,} messages loaded in {load_seconds:.1f} s; {os.cpu_count()} cores")
        month_ago = END - timedelta(days=30)
        shapes: list[tuple[str, dict[str, Any]]] = [
            ("all hotels, all time", {}),
            ("one hotel, all time", {"hotel_id": "hotel-2"}),
            ("one hotel, last 30 days", {"hotel_id": "hotel-2", "since": month_ago, "until": END}),
        ]
        print(f"{'query':<26}{'median ms':>11}{'p99 ms':>9}  answer")
        for label, filters in shapes:
            median, p99, answer = await timed(runs, _query(sessions, filters))
            figures = (
                f"total={answer.total} failed={answer.failed} "
                f"avg_response={answer.avg_response_time_minutes} min"
            )
            print(f"{label:<26}{median:>11.1f}{p99:>9.1f}  {figures}")


def _query(
    sessions: SessionFactory, filters: dict[str, Any]
) -> Callable[[], Awaitable[DeliverySummary]]:
    async def query() -> DeliverySummary:
        async with sessions() as session:
            return await delivery_summary(session=session, **filters)

    return query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count", type=int, default=100_000, help="messages to load (default 100,000)"
    )
    parser.add_argument(
        "--runs", type=int, default=20, help="timed runs per query shape (default 20)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="a PostgreSQL URL (postgresql+psycopg://…) instead of SQLite",
    )
    arguments = parser.parse_args()
    asyncio.run(run(arguments.count, arguments.runs, arguments.postgres))


if __name__ == "__main__":
    main()
