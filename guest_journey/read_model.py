"""The journey read model: the latest state of every journey, running or finished,
written only by the workflow's `record_journey` activity, in one transaction.

What lists, staff pages and figures filter and count on is in columns: the
journey's stage, dates, hotel, contacts, check-in status and feedback answers
(`journey`), each step (`journey_step`) and each offer (`journey_upsell`). The
whole view is kept beside them as a document (`journey.view`), which a journey's
own page reads back by id; no query digs into it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, Column, Index, delete, insert, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow
from guest_journey.journeys import FINAL_STAGES, JourneyView, Stage


class JourneyRecord(SQLModel, table=True):
    __tablename__ = "journey"
    __table_args__ = (
        # Staff pages and the dashboard: journeys of a stage arriving in a period
        # (check-in pending, stuck journeys), of all hotels or of one.
        Index("ix_journey_stage_arrival", "stage", "arrival"),
        Index("ix_journey_hotel_stage_arrival", "hotel_id", "stage", "arrival"),
    )

    reservation_id: str = Field(primary_key=True, max_length=128)
    hotel_id: str = Field(max_length=64)
    stage: str = Field(max_length=16)
    arrival: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    departure: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revision: int = 0
    guest_email: str | None = Field(default=None, index=True, max_length=320)
    guest_phone: str | None = Field(default=None, index=True, max_length=32)
    checkin_status: str | None = Field(default=None, max_length=16)
    feedback_score: int | None = None  # the recommendation (NPS) answer, 0-10
    feedback_satisfaction: int | None = None  # the satisfaction answer, 0-10
    feedback_received_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    has_preferences: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    view: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class JourneyStepRecord(SQLModel, table=True):
    """One step of a journey as the read model last saw it."""

    __tablename__ = "journey_step"
    __table_args__ = (Index("ix_journey_step_status_scheduled", "status", "scheduled_for"),)

    reservation_id: str = Field(primary_key=True, max_length=128)
    key: str = Field(primary_key=True, max_length=128)
    hotel_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    status: str = Field(max_length=16)
    scheduled_for: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class JourneyUpsellRecord(SQLModel, table=True):
    """One offer of a journey; `sent_at` is when it went to the guest (else when it was
    answered), the moment the KPIs date an offer by."""

    __tablename__ = "journey_upsell"
    __table_args__ = (Index("ix_journey_upsell_hotel_sent", "hotel_id", "sent_at"),)

    reservation_id: str = Field(primary_key=True, max_length=128)
    offer: str = Field(primary_key=True, max_length=64)
    hotel_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))


_Row = TypeVar("_Row", JourneyStepRecord, JourneyUpsellRecord)


def columns_of(view: JourneyView) -> dict[str, Any]:
    """The journey row's columns, from the view."""
    return {
        "hotel_id": view.hotel_id,
        "stage": view.stage.value,
        "arrival": view.arrival,
        "departure": view.departure,
        "revision": view.revision,
        "guest_email": view.guest.email.lower() if view.guest.email else None,
        "guest_phone": view.guest.phone,
        "checkin_status": view.checkin.status.value,
        "feedback_score": view.feedback.score,
        "feedback_satisfaction": view.feedback.satisfaction,
        "feedback_received_at": view.feedback.received_at,
        "has_preferences": bool(view.preferences),
    }


def steps_of(view: JourneyView) -> list[JourneyStepRecord]:
    return [
        JourneyStepRecord(reservation_id=view.reservation_id, key=step.key, hotel_id=view.hotel_id,
                          kind=step.kind.value, status=step.status.value, scheduled_for=step.scheduled_for)
        for step in view.steps
    ]


def upsells_of(view: JourneyView) -> list[JourneyUpsellRecord]:
    return [
        JourneyUpsellRecord(reservation_id=view.reservation_id, offer=upsell.offer, hotel_id=view.hotel_id,
                            status=upsell.status.value, sent_at=upsell.offered_at or upsell.answered_at)
        for upsell in view.upsells
    ]


