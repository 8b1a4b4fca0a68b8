"""`guest-journey mail-in --imap`: guests' replies read from a hotel's mailbox.

For hotels whose reply address lands in a mailbox of their own provider. The
poller logs in to GUEST_JOURNEY_IMAP_HOST (IMAPS unless GUEST_JOURNEY_IMAP_TLS=none)
as GUEST_JOURNEY_IMAP_USER, selects GUEST_JOURNEY_IMAP_MAILBOX and takes every
unseen message in (`services.inbound_email.receive_email`, the SMTP receiver's
service), then marks it seen. A message over GUEST_JOURNEY_MAIL_IN_MAX_BYTES is
not downloaded: staff see it in the unmatched list. It then waits with IDLE
where the server offers it (renewed every GUEST_JOURNEY_IMAP_POLL_SECONDS), else
polls at that interval. A message is marked seen only once stored; taken in
again after a crash, its Message-ID keeps it from being stored twice. A lost
connection or a refused login is logged and tried again after the interval.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from email import policy
from email.parser import BytesHeaderParser

import aioimaplib
from temporalio.client import Client

from communications.mail_in_store import MailSource
from guest_journey.database import SessionFactory
from guest_journey.settings import Settings
from services.inbound_email import receive_email, record_too_large

logger = logging.getLogger("commands.imap_poller")

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
IDLE_DONE_SECONDS = 10.0


class ImapError(RuntimeError):
    """The server refused what the poller asked (login, select, search)."""


async def poll_mailbox(settings: Settings, sessions: SessionFactory, client: Client, stop: asyncio.Event) -> None:
    """Take the mailbox's messages in until `stop` is set (module rules)."""
    while not stop.is_set():
        try:
            await _connected(settings, sessions, client, stop)
        except (OSError, TimeoutError, aioimaplib.AioImapException, ImapError) as error:
            logger.warning("IMAP %s:%s: %s; trying again in %gs", settings.imap_host, settings.resolved_imap_port,
                           error or type(error).__name__, settings.imap_poll_seconds)
        except Exception:  # the database, say: the message stays unseen and is taken in next time
            logger.exception("mail-in: a message could not be taken in; trying again in %gs",
                             settings.imap_poll_seconds)
        await _wait(stop, settings.imap_poll_seconds)


async def _connected(settings: Settings, sessions: SessionFactory, client: Client, stop: asyncio.Event) -> None:
    host, port = settings.imap_host or "", settings.resolved_imap_port
    if settings.imap_tls == "tls":
        imap: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context())
    else:
        imap = aioimaplib.IMAP4(host, port)
    try:
        await imap.wait_hello_from_server()
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        _check(await imap.login(settings.imap_user or "", password), "login")
        _check(await imap.select(_quoted(settings.imap_mailbox)), f"select {settings.imap_mailbox}")
        idle = imap.has_capability("IDLE")
        logger.info("mail-in: reading %s on %s:%s (%s)", settings.imap_mailbox, host, port,
                    "IDLE" if idle else f"every {settings.imap_poll_seconds:g}s")
        while not stop.is_set():
            await take_unseen(imap, settings, sessions, client)
            if idle:
                await _idle(imap, stop, settings.imap_poll_seconds)
            else:
                await _wait(stop, settings.imap_poll_seconds)
        await imap.logout()
    finally:
        if imap.protocol is not None and imap.protocol.transport is not None:
            imap.protocol.transport.close()


async def take_unseen(imap: aioimaplib.IMAP4, settings: Settings, sessions: SessionFactory, client: Client) -> int:
    """Take every unseen message in and mark it seen: how many were taken."""
    found = _check(await imap.uid_search("UNSEEN", charset=None), "search")
    uids = [uid.decode() for line in found.lines[:1] if isinstance(line, bytes) for uid in line.split()]
    taken = 0
    for uid in uids:
        size_answer = _check(await imap.uid("fetch", uid, "(RFC822.SIZE)"), "fetch size")
        size = next((int(m.group(1)) for line in size_answer.lines if (m := _SIZE.search(bytes(line)))), 0)
        async with sessions() as db:
            if size > settings.mail_in_max_bytes:
                headers = _literal(_check(await imap.uid(
                    "fetch", uid, "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID FROM SUBJECT)])"), "fetch headers"))
                parsed = BytesHeaderParser(policy=policy.default).parsebytes(headers)
                await record_too_large(
                    session=db, message_id=str(parsed.get("Message-ID") or "") or None,
                    sender=str(parsed.get("From") or ""), subject=str(parsed.get("Subject") or ""),
                    size=size, source=MailSource.imap, uid=uid,
                )
            else:
                raw = _literal(_check(await imap.uid("fetch", uid, "(BODY.PEEK[])"), "fetch"))
                await receive_email(session=db, client=client, settings=settings, raw=raw, source=MailSource.imap)
        _check(await imap.uid("store", uid, "+FLAGS.SILENT", r"(\Seen)"), "store \\Seen")
        taken += 1
    return taken


async def _idle(imap: aioimaplib.IMAP4, stop: asyncio.Event, seconds: float) -> None:
    """Wait for the server to say something changed (or `seconds`, or `stop`)."""
    idle = await imap.idle_start(timeout=seconds)
    pushed = asyncio.ensure_future(imap.wait_server_push(timeout=seconds + IDLE_DONE_SECONDS))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({pushed, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pushed.cancel()
        stopped.cancel()
        imap.idle_done()
        await asyncio.wait_for(idle, IDLE_DONE_SECONDS)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


def _check(answer: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if answer.result != "OK":
        last = answer.lines[-1] if answer.lines else b""
        text = last.decode("utf-8", "replace") if isinstance(last, bytes | bytearray) else str(last)
        raise ImapError(f"{what} refused: {answer.result} {text}")
    return answer


def _literal(answer: aioimaplib.Response) -> bytes:
    """The message bytes of a FETCH answer (its one literal)."""
    for line in answer.lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return b""


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'
