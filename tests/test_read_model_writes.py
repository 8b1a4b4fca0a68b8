"""`save_journey` writes only the step and offer rows that changed: a journey's
dozen rows are not rewritten because one step moved. Runs on SQLite and, with
`--database=postgresql`, on PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import select

from guest_journey.database import SessionFactory
from guest_journey.journeys import (
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
    JourneyStepRecord,
    JourneyUpsellRecord,
    save_journey,
    steps_of,
    upsells_of,
)
from guest_journey.reservations import Guest

T0 = datetime(2026, 3, 10, 12, tzinfo=UTC)
KINDS = [StepKind.checkin_invitation, StepKind.checkin_reminder, StepKind.guest_post_stay_feedback]


def journey(revision: int = 1) -> JourneyView:
    return JourneyView(
        reservation_id="R-1", workflow_id=workflow_id_for("R-1"), hotel_id="hotel-rio", stage=Stage.pre_arrival,
        guest=Guest(name="Ana", email="ana@example.com"), arrival=T0, departure=T0 + timedelta(days=2),
        steps=[Step(key=f"{kind.value}", kind=kind, status=StepStatus.planned, scheduled_for=T0 - timedelta(days=3))
               for kind in KINDS],
        upsells=[Upsell(offer="room_upgrade", status=UpsellStatus.planned),
                 Upsell(offer="late_checkout", status=UpsellStatus.planned)],
        revision=revision,
    )


@contextmanager
def row_writes(sessions: SessionFactory) -> Iterator[Counter[tuple[str, str]]]:
    """(statement, table) of every INSERT, UPDATE and DELETE of step and offer rows."""
    writes: Counter[tuple[str, str]] = Counter()
    engine = sessions.kw["bind"].sync_engine

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        verb = statement.split(None, 1)[0].upper()
        for table in ("journey_step", "journey_upsell"):
            if verb in ("INSERT", "UPDATE", "DELETE") and table in statement.split("(")[0].split("WHERE")[0]:
                rows = len(parameters) if executemany else 1
                writes[(verb, table)] += rows

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def stored_rows(sessions: SessionFactory) -> tuple[list[Any], list[Any]]:
    async with sessions() as session:
        steps = (await session.exec(select(JourneyStepRecord).order_by(JourneyStepRecord.key))).all()
        upsells = (await session.exec(select(JourneyUpsellRecord).order_by(JourneyUpsellRecord.offer))).all()
        return ([(s.key, s.kind, s.status, s.scheduled_for) for s in steps],
                [(u.offer, u.status, u.sent_at) for u in upsells])


def expected_rows(view: JourneyView) -> tuple[list[Any], list[Any]]:
    steps = sorted((s.key, s.kind, s.status, s.scheduled_for) for s in steps_of(view))
    upsells = sorted((u.offer, u.status, u.sent_at) for u in upsells_of(view))
    return steps, upsells


async def test_a_moving_step_writes_its_row_only(sessions):
    async with sessions() as session:
        await save_journey(session=session, view=journey())

    moved = journey(revision=2)
    moved.steps[0] = moved.steps[0].model_copy(update={"status": StepStatus.done})
    with row_writes(sessions) as writes:
        async with sessions() as session:
            assert await save_journey(session=session, view=moved)
    assert writes == Counter({("UPDATE", "journey_step"): 1})
    assert await stored_rows(sessions) == expected_rows(moved)

    with row_writes(sessions) as writes:  # the same rows again: none written
        async with sessions() as session:
            assert await save_journey(session=session, view=moved.model_copy(update={"revision": 3}))
    assert writes == Counter()


async def test_added_changed_and_removed_rows_are_written_and_the_rest_left_alone(sessions):
    async with sessions() as session:
        await save_journey(session=session, view=journey())

    changed = journey(revision=2)
    changed.steps = [*changed.steps[1:], Step(key="extra", kind=StepKind.checkin_reminder, status=StepStatus.planned,
                                              scheduled_for=T0 - timedelta(days=1))]
    changed.upsells[0] = changed.upsells[0].model_copy(update={"status": UpsellStatus.offered, "offered_at": T0})
    with row_writes(sessions) as writes:
        async with sessions() as session:
            assert await save_journey(session=session, view=changed)
    assert writes == Counter({("INSERT", "journey_step"): 1, ("DELETE", "journey_step"): 1,
                              ("UPDATE", "journey_upsell"): 1})
    assert await stored_rows(sessions) == expected_rows(changed)

    with row_writes(sessions) as writes:  # an older revision changes nothing
        async with sessions() as session:
            assert not await save_journey(session=session, view=journey(revision=1))
    assert writes == Counter()
    assert await stored_rows(sessions) == expected_rows(changed)
