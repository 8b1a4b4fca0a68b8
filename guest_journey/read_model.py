"""The journey read model: the latest state of every journey, running or finished,
written only by the workflow's `record_journey` activity."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
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
    view: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


async def save_journey(*, session: AsyncSession, view: JourneyView) -> bool:
    """Store the view unless a newer revision is already stored; True when stored."""
    record = await session.get(JourneyRecord, view.reservation_id)
    if record is not None and record.revision > view.revision:
        return False
    if record is None:
        record = JourneyRecord(
            reservation_id=view.reservation_id,
            hotel_id=view.hotel_id,
            stage=view.stage.value,
            arrival=view.arrival,
            departure=view.departure,
            revision=view.revision,
            view=view.model_dump(mode="json"),
        )
    else:
        record.hotel_id = view.hotel_id
        record.stage = view.stage.value
        record.arrival = view.arrival
        record.departure = view.departure
        record.revision = view.revision
        record.view = view.model_dump(mode="json")
        record.updated_at = utcnow()
    _set_contacts(record, view)
    session.add(record)
    await session.commit()
    return True


def _set_contacts(record: JourneyRecord, view: JourneyView) -> None:
    """Contacts kept in columns of their own, so an inbound message finds its guest."""
    record.guest_email = view.guest.email.lower() if view.guest.email else None
    record.guest_phone = view.guest.phone


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

