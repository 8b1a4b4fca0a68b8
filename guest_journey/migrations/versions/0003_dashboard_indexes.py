"""Indexes of the staff pages, the dashboard and the journey timeline.

Journeys by stage and arrival, of all hotels or of one, replace the indexes on
`hotel_id` and `stage` alone (their leading columns); a journey's messages in
order replace the index on `reservation_id` alone.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_journey_stage_arrival", "journey", ["stage", "arrival"], unique=False)
    op.create_index("ix_journey_hotel_stage_arrival", "journey", ["hotel_id", "stage", "arrival"], unique=False)
    op.drop_index("ix_journey_hotel_id", table_name="journey")
    op.drop_index("ix_journey_stage", table_name="journey")
    op.create_index("ix_message_reservation_timeline", "message", ["reservation_id", "created_at"], unique=False)
    op.drop_index("ix_message_reservation_id", table_name="message")


def downgrade() -> None:
    op.create_index("ix_message_reservation_id", "message", ["reservation_id"], unique=False)
    op.drop_index("ix_message_reservation_timeline", table_name="message")
    op.create_index("ix_journey_stage", "journey", ["stage"], unique=False)
    op.create_index("ix_journey_hotel_id", "journey", ["hotel_id"], unique=False)
    op.drop_index("ix_journey_hotel_stage_arrival", table_name="journey")
    op.drop_index("ix_journey_stage_arrival", table_name="journey")
