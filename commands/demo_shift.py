"""Moving a finished demo's rows back in time, by whole days, so its weeks end now.

The time-skipping server's clock starts at the real time and only moves forward, so
`guest-journey demo` simulates weeks that end in the future. Once every one of its
journeys has completed (nothing in Temporal refers to them any more, and the test
server is gone), every moment stored for its reservations is moved back by the same
whole number of days: each date and time column of every table that has a
`reservation_id`, and each moment in a journey's view document. Whole days keep
local times (15:00 stays 15:00) and UTC days whole, so the messages' daily totals
move with their messages (the database's triggers follow `created_at`,
`communications.message_days`). Texts already written (a message's body, an
e-mail in the outbox) keep the dates they were written with.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime
from guest_journey.journeys import JourneyView
from guest_journey.read_model import JourneyRecord

DAY = timedelta(days=1)


def days_back(simulated_end: datetime, now: datetime) -> timedelta:
    """The whole days that bring `simulated_end` to `now` or just before it."""
    return DAY * max(0, math.ceil((simulated_end - now) / DAY))


def moved(value: Any, shift: timedelta) -> Any:
    """`value` with every datetime in it (in dicts and lists too) moved back by `shift`."""
    if isinstance(value, datetime):
        return value - shift
    if isinstance(value, dict):
        return {key: moved(item, shift) for key, item in value.items()}
    if isinstance(value, list):
        return [moved(item, shift) for item in value]
    return value


async def shift_reservations(*, session: AsyncSession, prefix: str, shift: timedelta) -> int:
    """Move every stored moment of the reservations whose id starts with `prefix` back by
    `shift` (module rules); how many rows changed."""
    if not shift:
        return 0
    changed = 0
    connection = await session.connection()
    for table in SQLModel.metadata.sorted_tables:
        moments = [column for column in table.columns if isinstance(column.type, UTCDateTime)]
        if "reservation_id" in table.columns and moments:
            changed += await _shift_table(connection, table, moments, prefix, shift)
    records = await session.exec(select(JourneyRecord).where(col(JourneyRecord.reservation_id).startswith(prefix)))
    for record in records.all():
        view = JourneyView.model_validate(record.view)
        record.view = JourneyView.model_validate(moved(view.model_dump(), shift)).model_dump(mode="json")
        session.add(record)
    await session.commit()
    return changed


async def _shift_table(
    connection: AsyncConnection, table: Table, moments: list[Any], prefix: str, shift: timedelta
) -> int:
    keys = list(table.primary_key.columns)
    rows = (await connection.execute(
        select_columns(*keys, *moments).where(table.c.reservation_id.startswith(prefix))
    )).all()
    if not rows:
        return 0
    statement = (
        update(table)
        .where(*(key == bindparam(f"key_{key.name}") for key in keys))
        .values({column.name: bindparam(f"new_{column.name}", type_=column.type) for column in moments})
    )
    parameters = [
        {**{f"key_{key.name}": row._mapping[key] for key in keys},
         **{f"new_{column.name}": moved(row._mapping[column], shift) for column in moments}}
        for row in rows
    ]
    await connection.execute(statement, parameters)
    return len(rows)
