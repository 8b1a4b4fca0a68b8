"""The audit trail of personal-data requests (`guest_journey.gdpr_audit`).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gdpr_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_gdpr_audit_reservation_id"), "gdpr_audit", ["reservation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gdpr_audit_reservation_id"), table_name="gdpr_audit")
    op.drop_table("gdpr_audit")
