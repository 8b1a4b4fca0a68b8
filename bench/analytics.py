"""Analytics: the delivery summary and the dashboard's KPIs over many messages.

    python -m bench.analytics                    # 100,000 messages, SQLite in a temp dir
    python -m bench.analytics --count 1000000 \\
        --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test

The messages: 3 hotels (50/30/20 %), 3 channels (WhatsApp 50 %, e-mail 40 %,
web chat 10 %), outbound statuses with 3 % failed, 20 % of the messages
replies (guests to us, and staff to guests: each staff reply stamped with its
response time, as the service stamps it), spread over the 180 days before now. The journeys (read model), one per 10 messages: arrivals over the same
days and the next 30, stays of 1-7 nights, 5 % cancelled, 45 % of the arrived
with the digital check-in done, 35 % of the departed with feedback (both scores),
two upsell offers each (20 % of those sent accepted). After the load the
statistics are gathered (`ANALYZE`; `VACUUM ANALYZE` on PostgreSQL, as
autovacuum would, so that index-only scans are possible). PostgreSQL gets
the rows by `COPY`, into a schema of its own, dropped at the end.

Timed, each in a session of its own as a request would: the delivery summary
(`GET /communications/delivery/summary`) in three shapes, each also counted
from every message of its period (`scan`: as before the daily totals of
`communications.message_days`; its response time from every stamped reply), and the data of the
dashboard (`GET /analytics`: the hotels, then `build_dashboard` and the card's
figures; the HTML around it is not timed) in two. The dashboard only reads the
snapshots the KPI schedule stores; the schedule's first run over the loaded
data (`measure_kpi_windows`: every hotel's open and caught-up windows) is timed
once and printed before them. Each shape is run once to warm up, then `--runs`
times; p99 is the nearest-rank percentile (with 20 runs, the slowest).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
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
from zoneinfo import ZoneInfo

from sqlalchemy import Table, func, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.staff.dashboard_card import headline
from bench.common import machine, percentile
from communications.delivery_summary import delivery_summary, summary_of
from communications.message_days import Figures, within
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.journeys import JourneyView, Stage, Step, StepKind, StepStatus
from guest_journey.policy import JourneyPolicy
from guest_journey.read_model import (
    JourneyRecord,
    JourneyStepRecord,
    JourneyUpsellRecord,
    columns_of,
    steps_of,
    upsells_of,
)
from guest_journey.reservations import Guest
from guest_journey.schema import upgrade_database
from services import dashboard
from services.kpi_tables import WindowKind
from services.kpi_windows import measure_kpi_windows

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
MESSAGES_PER_JOURNEY = 10
BATCH = 5_000
SUMMARY_TARGET_MS = 200.0
DASHBOARD_TARGET_MS = 500.0
SCORES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
SCORE_WEIGHTS = (1, 1, 1, 1, 2, 3, 4, 8, 14, 25, 40)


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


# -- messages -----------------------------------------------------------------------


def message_rows(count: int, journeys: int, end: datetime, seed: int = 7) -> list[dict[str, Any]]:
    """`count` message rows: conversations started by us or by guests, and replies."""
    rng = random.Random(seed)
    start = end - SPAN
    step = SPAN / count
    recent: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for index in range(count):
        created_at = start + step * index
        if recent and rng.random() < REPLY_SHARE:
            row = _reply(rng, rng.choice(recent), index)
        else:
            row = _opening(rng, index, created_at, journeys)
        rows.append(row)
        recent.append(row)
        if len(recent) > 1_000:
            recent.pop(0)
    stamp_staff_replies(rows)
    return rows


def stamp_staff_replies(rows: list[dict[str, Any]]) -> None:
    """Each staff reply's response time, as `send_message` stamps it when it creates the
    reply (`communications.response_times`): from the first guest message of the
    conversation (reservation and channel) that no staff reply has followed."""
    waiting: dict[tuple[str, str], datetime] = {}
    for row in sorted(rows, key=lambda row: row["created_at"]):
        conversation = (row["reservation_id"], row["channel"])
        if row["direction"] == "inbound":
            waiting.setdefault(conversation, row["created_at"])
        elif row["step_key"] is not None:
            since = waiting.pop(conversation, None)
            if since is not None:
                row["response_microseconds"] = (row["created_at"] - since) // timedelta(microseconds=1)


def _opening(rng: random.Random, index: int, created_at: datetime, journeys: int) -> dict[str, Any]:
    inbound = rng.random() < INBOUND_SHARE
    guest = rng.randrange(journeys)
    return _message(
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
    return _message(
        index,
        hotel_id=parent["hotel_id"],
        reservation_id=parent["reservation_id"],
        channel=parent["channel"],
        direction="inbound" if by_guest else "outbound",
        status="received" if by_guest else _pick(rng, OUTBOUND_STATUSES),
        created_at=parent["created_at"] + timedelta(minutes=minutes),
        in_reply_to=parent["id"],
        step_key=None if by_guest else f"manual:{index}",  # a staff reply, from the inbox or the panel
    )


def _message(index: int, **values: Any) -> dict[str, Any]:
    values.setdefault("in_reply_to", None)
    values.setdefault("recipient", None)
    values.setdefault("step_key", None)
    values.setdefault("response_microseconds", None)
    return {"id": f"m-{index:09d}", "attempts": 0, "updated_at": values["created_at"], **values}


# -- journeys -----------------------------------------------------------------------


def journey_rows(count: int, end: datetime, seed: int = 8) -> list[dict[str, Any]]:
    """`count` journeys of the read model, each with a view as the workflow records it."""
    rng = random.Random(seed)
    template = _view_template(end)
    return [_journey(rng, index, end, template) for index in range(count)]


def read_model_rows(journeys: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], ...]:
    """The rows `save_journey` writes for these journeys: the journey with its columns,
    its steps and its offers."""
    rows, steps, upsells = [], [], []
    for journey in journeys:
        view = JourneyView.model_validate(journey["view"])
        rows.append({**journey, **columns_of(view)})
        steps += [step.model_dump() for step in steps_of(view)]
        upsells += [upsell.model_dump() for upsell in upsells_of(view)]
    return rows, steps, upsells


def _view_template(end: datetime) -> dict[str, Any]:
    steps = [
        Step(key=key, kind=kind, status=StepStatus.planned, scheduled_for=end, template=kind.value)
        for key, kind in (
            ("checkin_invitation", StepKind.checkin_invitation),
            ("checkin_reminder:PT24H", StepKind.checkin_reminder),
            ("checkin_reminder:PT3H", StepKind.checkin_reminder),
            ("upsell:room_upgrade", StepKind.upsell),
            ("upsell:late_checkout", StepKind.upsell),
            ("upsell_follow_up:late_checkout", StepKind.upsell_follow_up),
            ("guest_post_stay_feedback", StepKind.guest_post_stay_feedback),
            ("feedback_reminder", StepKind.feedback_reminder),
            ("close", StepKind.close),
        )
    ]
    view = JourneyView(
        reservation_id="R-0", workflow_id="journey-R-0", hotel_id="hotel-1", stage=Stage.pre_arrival,
        guest=Guest(name="Ana Souza", email="guest-0@example.com", phone="+5521999990000",
                    language="pt-BR", marketing_consent=True),
        arrival=end, departure=end, room_type="deluxe", steps=steps,
    )
    return view.model_dump(mode="json")


def _journey(rng: random.Random, index: int, end: datetime, template: dict[str, Any]) -> dict[str, Any]:
    arrival = end - SPAN + timedelta(days=rng.uniform(0, SPAN.days + 30))
    departure = arrival + timedelta(days=rng.randint(1, 7), hours=-3)
    stage = (
        Stage.cancelled if rng.random() < 0.05
        else Stage.pre_arrival if arrival > end
        else Stage.in_stay if departure > end
        else Stage.post_stay if departure + timedelta(days=7) > end
        else Stage.completed
    )
    hotel_id = _pick(rng, HOTELS)
    view = copy.deepcopy(template)
    view.update(
        reservation_id=f"R-{index}", workflow_id=f"journey-R-{index}", hotel_id=hotel_id,
        stage=stage.value, arrival=arrival.isoformat(), departure=departure.isoformat(),
    )
    view["guest"]["email"] = f"guest-{index}@example.com"
    arrived = stage is not Stage.cancelled and arrival <= end
    if arrived and rng.random() < 0.45:
        view["checkin"] = {"status": "completed", "completed_at": (arrival - timedelta(hours=20)).isoformat(),
                           "details": {}}
    received_at = departure + timedelta(hours=rng.uniform(2, 72))
    if stage in (Stage.post_stay, Stage.completed) and received_at <= end and rng.random() < 0.35:
        view["feedback"] = {"status": "received", "score": rng.choices(SCORES, SCORE_WEIGHTS)[0],
                            "satisfaction": rng.choices(SCORES, SCORE_WEIGHTS)[0],
                            "comment": None, "received_at": received_at.isoformat()}
    view["upsells"] = [
        _upsell(rng, "room_upgrade", arrival - timedelta(hours=48), end),
        _upsell(rng, "late_checkout", departure - timedelta(hours=20), end),
    ]
    return {
        "reservation_id": f"R-{index}", "hotel_id": hotel_id, "stage": stage.value,
        "arrival": arrival, "departure": departure, "revision": 5,
        "guest_email": f"guest-{index}@example.com", "guest_phone": "+5521999990000",
        "view": view, "created_at": arrival - timedelta(days=20), "updated_at": end,
    }


def _upsell(rng: random.Random, offer: str, offered_at: datetime, end: datetime) -> dict[str, Any]:
    if offered_at > end:
        return {"offer": offer, "status": "planned"}
    answer = rng.random()
    status = "accepted" if answer < 0.2 else "declined" if answer < 0.5 else "offered"
    answered_at = (offered_at + timedelta(hours=3)).isoformat() if status != "offered" else None
    return {"offer": offer, "status": status, "offered_at": offered_at.isoformat(), "answered_at": answered_at}


# -- loading ------------------------------------------------------------------------


async def fill(engine: AsyncEngine, journeys: list[dict[str, Any]], messages: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    await upgrade_database(engine)
    journey_table, step_table, upsell_table = read_model_rows(journeys)
    tables: list[tuple[Table, list[dict[str, Any]]]] = [
        (JourneyRecord.__table__, journey_table),  # type: ignore[attr-defined]
        (JourneyStepRecord.__table__, step_table),  # type: ignore[attr-defined]
        (JourneyUpsellRecord.__table__, upsell_table),  # type: ignore[attr-defined]
        (MessageRecord.__table__, messages),  # type: ignore[attr-defined]
    ]
    for table, rows in tables:
        if not rows:
            continue
        if engine.dialect.name == "postgresql":
            await _copy(engine, table, rows)
        else:
            async with engine.begin() as connection:
                for offset in range(0, len(rows), BATCH):
                    await connection.execute(insert(table), rows[offset : offset + BATCH])
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in ("ANALYZE",) if engine.dialect.name == "sqlite" else (
            "VACUUM ANALYZE message", "VACUUM ANALYZE message_day", "VACUUM ANALYZE message_reply_day",
            "VACUUM ANALYZE message_response_day",
            "VACUUM ANALYZE journey", "VACUUM ANALYZE journey_step",
            "VACUUM ANALYZE journey_upsell"
        ):
            await connection.execute(text(statement))
    return time.perf_counter() - started


async def _copy(engine: AsyncEngine, table: Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY, through the engine's own psycopg connection."""
    columns = list(rows[0])
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        psycopg_connection: Any = raw.driver_connection
        async with psycopg_connection.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            async with cursor.copy(statement) as copy_in:
                for row in rows:
                    values = (row[column] for column in columns)
                    await copy_in.write_row([json.dumps(value) if isinstance(value, dict) else value
                                             for value in values])
        await psycopg_connection.commit()


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


