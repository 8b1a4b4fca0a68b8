"""Migration 0009 (the read model in columns): journeys stored as documents before it
get their columns and their step and offer rows, exactly as `save_journey` writes
them now; and down again, the documents untouched. Runs on SQLite and, with
`--database=postgresql`, on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, Column, Connection, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from guest_journey.database import UTCDateTime, create_engine, session_factory
from guest_journey.journeys import (
    Checkin,
    CheckinStatus,
    Feedback,
    FeedbackStatus,
    JourneyView,
    Stage,
    Step,
    StepKind,
    StepStatus,
    Upsell,
    UpsellStatus,
    workflow_id_for,
)
from guest_journey.read_model import (
    JourneyRecord,
    JourneyStepRecord,
    JourneyUpsellRecord,
    columns_of,
    save_journey,
    steps_of,
    upsells_of,
)
from guest_journey.reservations import Guest
from guest_journey.schema import alembic_config
from guest_journey.settings import Settings

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
JOURNEY_BEFORE_0009 = Table(  # the journey table as revision 0008 left it
    "journey", MetaData(),
    Column("reservation_id", String), Column("hotel_id", String), Column("stage", String),
    Column("arrival", UTCDateTime()), Column("departure", UTCDateTime()), Column("revision", Integer),
    Column("guest_email", String), Column("guest_phone", String), Column("view", JSON),
    Column("created_at", UTCDateTime()), Column("updated_at", UTCDateTime()),
)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.resolved_database_url)
    yield engine
    await engine.dispose()


def views() -> list[JourneyView]:
    answered = JourneyView(
        reservation_id="R-ANSWERED", workflow_id=workflow_id_for("R-ANSWERED"), hotel_id="hotel-rio",
        stage=Stage.post_stay, guest=Guest(name="Ana", email="Ana@Example.com", phone="+5521999990000"),
        arrival=T0, departure=T0 + timedelta(days=2),
        steps=[Step(key="checkin_invitation", kind=StepKind.checkin_invitation, status=StepStatus.done,
                    scheduled_for=T0 - timedelta(days=3)),
               Step(key="guest_post_stay_feedback", kind=StepKind.guest_post_stay_feedback, status=StepStatus.planned,
                    scheduled_for=T0 + timedelta(days=2, hours=2))],
        upsells=[Upsell(offer="room_upgrade", status=UpsellStatus.accepted, offered_at=T0 - timedelta(days=2),
                        answered_at=T0 - timedelta(days=1)),
                 Upsell(offer="late_checkout", status=UpsellStatus.declined, answered_at=T0 + timedelta(days=1)),
                 Upsell(offer="spa", status=UpsellStatus.planned)],
        checkin=Checkin(status=CheckinStatus.completed, completed_at=T0 - timedelta(days=1)),
        feedback=Feedback(status=FeedbackStatus.received, score=9, satisfaction=8,
                          received_at=T0 + timedelta(days=3)),
        preferences={"bed": "double"}, revision=7,
    )
    plain = JourneyView(
        reservation_id="R-PLAIN", workflow_id=workflow_id_for("R-PLAIN"), hotel_id="hotel-sp",
        stage=Stage.pre_arrival, guest=Guest(name="Bia"), arrival=T0 + timedelta(days=9),
        departure=T0 + timedelta(days=10), revision=1,
    )
    return [answered, plain]


def _to(connection: Connection, revision: str, direction: str) -> None:
    config = alembic_config(connection)
    (command.upgrade if direction == "up" else command.downgrade)(config, revision)


async def migrate(engine: AsyncEngine, revision: str, direction: str = "up") -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_to, revision, direction)


def stored_as_documents(view: JourneyView) -> dict[str, Any]:
    """The row an earlier release wrote: the document and the columns it had."""
    return {"reservation_id": view.reservation_id, "hotel_id": view.hotel_id, "stage": view.stage.value,
            "arrival": view.arrival, "departure": view.departure, "revision": view.revision,
            "guest_email": view.guest.email.lower() if view.guest.email else None, "guest_phone": view.guest.phone,
            "view": view.model_dump(mode="json"), "created_at": T0, "updated_at": T0}


async def test_up_fills_columns_and_rows_as_save_journey_writes_them_and_down_keeps_the_documents(engine):
    await migrate(engine, "0008")
    sessions = session_factory(engine)
    async with engine.begin() as connection:
        await connection.execute(JOURNEY_BEFORE_0009.insert(), [stored_as_documents(view) for view in views()])

    await migrate(engine, "0009")

    async with sessions() as session:
        for view in views():
            record = await session.get(JourneyRecord, view.reservation_id)
            assert record is not None
            assert {name: getattr(record, name) for name in columns_of(view)} == columns_of(view)
            steps = (await session.exec(select(JourneyStepRecord).where(
                JourneyStepRecord.reservation_id == view.reservation_id))).all()
            upsells = (await session.exec(select(JourneyUpsellRecord).where(
                JourneyUpsellRecord.reservation_id == view.reservation_id))).all()
            assert sorted(map(_step, steps)) == sorted(map(_step, steps_of(view)))
            assert sorted(map(_upsell, upsells)) == sorted(map(_upsell, upsells_of(view)))
        # A journey recorded after the migration is written the same way.
        later = views()[0].model_copy(update={"reservation_id": "R-LATER", "revision": 8})
        await save_journey(session=session, view=later)
        assert (await session.get(JourneyRecord, "R-LATER")).feedback_satisfaction == 8

    await migrate(engine, "0008", "down")
    async with engine.connect() as connection:
        tables = await connection.run_sync(_table_names)
        documents = dict((await connection.execute(text("select reservation_id, view from journey"))).all())
    assert "journey_step" not in tables and "journey_upsell" not in tables
    before = {view.reservation_id: view.model_dump(mode="json") for view in views()}
    assert {rid: _json(doc) for rid, doc in documents.items() if rid in before} == before


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _json(document: Any) -> Any:
    return json.loads(document) if isinstance(document, str) else document


def _step(record: JourneyStepRecord) -> tuple[Any, ...]:
    return (record.key, record.hotel_id, record.kind, record.status, record.scheduled_for)


def _upsell(record: JourneyUpsellRecord) -> tuple[Any, ...]:
    return (record.offer, record.hotel_id, record.status, record.sent_at)

