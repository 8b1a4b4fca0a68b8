"""The free text of a message staff write (a `free_text` message's body).

The text is stored here before the journey is asked to send it; the journey
keeps only its id (`body_id` in the message's context), so neither its state
nor any activity input grows with what staff write. The messaging activity
reads the text back when it renders the message (`resolve_staff_text`). The
id is derived from the reservation and the request, so a repeated request
stores the text once. A guest's erasure deletes the texts of the reservation.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.templates import TemplateError
from guest_journey.database import UTCDateTime, utcnow

BODY = "body"
BODY_ID = "body_id"  # the context key that names a stored text
_NAMESPACE = uuid.UUID("0b6f7a5e-3c1d-4f0a-9a57-5d2e8c41b7a3")


class StaffText(SQLModel, table=True):
    __tablename__ = "staff_text"

    id: str = Field(primary_key=True, max_length=64)
    reservation_id: str = Field(index=True, max_length=128)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def staff_text_id(reservation_id: str, request_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{reservation_id}:{request_id}"))


async def store_staff_text(*, session: AsyncSession, reservation_id: str, request_id: str, body: str) -> str:
    """Store the text of one staff request (once: a repeated request keeps the first); its id."""
    text_id = staff_text_id(reservation_id, request_id)
    if await session.get(StaffText, text_id) is None:
        session.add(StaffText(id=text_id, reservation_id=reservation_id, body=body))
        await session.commit()
    return text_id


async def body_stored_apart(
    *, session: AsyncSession, reservation_id: str, request_id: str, context: dict[str, Any]
) -> dict[str, Any]:
    """The context to give the journey: a `body` is stored here and named by `body_id` instead."""
    if BODY not in context:
        return context
    rest = {key: value for key, value in context.items() if key not in (BODY, BODY_ID)}
    text_id = await store_staff_text(
        session=session, reservation_id=reservation_id, request_id=request_id, body=str(context[BODY])
    )
    return {**rest, BODY_ID: text_id}


async def resolve_staff_text(
    *, session: AsyncSession, reservation_id: str, context: dict[str, Any]
) -> dict[str, Any]:
    """The template context with the stored text as `body`, when it names one by `body_id`.

    Raises `TemplateError` when the reservation has no such text (the guest's
    data was erased before the message went out): the message fails with that reason."""
    text_id = context.get(BODY_ID)
    if text_id is None:
        return context
    stored = await session.get(StaffText, str(text_id))
    if stored is None or stored.reservation_id != reservation_id:
        raise TemplateError(f"the staff text {text_id} is not stored (erased with the guest's data?)")
    return {**context, BODY: stored.body}


async def staff_texts_of(*, session: AsyncSession, reservation_id: str) -> list[StaffText]:
    rows = await session.exec(
        select(StaffText)
        .where(StaffText.reservation_id == reservation_id)
        .order_by(col(StaffText.created_at), col(StaffText.id))
    )
    return list(rows.all())