async def save_journey(*, session: AsyncSession, view: JourneyView) -> bool:
    """Store the view unless a newer revision is already stored; True when stored.

    The journey row is written every time; of its step and offer rows only those
    that changed are written (inserted, updated or deleted): a step that moves
    writes one row, not the journey's dozen. What changed is found against the
    view stored before, which the same transaction wrote beside the rows, so
    the rows are not read back; the statements are SQLAlchemy Core (a journey is
    recorded at every step: the ORM's unit of work was most of its cost)."""
    # Locked (PostgreSQL) so that two writes of one journey at once (an update's and the
    # main loop's) keep the newer revision whichever commits last.
    table = JourneyRecord.__table__  # type: ignore[attr-defined]
    stored = (await session.exec(  # (revision, view)
        select(table.c.revision, table.c.view).where(table.c.reservation_id == view.reservation_id)
        .with_for_update()
    )).first()
    if stored is not None and stored[0] > view.revision:
        return False
    now = utcnow()
    document = view.model_dump(mode="json")
    if stored is None:
        await session.exec(insert(table).values(
            reservation_id=view.reservation_id, view=document, created_at=now, updated_at=now, **columns_of(view)
        ))
        before: JourneyView | None = None
    else:
        await session.exec(
            update(table).where(table.c.reservation_id == view.reservation_id)
            .values(view=document, updated_at=now, **columns_of(view))
        )
        before = JourneyView.model_validate(stored[1])
    await _save_changed(session, JourneyStepRecord, "key",
                        steps_of(before) if before else [], steps_of(view))
    await _save_changed(session, JourneyUpsellRecord, "offer",
                        upsells_of(before) if before else [], upsells_of(view))
    await session.commit()
    return True


async def _save_changed(
    session: AsyncSession, record: type[_Row], key: str, before: Sequence[_Row], wanted: Sequence[_Row]
) -> None:
    """Take a journey's rows of `record` from `before` to `wanted`, writing only those
    that differ: a row whose values are all the same is left alone (no UPDATE)."""
    table = record.__table__  # type: ignore[attr-defined]
    known = {getattr(row, key): row.model_dump() for row in before}
    added: list[dict[str, Any]] = []
    for row in wanted:
        values = row.model_dump()
        earlier = known.pop(values[key], None)
        if earlier is None:
            added.append(values)
        elif earlier != values:
            changed = {name: value for name, value in values.items() if earlier[name] != value}
            await session.exec(
                update(table).where(table.c.reservation_id == values["reservation_id"],
                                    table.c[key] == values[key]).values(**changed)
            )
    if added:
        await session.exec(insert(table), params=added)
    for gone in known.values():
        await session.exec(
            delete(table).where(table.c.reservation_id == gone["reservation_id"], table.c[key] == gone[key])
        )


async def journey_of_guest(
    *, session: AsyncSession, address: str, hotels: Collection[str] | None = None
) -> JourneyRecord | None:
    """The running journey of the guest with this e-mail or phone, the latest arrival first
    (of these hotels, when given)."""
    column = JourneyRecord.guest_email if "@" in address else JourneyRecord.guest_phone
    in_scope = [] if hotels is None else [col(JourneyRecord.hotel_id).in_(sorted(hotels))]
    rows = await session.exec(
        select(JourneyRecord)
        .where(column == address, col(JourneyRecord.stage).not_in([stage.value for stage in FINAL_STAGES]),
               *in_scope)
        .order_by(col(JourneyRecord.arrival).desc())
        .limit(1)
    )
    return rows.first()


async def get_journey(*, session: AsyncSession, reservation_id: str) -> JourneyView | None:
    record = await session.get(JourneyRecord, reservation_id)
    return JourneyView.model_validate(record.view) if record is not None else None


async def hotels_of(*, session: AsyncSession, reservation_ids: list[str]) -> dict[str, str]:
    """The hotel of each of these reservations that has a journey."""
    if not reservation_ids:
        return {}
    rows = await session.exec(
        select(JourneyRecord.reservation_id, JourneyRecord.hotel_id)
        .where(col(JourneyRecord.reservation_id).in_(reservation_ids))
    )
    return dict(rows.all())


async def finished_stage(*, session: AsyncSession, reservation_id: str) -> Stage | None:
    """The final stage of a journey that has ended, or None."""
    stage = (
        await session.exec(select(JourneyRecord.stage).where(JourneyRecord.reservation_id == reservation_id))
    ).first()
    return Stage(stage) if stage in FINAL_STAGES else None

