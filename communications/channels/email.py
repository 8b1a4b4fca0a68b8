"""The e-mail channel: SMTP when configured, otherwise a local outbox of `.eml` files."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from collections.abc import Iterable
from datetime import timedelta
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

import aiosmtplib

from communications.channels.base import (
    Delivery,
    DeliveryError,
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from guest_journey.database import utcnow
from guest_journey.mail_tls import SMTPS_PORT, SmtpTls
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 30.0  # the whole conversation with the server, not one command
QUIT_TIMEOUT_SECONDS = 5.0
SMTP_PORT = 25
SUBMISSION_PORT = 587
MESSAGE_ID_HEADER = "X-Guest-Journey-Message-Id"


def sender_domain(sender: str) -> str:
    """`Hotel Mar <stay@hotel.example>` -> `hotel.example`; the domain of our Message-IDs."""
    local, at, domain = parseaddr(sender)[1].rpartition("@")
    if not at or not local or not domain:
        raise ValueError(
            f"{sender!r} is not an e-mail address such as 'Hotel <stay@hotel.example>'"
        )
    return domain


def message_id_header(message_id: str, domain: str) -> str:
    """Our message ids become `<id@domain>`; an id already in that form is kept."""
    return message_id if message_id.startswith("<") else f"<{message_id}@{domain}>"


def build_email(outgoing: Outgoing, sender: str) -> EmailMessage:
    """The message both senders deliver: text with an HTML alternative, threading headers."""
    domain = sender_domain(sender)
    rendered = outgoing.rendered
    message = EmailMessage()
    message["From"] = sender
    message["To"] = _recipient(outgoing)
    message["Subject"] = _one_line(rendered.subject or "")
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id_header(outgoing.message_id, domain)
    message[MESSAGE_ID_HEADER] = outgoing.message_id
    if outgoing.in_reply_to:
        parent = message_id_header(outgoing.in_reply_to, domain)
        message["In-Reply-To"] = parent
        message["References"] = parent
    if outgoing.reply_token:
        message["Reply-To"] = f"reply+{outgoing.reply_token}@{domain}"
    if outgoing.marketing and outgoing.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    message.set_content(rendered.text)
    if rendered.html:
        message.add_alternative(rendered.html, subtype="html")
    return message


class SmtpEmailSender:
    """Delivers by SMTP, and knows how far a failed conversation got.

    A failure before the message content was handed over (connection refused,
    any answer of the server, a timeout before DATA) means the server does not
    have it: retried later, or given up when the answer is a 5xx. A timeout or
    dropped connection once DATA began leaves the message in doubt: the server
    may have accepted it without our hearing so (`InDoubtDeliveryError`).

    TLS (`tls`, GUEST_JOURNEY_SMTP_TLS): `starttls` upgrades the connection
    whenever the server offers STARTTLS; a server that does not offer it gets
    the message in clear, with a warning, unless we log in: credentials never
    go out in clear, so with a username the send fails (permanently) instead.
    `tls` speaks TLS from the first byte (SMTPS, port 465); `none` never
    upgrades. The server's certificate is checked against the system's CAs
    (`SSL_CERT_FILE` names others), or against `tls_context` when given.
    """

    channel = Channel.email
    retry_is_safe = False
    reports_status = False

    def __init__(
        self,
        host: str,
        port: int | None,
        username: str | None,
        password: str | None,
        tls: SmtpTls,
        sender: str,
        *,
        timeout: float = SMTP_TIMEOUT_SECONDS,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        sender_domain(sender)  # fail at start-up, not at the first message
        if tls not in ("starttls", "tls", "none"):
            raise ValueError(f"SMTP TLS {tls!r} is not one of starttls, tls, none")
        self.host = host
        self.username = username or None
        self.password = password or None
        # Unset port: SMTPS for implicit TLS, submission when we log in, else the relay port.
        default_port = {"tls": SMTPS_PORT, "starttls": SUBMISSION_PORT if self.username else SMTP_PORT}
        self.port = port or default_port.get(tls, SMTP_PORT)
        self.tls = tls
        self.tls_context = tls_context
        self.sender = sender
        self.timeout = timeout
        self._warned_in_clear = False

    @property
    def longest_send(self) -> timedelta:
        return timedelta(seconds=self.timeout + QUIT_TIMEOUT_SECONDS)

    async def send(self, outgoing: Outgoing) -> Delivery:
        message = build_email(outgoing, self.sender)
        smtp = _SmtpConversation(
            hostname=self.host,
            port=self.port,
            start_tls=None if self.tls == "starttls" else False,  # None: upgrade when offered
            use_tls=self.tls == "tls",
            tls_context=self.tls_context,
            timeout=self.timeout,
        )
        try:
            async with asyncio.timeout(self.timeout):
                await smtp.connect()
                self._check_tls(smtp, outgoing.message_id)
                if self.username:  # only now: over TLS, or `none` chosen knowingly
                    await smtp.login(self.username, self.password or "")
                await smtp.send_message(
                    message, sender=parseaddr(self.sender)[1], recipients=[outgoing.recipient]
                )
        except (aiosmtplib.SMTPException, OSError) as error:  # TimeoutError is an OSError
            smtp.close()
            failure = self._failure(error, content_sent=smtp.data_started)
            logger.warning(  # no reason text: SMTP answers may quote the guest's address
                "e-mail %s not sent (%s after %s)",
                outgoing.message_id,
                type(failure).__name__,
                type(error).__name__,
            )
            raise failure from error
        await self._quit(smtp)
        logger.info("e-mail %s sent via %s:%s", outgoing.message_id, self.host, self.port)
        return Delivery(status=MessageStatus.sent, provider_message_id=message["Message-ID"])

    def _check_tls(self, smtp: aiosmtplib.SMTP, message_id: str) -> None:
        """`starttls` and the server offered no STARTTLS: in clear without credentials
        (with a warning), never with them."""
        if self.tls != "starttls" or smtp.get_transport_info("sslcontext") is not None:
            return
        if self.username:
            raise aiosmtplib.SMTPNotSupported(
                "it offers no STARTTLS, and the SMTP credentials are never sent in clear "
                "(GUEST_JOURNEY_SMTP_TLS=starttls; tls for SMTPS)"
            )
        if not self._warned_in_clear:
            self._warned_in_clear = True
            logger.warning(
                "SMTP server %s:%s offers no STARTTLS: e-mail %s and the next ones go in clear "
                "(GUEST_JOURNEY_SMTP_TLS=starttls upgrades whenever the server offers it)",
                self.host, self.port, message_id,
            )

    async def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        """The server took the message: a failure to say goodbye changes nothing."""
        try:
            async with asyncio.timeout(QUIT_TIMEOUT_SECONDS):
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()

    def _failure(self, error: Exception, *, content_sent: bool) -> DeliveryError:
        """Server down, slow or deferring: try again later. A 5xx answer: retrying will
        not help. No answer once the content went out: in doubt."""
        server = f"{self.host}:{self.port}"
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            answers = "; ".join(f"{refused.code} {refused.message}" for refused in error.recipients)
            if error.recipients and all(refused.code >= 500 for refused in error.recipients):
                return PermanentDeliveryError(f"recipient refused by the SMTP server: {answers}")
            return TransientDeliveryError(f"recipient deferred by the SMTP server: {answers}")
        if isinstance(error, aiosmtplib.SMTPResponseException):
            answer = f"{error.code} {error.message}"
            if isinstance(error, aiosmtplib.SMTPAuthenticationError) and error.code >= 500:
                return PermanentDeliveryError(f"SMTP authentication failed at {server}: {answer}")
            if error.code >= 500:
                return PermanentDeliveryError(
                    f"SMTP server {server} rejected the message: {answer}"
                )
            return TransientDeliveryError(f"SMTP server {server} deferred the message: {answer}")
        if isinstance(error, aiosmtplib.SMTPNotSupported):
            return PermanentDeliveryError(
                f"SMTP server {server} does not support what we need: {error}"
            )
        timed_out = isinstance(error, aiosmtplib.SMTPTimeoutError | TimeoutError)
        what = f"timed out after {self.timeout:g}s" if timed_out else "dropped the connection"
        if content_sent:
            return InDoubtDeliveryError(
                f"SMTP server {server} {what} after the message was handed over "
                f"({type(error).__name__}): it may have been delivered"
            )
        if timed_out:
            return TransientDeliveryError(f"SMTP server {server} timed out: {error}")
        if isinstance(error, OSError):  # refused, reset, disconnected, TLS failure
            return TransientDeliveryError(f"SMTP server unreachable: {server}: {error}")
        return TransientDeliveryError(f"SMTP error at {server}: {error}")


class _SmtpConversation(aiosmtplib.SMTP):
    """An SMTP client that remembers whether the message content began to go out."""

    data_started = False

    async def data(self, message: str | bytes, /, **options: Any) -> aiosmtplib.SMTPResponse:
        self.data_started = True
        return await super().data(message, **options)


class OutboxEmailSender:
    """SMTP not configured: each message is kept as `{message_id}.eml` in a local directory."""

    channel = Channel.email
    retry_is_safe = True  # the file is replaced, never duplicated
    reports_status = False
    longest_send = timedelta(seconds=5)

    def __init__(self, directory: Path, sender: str) -> None:
        sender_domain(sender)
        self.directory = Path(directory)
        self.sender = sender

    async def send(self, outgoing: Outgoing) -> Delivery:
        message = build_email(outgoing, self.sender)
        path = outbox_path(self.directory, outgoing.message_id)
        await asyncio.to_thread(_write_replacing, path, message.as_bytes())
        logger.info("e-mail %s kept in the local outbox", outgoing.message_id)
        return Delivery(
            status=MessageStatus.queued,
            provider_message_id=message["Message-ID"],
            note=f"SMTP not configured: kept in the local outbox {path}",
        )


def outbox_path(directory: Path, message_id: str) -> Path:
    """Where the local outbox keeps a message."""
    return Path(directory) / f"{_file_name(message_id)}.eml"


def remove_from_outbox(directory: Path, message_ids: Iterable[str]) -> int:
    """Delete these messages' files from the local outbox (a GDPR erase): how many were there."""
    removed = 0
    for message_id in message_ids:
        try:
            outbox_path(directory, message_id).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def _recipient(outgoing: Outgoing) -> Address:
    try:
        return Address(display_name=_one_line(outgoing.guest_name), addr_spec=outgoing.recipient)
    except (ValueError, LookupError, MessageError) as error:
        raise PermanentDeliveryError(f"the guest's e-mail address is not valid: {error}") from error


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _file_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", message_id).lstrip(".") or "message"


def _write_replacing(path: Path, data: bytes) -> None:
    """Write to a temporary file and rename it: a reader never sees half a message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
