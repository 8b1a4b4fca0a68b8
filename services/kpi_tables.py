"""The KPI tables: one snapshot per measured window (`kpi_snapshot`) and the
alerts raised on it (`kpi_alert`), the kinds of window and alert, and an alert
as the log, the webhook and the dashboard carry it (`KpiAlertOut`).

A snapshot measures one window `[window_start, window_end)` of one day or one
week (`window_kind_of`), for one hotel or (hotel_id None) for all; its figures
are described in `services.kpi_measure`. Both tables keep one row per window
and hotel, "all hotels" included (the unique indexes coalesce a null hotel to
''), and `same_hotel` selects those rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Column, Index, text
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Field, SQLModel

from guest_journey.database import UTCDateTime, utcnow
from guest_journey.kpis import Kpi


class WindowKind(StrEnum):
    day = "day"
    week = "week"

    @property
    def length(self) -> timedelta:
        return timedelta(days=1) if self is WindowKind.day else timedelta(days=7)


class AlertKind(StrEnum):
    trend = "trend"
    threshold = "threshold"


def window_kind_of(window_start: datetime, window_end: datetime) -> WindowKind:
    """The kind of a window from its bounds: one day or one week, with offsets."""
    for name, moment in (("window_start", window_start), ("window_end", window_end)):
        if moment.tzinfo is None:
            raise ValueError(f"{name} must carry its offset")
    for kind in WindowKind:
        if window_end - window_start == kind.length:
            return kind
    raise ValueError("a KPI window is one day or one week long")


class KpiSnapshot(SQLModel, table=True):
    __tablename__ = "kpi_snapshot"
    __table_args__ = (
        Index(
            "uq_kpi_snapshot_window",
            text("coalesce(hotel_id, '')"),
            "window_kind",
            "window_start",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    hotel_id: str | None = Field(default=None, index=True, max_length=64)
    window_kind: str = Field(max_length=8)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    satisfaction_avg: float | None = None
    satisfaction_responses: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    feedback_responses: int = 0
    nps: float | None = None
    upsell_offered: int = 0
    upsell_accepted: int = 0
    upsell_conversion: float | None = None
    avg_response_time_minutes: float | None = None
    messages_sent: int = 0
    failure_rate: float | None = None
    checkin_adoption: float | None = None
    journeys: int = 0
    computed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))

    def value(self, kpi: Kpi) -> float | None:
        measured: float | None = getattr(self, kpi.value)
        return measured


class KpiAlert(SQLModel, table=True):
    __tablename__ = "kpi_alert"
    __table_args__ = (
        Index(
            "uq_kpi_alert",
            "kpi",
            text("coalesce(hotel_id, '')"),
            "window_kind",
            "window_end",
            "kind",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kpi: str = Field(max_length=32)
    hotel_id: str | None = Field(default=None, index=True, max_length=64)
    window_kind: str = Field(max_length=8)
    window_start: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    window_end: datetime = Field(sa_column=Column(UTCDateTime(), index=True, nullable=False))
    kind: str = Field(max_length=16)
    value: float
    target: float | None = None
    message: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    notified_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class KpiAlertOut(BaseModel):
    """An alert as the log, the webhook and the dashboard carry it."""

    kpi: Kpi
    hotel_id: str | None
    window_kind: WindowKind
    window_start: AwareDatetime
    window_end: AwareDatetime
    kind: AlertKind
    value: float
    target: float | None
    message: str
    created_at: AwareDatetime

    @classmethod
    def of(cls, alert: KpiAlert) -> KpiAlertOut:
        return cls.model_validate(alert, from_attributes=True)


def same_hotel(column: Any, hotel_id: str | None) -> ColumnElement[bool]:
    """The rows of one hotel, or (hotel_id None) the rows of all hotels together."""
    result: ColumnElement[bool] = column.is_(None) if hotel_id is None else column == hotel_id
    return result
