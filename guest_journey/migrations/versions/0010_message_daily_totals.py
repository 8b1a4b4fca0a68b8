"""Daily totals of the messages (`message_day`, `message_reply_day`: see
`communications.message_days`), kept by triggers on `message` in the statement
that writes a message, and filled here from the messages already stored.

The message table is locked against writes while the totals are filled and the
triggers made (PostgreSQL: `SHARE ROW EXCLUSIVE`; SQLite: the upgrade's write
lock), so no message is counted twice or missed. Downgrade drops the triggers
and the tables; the messages are untouched.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _sqlite_microseconds(moment: str) -> str:
    """A stored time ('YYYY-MM-DD HH:MM:SS.ffffff') in whole microseconds since the epoch."""
    return f"(CAST(strftime('%s', {moment}) AS INTEGER) * 1000000 + CAST(substr({moment}, 21, 6) AS INTEGER))"


def _sqlite_reply_insert(row: str) -> str:
    return f"""
  INSERT INTO message_reply_day (day, hotel_id, direction, replied_direction, replies, reply_microseconds)
  SELECT date({row}.created_at), coalesce({row}.hotel_id, ''), {row}.direction, replied.direction, 1,
         {_sqlite_microseconds(f'{row}.created_at')} - {_sqlite_microseconds('replied.created_at')}
  FROM message AS replied WHERE replied.id = {row}.in_reply_to
  ON CONFLICT (day, hotel_id, direction, replied_direction) DO UPDATE SET
    replies = replies + 1, reply_microseconds = reply_microseconds + excluded.reply_microseconds;"""


_SQLITE_REPLY_SUBTRACT = f"""
  UPDATE message_reply_day SET
    replies = replies - 1,
    reply_microseconds = reply_microseconds - (
      SELECT {_sqlite_microseconds('OLD.created_at')} - {_sqlite_microseconds('replied.created_at')}
      FROM message AS replied WHERE replied.id = OLD.in_reply_to)
  WHERE day = date(OLD.created_at) AND hotel_id = coalesce(OLD.hotel_id, '') AND direction = OLD.direction
    AND replied_direction = (SELECT replied.direction FROM message AS replied WHERE replied.id = OLD.in_reply_to);"""

_SQLITE_DAY_SUBTRACT = """
  UPDATE message_day SET messages = messages - 1
  WHERE OLD.direction = 'outbound' AND day = date(OLD.created_at) AND hotel_id = coalesce(OLD.hotel_id, '')
    AND channel = OLD.channel AND status = OLD.status;"""

_SQLITE_DAY_ADD = """
  INSERT INTO message_day (day, hotel_id, channel, status, messages)
  SELECT date(NEW.created_at), coalesce(NEW.hotel_id, ''), NEW.channel, NEW.status, 1
  WHERE NEW.direction = 'outbound'
  ON CONFLICT (day, hotel_id, channel, status) DO UPDATE SET messages = messages + 1;"""

SQLITE_TRIGGERS = {
    "message_day_insert": f"""
CREATE TRIGGER message_day_insert AFTER INSERT ON message BEGIN{_SQLITE_DAY_ADD}
END""",
    "message_day_update": f"""
CREATE TRIGGER message_day_update AFTER UPDATE OF direction, created_at, hotel_id, channel, status ON message
WHEN OLD.direction IS NOT NEW.direction OR OLD.created_at IS NOT NEW.created_at OR OLD.hotel_id IS NOT NEW.hotel_id
  OR OLD.channel IS NOT NEW.channel OR OLD.status IS NOT NEW.status
BEGIN{_SQLITE_DAY_SUBTRACT}{_SQLITE_DAY_ADD}
END""",
    "message_day_delete": f"""
CREATE TRIGGER message_day_delete AFTER DELETE ON message BEGIN{_SQLITE_DAY_SUBTRACT}
END""",
    "message_reply_day_insert": f"""
CREATE TRIGGER message_reply_day_insert AFTER INSERT ON message WHEN NEW.in_reply_to IS NOT NULL
BEGIN{_sqlite_reply_insert('NEW')}
END""",
    "message_reply_day_update": f"""
CREATE TRIGGER message_reply_day_update AFTER UPDATE OF direction, created_at, hotel_id, in_reply_to ON message
WHEN OLD.direction IS NOT NEW.direction OR OLD.created_at IS NOT NEW.created_at OR OLD.hotel_id IS NOT NEW.hotel_id
  OR OLD.in_reply_to IS NOT NEW.in_reply_to
BEGIN{_SQLITE_REPLY_SUBTRACT}{_sqlite_reply_insert('NEW')}
END""",
    "message_reply_day_delete": f"""
CREATE TRIGGER message_reply_day_delete AFTER DELETE ON message WHEN OLD.in_reply_to IS NOT NULL
BEGIN{_SQLITE_REPLY_SUBTRACT}
END""",
}

_PG_DAY = "(({m}.created_at AT TIME ZONE 'UTC')::date)"

POSTGRESQL_FUNCTIONS = {
    "message_day_count(message, integer)": f"""
