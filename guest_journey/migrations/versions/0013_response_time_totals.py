"""Response times kept, not recomputed: each staff reply that answered a guest
carries its response time (`message.response_microseconds`, stamped when the
reply is created: `communications.response_times`), and `message_response_day`
sums them by UTC day and hotel, kept by triggers on `message` like the other
daily totals (`communications.message_days`), so all time costs what a day costs.

Replies stored before this revision are stamped here by the rule they were read
by until now: from the first guest message of the conversation (reservation and
channel) that no earlier staff reply followed, to the reply. The message table is
locked against writes meanwhile (PostgreSQL: `SHARE ROW EXCLUSIVE`; SQLite: the
upgrade's write lock). Downgrade drops the triggers, the table and the column.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

STAFF_REPLY = "{m}.direction = 'outbound' AND {m}.step_key LIKE 'manual:%' AND {m}.reservation_id IS NOT NULL"


def _sqlite_microseconds(moment: str) -> str:
    """A stored time ('YYYY-MM-DD HH:MM:SS.ffffff') in whole microseconds since the epoch."""
    return f"(CAST(strftime('%s', {moment}) AS INTEGER) * 1000000 + CAST(substr({moment}, 21, 6) AS INTEGER))"


def _waited(dialect: str) -> str:
    """The microseconds from the first guest message no earlier staff reply followed to
    the reply `message` (NULL when there is none): `response_times.waiting_since`."""
    first_waiting = f"""(SELECT min(guest.created_at) FROM message AS guest
  WHERE guest.reservation_id = message.reservation_id AND guest.channel = message.channel
    AND guest.direction = 'inbound' AND guest.created_at <= message.created_at
    AND NOT EXISTS (SELECT 1 FROM message AS staff
      WHERE staff.reservation_id = guest.reservation_id AND staff.channel = guest.channel
        AND {STAFF_REPLY.format(m='staff')}
        AND staff.created_at >= guest.created_at AND staff.created_at < message.created_at))"""
    if dialect == "sqlite":
        return f"{_sqlite_microseconds('message.created_at')} - {_sqlite_microseconds(first_waiting)}"
    return f"(extract(epoch FROM message.created_at - {first_waiting}) * 1000000)::bigint"


_PG_DAY = "(({m}.created_at AT TIME ZONE 'UTC')::date)"

_SQLITE_ADD = """
  INSERT INTO message_response_day (day, hotel_id, replies, response_microseconds)
  SELECT date(NEW.created_at), coalesce(NEW.hotel_id, ''), 1, NEW.response_microseconds
  WHERE NEW.response_microseconds IS NOT NULL
  ON CONFLICT (day, hotel_id) DO UPDATE SET
    replies = replies + 1, response_microseconds = response_microseconds + excluded.response_microseconds;"""

_SQLITE_SUBTRACT = """
  UPDATE message_response_day SET
    replies = replies - 1, response_microseconds = response_microseconds - OLD.response_microseconds
  WHERE OLD.response_microseconds IS NOT NULL AND day = date(OLD.created_at)
    AND hotel_id = coalesce(OLD.hotel_id, '');"""

SQLITE_TRIGGERS = {
    "message_response_day_insert": f"""
CREATE TRIGGER message_response_day_insert AFTER INSERT ON message WHEN NEW.response_microseconds IS NOT NULL
BEGIN{_SQLITE_ADD}
END""",
    "message_response_day_update": f"""
CREATE TRIGGER message_response_day_update AFTER UPDATE OF created_at, hotel_id, response_microseconds ON message
WHEN OLD.created_at IS NOT NEW.created_at OR OLD.hotel_id IS NOT NEW.hotel_id
  OR OLD.response_microseconds IS NOT NEW.response_microseconds
BEGIN{_SQLITE_SUBTRACT}{_SQLITE_ADD}
END""",
    "message_response_day_delete": f"""
CREATE TRIGGER message_response_day_delete AFTER DELETE ON message WHEN OLD.response_microseconds IS NOT NULL
BEGIN{_SQLITE_SUBTRACT}
END""",
}

POSTGRESQL_FUNCTIONS = {
    "message_response_day_count(message, integer)": f"""
CREATE FUNCTION message_response_day_count(m message, delta integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF m.response_microseconds IS NOT NULL THEN
    INSERT INTO message_response_day (day, hotel_id, replies, response_microseconds)
    VALUES ({_PG_DAY.format(m='m')}, coalesce(m.hotel_id, ''), delta, delta * m.response_microseconds)
    ON CONFLICT (day, hotel_id) DO UPDATE SET
      replies = message_response_day.replies + EXCLUDED.replies,
      response_microseconds = message_response_day.response_microseconds + EXCLUDED.response_microseconds;
  END IF;
END $$""",
    # An update takes its two rows in the rows' key order, so that concurrent
    # updates never wait on each other in a circle.
    "message_response_totals()": f"""
CREATE FUNCTION message_response_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM message_response_day_count(NEW, 1);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM message_response_day_count(OLD, -1);
  ELSIF ({_PG_DAY.format(m='OLD')}, coalesce(OLD.hotel_id, ''))
        <= ({_PG_DAY.format(m='NEW')}, coalesce(NEW.hotel_id, '')) THEN
    PERFORM message_response_day_count(OLD, -1);
    PERFORM message_response_day_count(NEW, 1);
  ELSE
    PERFORM message_response_day_count(NEW, 1);
    PERFORM message_response_day_count(OLD, -1);
  END IF;
  RETURN NULL;
END $$""",
}

POSTGRESQL_TRIGGERS = {
    "message_response_totals_insert": """
CREATE TRIGGER message_response_totals_insert AFTER INSERT ON message
FOR EACH ROW WHEN (NEW.response_microseconds IS NOT NULL) EXECUTE FUNCTION message_response_totals()""",
    "message_response_totals_delete": """
CREATE TRIGGER message_response_totals_delete AFTER DELETE ON message
FOR EACH ROW WHEN (OLD.response_microseconds IS NOT NULL) EXECUTE FUNCTION message_response_totals()""",
    "message_response_totals_update": """
CREATE TRIGGER message_response_totals_update
AFTER UPDATE OF created_at, hotel_id, response_microseconds ON message
FOR EACH ROW WHEN (
  (OLD.created_at, OLD.hotel_id, OLD.response_microseconds)
  IS DISTINCT FROM (NEW.created_at, NEW.hotel_id, NEW.response_microseconds))
EXECUTE FUNCTION message_response_totals()""",
}


def _fill(dialect: str) -> list[str]:
    day = "date(created_at)" if dialect == "sqlite" else _PG_DAY.format(m="message")
    return [
        f"UPDATE message SET response_microseconds = {_waited(dialect)} WHERE {STAFF_REPLY.format(m='message')}",
        f"""INSERT INTO message_response_day (day, hotel_id, replies, response_microseconds)
SELECT {day}, coalesce(hotel_id, ''), count(*), sum(response_microseconds) FROM message
WHERE response_microseconds IS NOT NULL GROUP BY 1, 2""",
    ]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("LOCK TABLE message IN SHARE ROW EXCLUSIVE MODE")
    # Added and dropped in place (SQLite 3.35+ too): copying the table would drop its triggers.
    op.add_column("message", sa.Column("response_microseconds", sa.BigInteger(), nullable=True))
    op.create_table(
        "message_response_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("hotel_id", sa.String(length=64), nullable=False),
        sa.Column("replies", sa.Integer(), nullable=False),
        sa.Column("response_microseconds", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "hotel_id"),
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
    op.drop_table("message_response_day")
    op.execute("ALTER TABLE message DROP COLUMN response_microseconds")