# -- timing -------------------------------------------------------------------------


async def timed(runs: int, query: Callable[[], Awaitable[str]]) -> tuple[float, float, float, str]:
    """(first, median, p99) in ms and the answer's figures: one run, then `runs` more."""
    started = time.perf_counter()
    answer = await query()
    first = (time.perf_counter() - started) * 1000
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        await query()
        durations.append((time.perf_counter() - started) * 1000)
    return first, statistics.median(durations), percentile(durations, 0.99), answer


def _summary(sessions: SessionFactory, filters: dict[str, Any], *, scan: bool = False) -> Callable[[], Awaitable[str]]:
    """The delivery summary; with `scan`, counted from every message of the period
    instead of the daily totals (what it did before them), for comparison."""
    async def query() -> str:
        async with sessions() as session:
            if scan:
                hotel = filters.get("hotel_id")
                scope = None if hotel is None else frozenset({hotel})
                since, until = filters.get("since"), filters.get("until")
                answer = summary_of(await Figures.scanned(session, since, until, scope))
                answer.avg_response_time_minutes = await _scanned_response_minutes(session, since, until, scope)
            else:
                answer = await delivery_summary(session=session, **filters)
        return f"total={answer.total} failed={answer.failed} avg_response={answer.avg_response_time_minutes} min"

    return query