CREATE FUNCTION message_day_count(m message, delta integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF m.direction = 'outbound' THEN
    INSERT INTO message_day (day, hotel_id, channel, status, messages)
    VALUES ({_PG_DAY.format(m='m')}, coalesce(m.hotel_id, ''), m.channel, m.status, delta)
    ON CONFLICT (day, hotel_id, channel, status) DO UPDATE SET messages = message_day.messages + EXCLUDED.messages;
  END IF;
END $$""",
    "message_reply_day_count(message, integer)": f"""
CREATE FUNCTION message_reply_day_count(m message, delta integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  replied record;
BEGIN
  IF m.in_reply_to IS NULL THEN
    RETURN;
  END IF;
  SELECT direction, created_at INTO replied FROM message WHERE id = m.in_reply_to;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  INSERT INTO message_reply_day (day, hotel_id, direction, replied_direction, replies, reply_microseconds)
  VALUES ({_PG_DAY.format(m='m')}, coalesce(m.hotel_id, ''), m.direction, replied.direction, delta,
          delta * (extract(epoch FROM m.created_at - replied.created_at) * 1000000)::bigint)
  ON CONFLICT (day, hotel_id, direction, replied_direction) DO UPDATE SET
    replies = message_reply_day.replies + EXCLUDED.replies,
    reply_microseconds = message_reply_day.reply_microseconds + EXCLUDED.reply_microseconds;
END $$""",
    # An update takes its two rows of `message_day` in the rows' key order, so that
    # concurrent updates never wait on each other in a circle.
    "message_totals()": f"""
CREATE FUNCTION message_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM message_day_count(NEW, 1);
    PERFORM message_reply_day_count(NEW, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM message_day_count(OLD, -1);
    PERFORM message_reply_day_count(OLD, -1);
  ELSE
    IF (OLD.direction, OLD.created_at, OLD.hotel_id, OLD.channel, OLD.status)
       IS DISTINCT FROM (NEW.direction, NEW.created_at, NEW.hotel_id, NEW.channel, NEW.status) THEN
      IF ({_PG_DAY.format(m='OLD')}, coalesce(OLD.hotel_id, ''), OLD.channel, OLD.status)
         <= ({_PG_DAY.format(m='NEW')}, coalesce(NEW.hotel_id, ''), NEW.channel, NEW.status) THEN
        PERFORM message_day_count(OLD, -1);
        PERFORM message_day_count(NEW, 1);
      ELSE
        PERFORM message_day_count(NEW, 1);
        PERFORM message_day_count(OLD, -1);
      END IF;
    END IF;
    IF (OLD.direction, OLD.created_at, OLD.hotel_id, OLD.in_reply_to)
       IS DISTINCT FROM (NEW.direction, NEW.created_at, NEW.hotel_id, NEW.in_reply_to) THEN
      PERFORM message_reply_day_count(OLD, -1);
      PERFORM message_reply_day_count(NEW, 1);
    END IF;
  END IF;
  RETURN NULL;
END $$""",
}

POSTGRESQL_TRIGGERS = {
    "message_totals_insert_delete": """
CREATE TRIGGER message_totals_insert_delete AFTER INSERT OR DELETE ON message
FOR EACH ROW EXECUTE FUNCTION message_totals()""",
    "message_totals_update": """
CREATE TRIGGER message_totals_update
AFTER UPDATE OF direction, created_at, hotel_id, channel, status, in_reply_to ON message
FOR EACH ROW WHEN (
  (OLD.direction, OLD.created_at, OLD.hotel_id, OLD.channel, OLD.status, OLD.in_reply_to)
  IS DISTINCT FROM (NEW.direction, NEW.created_at, NEW.hotel_id, NEW.channel, NEW.status, NEW.in_reply_to))
EXECUTE FUNCTION message_totals()""",
}


def _fill(dialect: str) -> list[str]:
    if dialect == "sqlite":
        day, reply_day = "date(created_at)", "date(reply.created_at)"
        between = f"{_sqlite_microseconds('reply.created_at')} - {_sqlite_microseconds('replied.created_at')}"
    else:
        day, reply_day = _PG_DAY.format(m="message"), _PG_DAY.format(m="reply")
        between = "(extract(epoch FROM reply.created_at - replied.created_at) * 1000000)::bigint"
    return [
        f"""INSERT INTO message_day (day, hotel_id, channel, status, messages)
SELECT {day}, coalesce(hotel_id, ''), channel, status, count(*) FROM message
WHERE direction = 'outbound' GROUP BY 1, 2, 3, 4""",
        f"""INSERT INTO message_reply_day (day, hotel_id, direction, replied_direction, replies, reply_microseconds)
SELECT {reply_day}, coalesce(reply.hotel_id, ''), reply.direction, replied.direction, count(*), sum({between})
FROM message AS reply JOIN message AS replied ON replied.id = reply.in_reply_to
WHERE reply.in_reply_to IS NOT NULL GROUP BY 1, 2, 3, 4""",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("LOCK TABLE message IN SHARE ROW EXCLUSIVE MODE")
    op.create_table(
        "message_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "hotel_id", "channel", "status"),
    )
    op.create_table(
        "message_reply_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("replied_direction", sa.String(length=16), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("reply_microseconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "hotel_id", "direction", "replied_direction"),
    )
    for statement in _fill(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        for statement in (*POSTGRESQL_FUNCTIONS.values(), *POSTGRESQL_TRIGGERS.values()):
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in POSTGRESQL_TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON message")
        for signature in POSTGRESQL_FUNCTIONS:
            op.execute(f"DROP FUNCTION {signature}")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("message_reply_day")
    op.drop_table("message_day")
