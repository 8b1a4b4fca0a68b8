"""The free text of staff messages (`communications.staff_texts`): the journey keeps its id only.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_text",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_staff_text_reservation_id"), "staff_text", ["reservation_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staff_text_reservation_id"), table_name="staff_text")
    op.drop_table("staff_text")