async def _scanned_response_minutes(
    session: AsyncSession, since: datetime | None, until: datetime | None, scope: frozenset[str] | None
) -> float | None:
    """The staff replies' mean response time, from every stamped reply of the period."""
    stamped = col(MessageRecord.response_microseconds)
    query = select(func.count(stamped), func.sum(stamped)).where(stamped.is_not(None),
                                                                  *within(MessageRecord, since, until, scope))
    count, total = (await session.exec(query)).one()
    return round(int(total) / count / 60_000_000, 2) if count else None


def _dashboard(sessions: SessionFactory, hotel_id: str | None, kind: WindowKind) -> Callable[[], Awaitable[str]]:
    """What `GET /analytics` reads, without the HTML."""
    policy = JourneyPolicy()
    hotel = policy.for_hotel(hotel_id) if hotel_id else policy
    zone, targets = ZoneInfo(hotel.hotel_timezone), hotel.kpi_targets

    async def query() -> str:
        now = datetime.now(UTC)
        async with sessions() as session:
            await dashboard.known_hotels(session=session, configured=[])
            period = dashboard.Period.choose(since=None, until=None, kind=kind, zone=zone, now=now)
            board = await dashboard.build_dashboard(
                session=session, hotel_id=hotel_id, period=period, targets=targets, now=now
            )
        figures = headline(board)
        return f"{len(board.windows)} windows; " + ", ".join(f"{figure.key}={figure.shown}" for figure in figures)

    return query


