"""The inbox: what staff decided about a conversation (`conversation_state`:
assignee, done), an index on the recent messages of conversations and one on
when a message last changed (the inbox's live check).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from guest_journey.database import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CONVERSATION_MESSAGES = "direction = 'inbound' OR step_key LIKE 'manual:%'"


def upgrade() -> None:
    op.create_table(
        "conversation_state",
        sa.Column("reservation_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=True),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", UTCDateTime(), nullable=True),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("reservation_id", "channel"),
    )
    op.create_index("ix_conversation_state_assignee", "conversation_state", ["assignee"])
    op.create_index("ix_conversation_state_updated_at", "conversation_state", ["updated_at"])
    op.create_index(
        "ix_message_conversation", "message", ["created_at", "reservation_id", "channel"],
        sqlite_where=sa.text(CONVERSATION_MESSAGES), postgresql_where=sa.text(CONVERSATION_MESSAGES),
    )
    op.create_index("ix_message_updated_at", "message", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_message_updated_at", table_name="message")
    op.drop_index("ix_message_conversation", table_name="message")
    op.drop_index("ix_conversation_state_updated_at", table_name="conversation_state")
    op.drop_index("ix_conversation_state_assignee", table_name="conversation_state")
    op.drop_table("conversation_state")
