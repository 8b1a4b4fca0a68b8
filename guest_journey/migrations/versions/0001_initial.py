"""The tables as `create_all` made them before there were migrations.

A database made that way is stamped at this revision (`guest_journey.schema`).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("arrival", sa.DateTime(timezone=True), nullable=False),
        sa.Column("departure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("guest_email", sa.String(length=320), nullable=True),
        sa.Column("guest_phone", sa.String(length=32), nullable=True),
        sa.Column("view", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id"),
    )
    op.create_index(op.f("ix_journey_arrival"), "journey", ["arrival"], unique=False)
    op.create_index(op.f("ix_journey_guest_email"), "journey", ["guest_email"], unique=False)
    op.create_index(op.f("ix_journey_guest_phone"), "journey", ["guest_phone"], unique=False)
    op.create_index(op.f("ix_journey_hotel_id"), "journey", ["hotel_id"], unique=False)
    op.create_index(op.f("ix_journey_stage"), "journey", ["stage"], unique=False)
    op.create_table(
        "kpi_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kpi", sa.String(length=32), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=True),
        sa.Column("window_kind", sa.String(length=8), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("target", sa.Float(), nullable=True),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_kpi_alert_hotel_id"), "kpi_alert", ["hotel_id"], unique=False)
    op.create_index(op.f("ix_kpi_alert_window_end"), "kpi_alert", ["window_end"], unique=False)
    op.create_index(
        "uq_kpi_alert",
        "kpi_alert",
        ["kpi", sa.literal_column("coalesce(hotel_id, '')"), "window_kind", "window_end", "kind"],
        unique=True,
    )
    op.create_table(
        "kpi_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=True),
        sa.Column("window_kind", sa.String(length=8), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("satisfaction_avg", sa.Float(), nullable=True),
        sa.Column("feedback_responses", sa.Integer(), nullable=False),
        sa.Column("nps", sa.Float(), nullable=True),
        sa.Column("upsell_offered", sa.Integer(), nullable=False),
        sa.Column("upsell_accepted", sa.Integer(), nullable=False),
        sa.Column("upsell_conversion", sa.Float(), nullable=True),
        sa.Column("avg_response_time_minutes", sa.Float(), nullable=True),
        sa.Column("messages_sent", sa.Integer(), nullable=False),
        sa.Column("failure_rate", sa.Float(), nullable=True),
        sa.Column("checkin_adoption", sa.Float(), nullable=True),
        sa.Column("journeys", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_kpi_snapshot_hotel_id"), "kpi_snapshot", ["hotel_id"], unique=False)
    op.create_index(
        op.f("ix_kpi_snapshot_window_end"), "kpi_snapshot", ["window_end"], unique=False
    )
    op.create_index(
        "uq_kpi_snapshot_window",
        "kpi_snapshot",
        [sa.literal_column("coalesce(hotel_id, '')"), "window_kind", "window_start"],
        unique=True,
    )
    op.create_table(
        "message",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=True),
        sa.Column("reservation_id", sa.String(length=128), nullable=True),
        sa.Column("hotel_id", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("step_key", sa.String(length=200), nullable=True),
        sa.Column("subject", sa.String(), nullable=True),
        sa.Column("body_text", sa.String(), nullable=True),
        sa.Column("body_html", sa.String(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=300), nullable=True),
        sa.Column("in_reply_to", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipient", sa.String(length=320), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("matched_by", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index(op.f("ix_message_created_at"), "message", ["created_at"], unique=False)
    op.create_index(
        "ix_message_hotel_summary",
        "message",
        ["hotel_id", "direction", "created_at", "channel", "status"],
        unique=False,
    )
    op.create_index(op.f("ix_message_in_reply_to"), "message", ["in_reply_to"], unique=False)
    op.create_index(
        op.f("ix_message_provider_message_id"), "message", ["provider_message_id"], unique=False
    )
    op.create_index(op.f("ix_message_recipient"), "message", ["recipient"], unique=False)
    op.create_index(
        "ix_message_replied_to", "message", ["id", "direction", "created_at"], unique=False
    )
    op.create_index(
        "ix_message_replies",
        "message",
        ["created_at", "hotel_id", "direction", "in_reply_to"],
        unique=False,
        sqlite_where=sa.text("in_reply_to IS NOT NULL"),
        postgresql_where=sa.text("in_reply_to IS NOT NULL"),
    )
    op.create_index(op.f("ix_message_reservation_id"), "message", ["reservation_id"], unique=False)
    op.create_index(
        "ix_message_summary",
        "message",
        ["direction", "created_at", "hotel_id", "channel", "status"],
        unique=False,
    )
    op.create_table(
        "snapshot_pending",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("seen_revision", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", "request_id"),
    )
    op.create_table(
        "unsubscribe",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reservation_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "message_status_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("event_id", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("message_id", "status", "at", name="uq_message_status_event_report"),
    )
    op.create_index(
        op.f("ix_message_status_event_message_id"),
        "message_status_event",
        ["message_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_message_status_event_message_id"), table_name="message_status_event")
    op.drop_table("message_status_event")
    op.drop_table("unsubscribe")
    op.drop_table("snapshot_pending")
    op.drop_index("ix_message_summary", table_name="message")
    op.drop_index(op.f("ix_message_reservation_id"), table_name="message")
    op.drop_index(
        "ix_message_replies",
        table_name="message",
        sqlite_where=sa.text("in_reply_to IS NOT NULL"),
        postgresql_where=sa.text("in_reply_to IS NOT NULL"),
    )
    op.drop_index("ix_message_replied_to", table_name="message")
    op.drop_index(op.f("ix_message_recipient"), table_name="message")
    op.drop_index(op.f("ix_message_provider_message_id"), table_name="message")
    op.drop_index(op.f("ix_message_in_reply_to"), table_name="message")
    op.drop_index("ix_message_hotel_summary", table_name="message")
    op.drop_index(op.f("ix_message_created_at"), table_name="message")
    op.drop_table("message")
    op.drop_index("uq_kpi_snapshot_window", table_name="kpi_snapshot")
    op.drop_index(op.f("ix_kpi_snapshot_window_end"), table_name="kpi_snapshot")
    op.drop_index(op.f("ix_kpi_snapshot_hotel_id"), table_name="kpi_snapshot")
    op.drop_table("kpi_snapshot")
    op.drop_index("uq_kpi_alert", table_name="kpi_alert")
    op.drop_index(op.f("ix_kpi_alert_window_end"), table_name="kpi_alert")
    op.drop_index(op.f("ix_kpi_alert_hotel_id"), table_name="kpi_alert")
    op.drop_table("kpi_alert")
    op.drop_index(op.f("ix_journey_stage"), table_name="journey")
    op.drop_index(op.f("ix_journey_hotel_id"), table_name="journey")
    op.drop_index(op.f("ix_journey_guest_phone"), table_name="journey")
    op.drop_index(op.f("ix_journey_guest_email"), table_name="journey")
    op.drop_index(op.f("ix_journey_arrival"), table_name="journey")
    op.drop_table("journey")
