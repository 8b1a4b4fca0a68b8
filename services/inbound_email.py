"""A guest's e-mail, taken in by the SMTP receiver or read from a mailbox: one rule for both.

`recipient_refusal` says, before the message is sent to us, whether an SMTP
recipient is one we take: a `reply+<token>@` address of our reply domain
(`Settings.resolved_mail_in_domain`) whose token we signed
(`guest_journey.guest_links.message_replied_to`). Anything else is refused with
a 550 reply, so a forged token never reaches the database.

`receive_email` takes the message's bytes (and, by SMTP, the envelope's
recipients; from a mailbox, its To/Cc/Delivered-To headers are read instead):

1. the Message-ID already taken in: nothing new is stored (`duplicate`);
2. parsed without ever failing (`communications.mail_parse`): the guest's words
   without quotes or signatures, attachments as names and sizes;
3. a reply address with a forged token (possible only from a mailbox) is kept
   for staff as unmatched, with no message in any journey;
4. otherwise the message goes through `services.inbound_messages.receive_inbound`,
   like every other guest message (stored, counted once, signalled), matched by
   the reply token, else by its In-Reply-To, else by its sender;
5. one `inbound_email` row records it; one no reservation was found for is in
   `list_unmatched_mail` with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from communications.inbound import ADDRESS_LENGTH, PROVIDER_ID_LENGTH
from communications.mail_in_store import (
    InboundEmail,
    MailSource,
    UnmatchedReason,
    mail_by_key,
    message_key,
)
from communications.mail_parse import ParsedMail, parse_mail
from guest_journey.database import utcnow
from guest_journey.guest_links import message_replied_to
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from services.inbound_messages import receive_inbound

logger = logging.getLogger(__name__)

REPLY_PREFIX = "reply+"
BODY_LENGTH = 20_000  # as much as `POST /communications/messages/inbound` takes


@dataclass(frozen=True)
class EmailResult:
    mail: InboundEmail
    duplicate: bool = False

    @property
    def matched(self) -> bool:
        return self.mail.reservation_id is not None


def recipient_refusal(settings: Settings, address: str) -> str | None:
    """The SMTP reply refusing `address` as a recipient, or None when we take it."""
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.lower() != settings.resolved_mail_in_domain:
        return "550 5.7.1 Relaying denied: this server takes only replies to its own messages"
    if not local.lower().startswith(REPLY_PREFIX):
        return "550 5.1.1 No such mailbox: only reply addresses are taken here"
    if message_replied_to(settings.verification_secret_keys(), f"{local}@{domain}") is None:
        return "550 5.1.1 No such mailbox: this reply address is not valid"
    return None


async def receive_email(
    *,
    session: AsyncSession,
    client: Client,
    settings: Settings,
    raw: bytes,
    source: MailSource,
    envelope_recipients: Sequence[str] = (),
    received_at: datetime | None = None,
) -> EmailResult:
    """Take in one e-mail (module rules); never raises on what the e-mail holds."""
    received_at = received_at or utcnow()
    mail = parse_mail(raw)
    key = message_key(mail.message_id)
    existing = await mail_by_key(session, key)
    if existing is not None:
        return EmailResult(existing, duplicate=True)
    row = InboundEmail(
        id=str(uuid.uuid4()), message_key=key, message_id_header=mail.message_id[:300], source=source.value,
        sender=mail.sender[:ADDRESS_LENGTH] or None, subject=mail.subject or None,
        attachments=[{"name": a.name, "size": a.size} for a in mail.attachments], size_bytes=mail.size,
        received_at=received_at,
    )
    token_seen, replied_to = _reply_address(settings, envelope_recipients or mail.recipients)
    if token_seen and replied_to is None:
        row.reason = UnmatchedReason.forged_token.value
    else:
        result = await receive_inbound(
            session=session, client=client, channel=Channel.email, sender=row.sender or "unknown",
            body=_body(mail), received_at=received_at, in_reply_to=replied_to or mail.in_reply_to,
            provider_message_id=_provider_id(mail.message_id),
        )
        row.message_ref = result.message.id
        row.reservation_id = result.message.reservation_id
        row.hotel_id = result.message.hotel_id
        if row.reservation_id is None:
            row.reason = (UnmatchedReason.message_gone if token_seen else UnmatchedReason.no_token).value
    return await _keep(session, row)


async def record_too_large(
    *, session: AsyncSession, message_id: str | None, sender: str | None, subject: str | None, size: int,
    source: MailSource, uid: str,
) -> EmailResult:
    """A mailbox's e-mail over the size limit: not read, but listed for staff (once)."""
    reference = message_id or f"<{source.value}-uid-{uid}-size-{size}>"
    key = message_key(reference)
    existing = await mail_by_key(session, key)
    if existing is not None:
        return EmailResult(existing, duplicate=True)
    row = InboundEmail(
        id=str(uuid.uuid4()), message_key=key, message_id_header=reference[:300], source=source.value,
        sender=(sender or "")[:ADDRESS_LENGTH] or None, subject=(subject or "")[:300] or None,
        size_bytes=size, reason=UnmatchedReason.too_large.value, received_at=utcnow(),
    )
    return await _keep(session, row)


async def _keep(session: AsyncSession, row: InboundEmail) -> EmailResult:
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:  # the same e-mail, taken in twice at once
        await session.rollback()
        existing = await mail_by_key(session, row.message_key)
        if existing is None:
            raise
        return EmailResult(existing, duplicate=True)
    logger.info(
        "e-mail taken in by %s: %s", row.source, "matched" if row.reservation_id else f"unmatched ({row.reason})",
        extra={"reservation_id": row.reservation_id, "message_id": row.message_ref},
    )
    return EmailResult(row)


def _reply_address(settings: Settings, addresses: Sequence[str]) -> tuple[bool, str | None]:
    """Whether a reply+ address of our domain is among `addresses`, and the message its
    valid token names (None when every such token is forged)."""
    domain = settings.resolved_mail_in_domain
    seen = False
    for address in addresses:
        local, at, address_domain = address.strip().strip("<>").rpartition("@")
        if not at or address_domain.lower() != domain or not local.lower().startswith(REPLY_PREFIX):
            continue
        seen = True
        replied_to = message_replied_to(settings.verification_secret_keys(), f"{local}@{address_domain}")
        if replied_to is not None:
            return True, replied_to
    return seen, None


def _body(mail: ParsedMail) -> str:
    """The guest's words (at most `BODY_LENGTH` characters), then one line per attachment
    (its name and size), so the timeline shows them."""
    text = mail.text if len(mail.text) <= BODY_LENGTH else mail.text[:BODY_LENGTH] + " […]"
    lines = [text] if text else []
    lines += [f"[anexo: {attachment.name}, {_size(attachment.size)}]" for attachment in mail.attachments]
    return "\n".join(lines) or mail.subject or "(e-mail vazio)"


def _size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.0f} kB"
    return f"{size} bytes"


def _provider_id(message_id: str) -> str:
    if len(message_id) <= PROVIDER_ID_LENGTH:
        return message_id
    return f"<sha256:{hashlib.sha256(message_id.encode('utf-8', 'replace')).hexdigest()}>"
