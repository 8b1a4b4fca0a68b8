"""The read model in columns: a journey's check-in status, feedback answers and
preferences flag as columns, and its steps and offers as rows of their own
(`journey_step`, `journey_upsell`), filled from the stored views.

Downgrade drops them; the views keep everything they were made from.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from guest_journey.database import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 1000

journey = sa.table(
    "journey",
    sa.column("reservation_id", sa.String()),
    sa.column("hotel_id", sa.String()),
    sa.column("view", sa.JSON()),
    sa.column("checkin_status", sa.String()),
    sa.column("feedback_score", sa.Integer()),
    sa.column("feedback_satisfaction", sa.Integer()),
    sa.column("feedback_received_at", UTCDateTime()),
    sa.column("has_preferences", sa.Boolean()),
)


def upgrade() -> None:
    with op.batch_alter_table("journey") as table:
        table.add_column(sa.Column("checkin_status", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("feedback_score", sa.Integer(), nullable=True))
        table.add_column(sa.Column("feedback_satisfaction", sa.Integer(), nullable=True))
        table.add_column(sa.Column("feedback_received_at", UTCDateTime(), nullable=True))
        table.add_column(sa.Column("has_preferences", sa.Boolean(), nullable=False, server_default="0"))
    op.create_index(op.f("ix_journey_feedback_received_at"), "journey", ["feedback_received_at"], unique=False)
    steps = op.create_table(
        "journey_step",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("reservation_id", "key"),
    )
    op.create_index("ix_journey_step_status_scheduled", "journey_step", ["status", "scheduled_for"], unique=False)
    upsells = op.create_table(
        "journey_upsell",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("offer", sa.String(length=64), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("reservation_id", "offer"),
    )
    op.create_index("ix_journey_upsell_hotel_sent", "journey_upsell", ["hotel_id", "sent_at"], unique=False)
    op.create_index(op.f("ix_journey_upsell_sent_at"), "journey_upsell", ["sent_at"], unique=False)
    _fill_from_views(steps, upsells)


def _fill_from_views(steps: sa.Table, upsells: sa.Table) -> None:
    """Each stored view's columns and rows, in batches of `BATCH` journeys."""
    connection = op.get_bind()
    last = ""
    while True:
        rows = connection.execute(
            sa.select(journey.c.reservation_id, journey.c.hotel_id, journey.c.view)
            .where(journey.c.reservation_id > last)
            .order_by(journey.c.reservation_id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        step_rows: list[dict[str, Any]] = []
        upsell_rows: list[dict[str, Any]] = []
        for reservation_id, hotel_id, view in rows:
            feedback = view.get("feedback") or {}
            connection.execute(
                journey.update().where(journey.c.reservation_id == reservation_id).values(
                    checkin_status=(view.get("checkin") or {}).get("status"),
                    feedback_score=feedback.get("score"),
                    feedback_satisfaction=feedback.get("satisfaction"),
                    feedback_received_at=_moment(feedback.get("received_at")),
                    has_preferences=bool(view.get("preferences")),
                )
            )
            step_rows += [
                {"reservation_id": reservation_id, "key": step["key"], "hotel_id": hotel_id, "kind": step["kind"],
                 "status": step["status"], "scheduled_for": _moment(step.get("scheduled_for"))}
                for step in view.get("steps") or []
            ]
            upsell_rows += [
                {"reservation_id": reservation_id, "offer": upsell["offer"], "hotel_id": hotel_id,
                 "status": upsell.get("status", "planned"),
                 "sent_at": _moment(upsell.get("offered_at") or upsell.get("answered_at"))}
                for upsell in view.get("upsells") or []
            ]
        if step_rows:
            connection.execute(steps.insert(), step_rows)
        if upsell_rows:
            connection.execute(upsells.insert(), upsell_rows)
        last = rows[-1][0]


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def downgrade() -> None:
    op.drop_index(op.f("ix_journey_upsell_sent_at"), table_name="journey_upsell")
    op.drop_index("ix_journey_upsell_hotel_sent", table_name="journey_upsell")
    op.drop_table("journey_upsell")
    op.drop_index("ix_journey_step_status_scheduled", table_name="journey_step")
    op.drop_table("journey_step")
    op.drop_index(op.f("ix_journey_feedback_received_at"), table_name="journey")
    with op.batch_alter_table("journey") as table:
        table.drop_column("has_preferences")
        table.drop_column("feedback_received_at")
        table.drop_column("feedback_satisfaction")
        table.drop_column("feedback_score")
        table.drop_column("checkin_status")