async def run(count: int, runs: int, postgres: str | None) -> None:
    print(machine())
    end = datetime.now(UTC)
    journey_count = max(count // MESSAGES_PER_JOURNEY, 100)
    journeys = journey_rows(journey_count, end)
    messages = message_rows(count, journey_count, end)
    database = postgres_engine(postgres) if postgres else sqlite_engine()
    async with database as (engine, name):
        load_seconds = await fill(engine, journeys, messages)
        sessions = session_factory(engine)
        print(f"{name}: {count:,} messages and {journey_count:,} journeys loaded in {load_seconds:.1f} s")
        started = time.perf_counter()
        async with sessions() as session:
            measured = await measure_kpi_windows(session=session, policy=JourneyPolicy(), at=end)
        print(f"KPI schedule, first run: {measured} windows measured in {time.perf_counter() - started:.1f} s")
        month_ago = end - timedelta(days=30)
        summaries = (
            ("all hotels, all time", {}),
            ("one hotel, all time", {"hotel_id": "hotel-2"}),
            ("one hotel, 30 days", {"hotel_id": "hotel-2", "since": month_ago, "until": end}),
        )
        shapes: list[tuple[str, Callable[[], Awaitable[str]], float]] = [
            *((f"summary, scan: {label}", _summary(sessions, filters, scan=True), SUMMARY_TARGET_MS)
              for label, filters in summaries),
            *((f"summary: {label}", _summary(sessions, filters), SUMMARY_TARGET_MS) for label, filters in summaries),
            ("dashboard: all hotels, 14 days",
             _dashboard(sessions, None, WindowKind.day), DASHBOARD_TARGET_MS),
            ("dashboard: one hotel, 8 weeks",
             _dashboard(sessions, "hotel-2", WindowKind.week), DASHBOARD_TARGET_MS),
        ]
        print(f"{'query':<38}{'first ms':>15}{'median ms':>11}{'p99 ms':>9}{'target ms':>11}  met  answer")
        for label, query, target in shapes:
            first, median, p99, answer = await timed(runs, query)
            met = "yes" if p99 <= target else "no"
            print(f"{label:<38}{first:>15.1f}{median:>11.1f}{p99:>9.1f}{target:>11.0f}  {met:<4} {answer}")
    print(machine())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages to load (default 100,000)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per shape (default 20)")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL URL (postgresql+psycopg://…) instead of SQLite")
    arguments = parser.parse_args()
    logging.getLogger("services.kpi_alerts").setLevel(logging.ERROR)  # the alerts the data raises
    asyncio.run(run(arguments.count, arguments.runs, arguments.postgres))


if __name__ == "__main__":
    main()
