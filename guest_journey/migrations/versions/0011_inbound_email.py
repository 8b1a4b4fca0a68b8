"""Guest e-mails taken in by SMTP or from a mailbox, once per Message-ID
(`communications.mail_in_store`): the replayed Message-ID finds its row.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guest_journey.database import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_email",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("message_key", sa.String(length=64), nullable=False),
        sa.Column("message_id_header", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("message_ref", sa.String(length=64), nullable=True),
        sa.Column("reservation_id", sa.String(length=128), nullable=True),
        sa.Column("hotel_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_key"),
    )
    op.create_index("ix_inbound_email_message_ref", "inbound_email", ["message_ref"])
    op.create_index("ix_inbound_email_unmatched", "inbound_email", ["reservation_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_email_unmatched", table_name="inbound_email")
    op.drop_index("ix_inbound_email_message_ref", table_name="inbound_email")
    op.drop_table("inbound_email")
