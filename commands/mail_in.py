"""`guest-journey mail-in`: guests' e-mail replies taken in with no relay.

Without `--imap`, an SMTP receiver (aiosmtpd) listens on
GUEST_JOURNEY_MAIL_IN_HOST:GUEST_JOURNEY_MAIL_IN_PORT: the MX of the reply
domain points here. At RCPT it takes only `reply+<token>@` addresses of the
reply domain whose token is ours (`services.inbound_email.recipient_refusal`:
anything else gets a 550), it offers STARTTLS with
GUEST_JOURNEY_MAIL_IN_TLS_CERT/_KEY, and a message over
GUEST_JOURNEY_MAIL_IN_MAX_BYTES gets a 552. A message it takes is handed to
`services.inbound_email.receive_email`; should the database fail, the sender
is told 451 and tries again later (the Message-ID keeps it from being stored twice).

With `--imap`, the mailbox GUEST_JOURNEY_IMAP_* names is read instead
(`commands.imap_poller`). `guest-journey dev` runs the SMTP receiver too when
GUEST_JOURNEY_MAIL_IN_PORT is set (`run_mail_in`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from temporalio.client import Client

from communications.mail_in_store import MailSource
from guest_journey.database import SessionFactory, create_engine, session_factory
from guest_journey.schema import prepare_database
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from services.inbound_email import receive_email, recipient_refusal

logger = logging.getLogger("commands.mail_in")

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure: please try again later"


class MailInHandler:
    """aiosmtpd's handler: recipients checked at RCPT, messages taken in at DATA."""

    def __init__(self, settings: Settings, sessions: SessionFactory, client: Client) -> None:
        self.settings = settings
        self.sessions = sessions
        self.client = client

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = recipient_refusal(self.settings, address)
        if refusal is not None:
            logger.info("SMTP recipient refused: %s", refusal)
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape")
        try:
            async with self.sessions() as db:
                result = await receive_email(
                    session=db, client=self.client, settings=self.settings, raw=data, source=MailSource.smtp,
                    envelope_recipients=list(envelope.rcpt_tos),
                )
        except Exception:
            logger.exception("an e-mail could not be stored; the sender was told to try again")
            return TEMPORARY_FAILURE
        return "250 2.0.0 OK: already taken" if result.duplicate else "250 2.0.0 OK: taken"


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The STARTTLS context, when a certificate and key are configured."""
    if settings.mail_in_tls_cert is None or settings.mail_in_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.mail_in_tls_cert, settings.mail_in_tls_key)
    return context


@asynccontextmanager
async def smtp_receiver(
    settings: Settings, sessions: SessionFactory, client: Client, *, port: int | None = None
) -> AsyncIterator[asyncio.Server]:
    """The SMTP receiver listening (on `port`, else GUEST_JOURNEY_MAIL_IN_PORT) until the block ends."""
    handler = MailInHandler(settings, sessions, client)
    context = tls_context(settings)
    domain = settings.resolved_mail_in_domain

    def protocol() -> SMTP:
        return SMTP(
            handler, data_size_limit=settings.mail_in_max_bytes, enable_SMTPUTF8=True, decode_data=False,
            hostname=domain, ident="guest-journey mail-in", tls_context=context, require_starttls=False,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host=settings.mail_in_host, port=port or settings.mail_in_port)
    logger.info("mail-in: SMTP on %s:%s for reply+<token>@%s%s", settings.mail_in_host,
                server.sockets[0].getsockname()[1], domain, " (STARTTLS)" if context else "")
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()


@asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[tuple[SessionFactory, Client]]:
    engine = create_engine(settings.resolved_database_url)
    keys_engine = create_engine(settings.resolved_database_url)
    try:
        await prepare_database(engine, settings)  # as the API: production refuses a schema not at the head
        client = await connect_temporal(settings, sessions=session_factory(keys_engine), lazy=True)
        yield session_factory(engine), client
    finally:
        await keys_engine.dispose()
        await engine.dispose()


async def run_mail_in(settings: Settings, stop: asyncio.Event, *, imap: bool = False) -> None:
    """Take guests' e-mails in until `stop` is set: by SMTP, or from the mailbox with `imap`."""
    async with _service(settings) as (sessions, client):
        if imap:
            from commands.imap_poller import poll_mailbox

            await poll_mailbox(settings, sessions, client, stop)
            return
        async with smtp_receiver(settings, sessions, client):
            await stop.wait()


def _run(settings: Settings, *, args: argparse.Namespace) -> int:
    if args.imap and not settings.imap_host:
        return _usage("set GUEST_JOURNEY_IMAP_HOST (and _USER, _PASSWORD) to read a mailbox")
    if not args.imap and settings.mail_in_port is None:
        return _usage("set GUEST_JOURNEY_MAIL_IN_PORT (25 behind the reply domain's MX), or use --imap")
    return asyncio.run(_until_signal(settings, imap=args.imap))


async def _until_signal(settings: Settings, *, imap: bool) -> int:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_mail_in(settings, stop, imap=imap)
    return 0


def _usage(message: str) -> int:
    import sys

    sys.stderr.write(f"guest-journey mail-in: {message}\n")
    return 2


def add_parser(commands: Any) -> None:
    help_text = "take guests' e-mail replies in: an SMTP receiver, or with --imap a mailbox"
    parser = commands.add_parser("mail-in", help=help_text, description=help_text)
    parser.add_argument("--imap", action="store_true", help="read the GUEST_JOURNEY_IMAP_* mailbox instead of SMTP")
    parser.set_defaults(run_with_args=_run)
