"""Per-journey data keys (`guest_journey.journey_keys`): the payload codec's keys, destroyed by an erase.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey_data_key",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index(op.f("ix_journey_data_key_workflow_id"), "journey_data_key", ["workflow_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_journey_data_key_workflow_id"), table_name="journey_data_key")
    op.drop_table("journey_data_key")
