"""KPI snapshots count the answers to the satisfaction question apart from the NPS answers.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kpi_snapshot") as table:
        table.add_column(sa.Column("satisfaction_responses", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("kpi_snapshot") as table:
        table.drop_column("satisfaction_responses")
