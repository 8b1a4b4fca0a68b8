"""Every guest e-mail taken in (by SMTP or from a mailbox): once per Message-ID.

A row says which e-mail came in (its Message-ID, as a digest key kept unique),
from whom, with what subject and attachments (names and sizes, never their
contents), the guest message it was stored as (`message_ref`, in
`communications.message_store`) and, when no reservation was found for it, why
(`UnmatchedReason`). The same Message-ID taken in again finds its row and
stores nothing new. `list_unmatched_mail` is what staff follow up.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from guest_journey.database import UTCDateTime, utcnow


class MailSource(StrEnum):
    smtp = "smtp"
    imap = "imap"


class UnmatchedReason(StrEnum):
    """Why an e-mail was matched to no reservation (the staff list says it in pt-BR)."""

    forged_token = "forged_token"  # a reply+ address of our domain whose token is not ours
    no_token = "no_token"  # no reply address, no In-Reply-To of ours, and an unknown sender
    message_gone = "message_gone"  # the token is ours, but the message it names is no longer kept
    too_large = "too_large"  # over GUEST_JOURNEY_MAIL_IN_MAX_BYTES (a mailbox's; SMTP refuses it)


UNMATCHED_REASON_TEXTS = {
    UnmatchedReason.forged_token: "endereço de resposta com token inválido (não foi gerado por nós)",
    UnmatchedReason.no_token: "sem endereço de resposta e remetente desconhecido",
    UnmatchedReason.message_gone: "a mensagem respondida não existe mais",
    UnmatchedReason.too_large: "maior que o limite de tamanho: não foi lida",
}


class InboundEmail(SQLModel, table=True):
    __tablename__ = "inbound_email"
    __table_args__ = (Index("ix_inbound_email_unmatched", "reservation_id", "received_at"),)

    id: str = Field(primary_key=True, max_length=64)
    message_key: str = Field(unique=True, max_length=64)  # sha256 of the Message-ID
    message_id_header: str = Field(max_length=300)
    source: str = Field(max_length=8)
    sender: str | None = Field(default=None, max_length=320)
    subject: str | None = Field(default=None, max_length=300)
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    size_bytes: int = 0
    message_ref: str | None = Field(default=None, index=True, max_length=64)
    reservation_id: str | None = Field(default=None, max_length=128)
    hotel_id: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=32)
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def message_key(message_id: str) -> str:
    """The key of a Message-ID: `<A@b>` and `a@b` alike (brackets, case and spaces aside)."""
    normal = message_id.strip().removeprefix("<").removesuffix(">").strip().lower()
    return hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()


async def mail_by_key(session: AsyncSession, key: str) -> InboundEmail | None:
    rows = await session.exec(select(InboundEmail).where(InboundEmail.message_key == key))
    return rows.first()


async def list_unmatched_mail(*, session: AsyncSession, limit: int = 100) -> list[InboundEmail]:
    """E-mails no reservation was found for, newest first."""
    rows = await session.exec(
        select(InboundEmail)
        .where(col(InboundEmail.reservation_id).is_(None))
        .order_by(col(InboundEmail.received_at).desc(), col(InboundEmail.id))
        .limit(limit)
    )
    return list(rows.all())
