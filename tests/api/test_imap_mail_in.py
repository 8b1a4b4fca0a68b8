"""`guest-journey mail-in --imap` against Debian's Dovecot on loopback: a guest's reply
that lands in the hotel's mailbox reaches the journey's timeline (pushed by IDLE, long
before the next poll), once per Message-ID, and what is not ours is listed for staff."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aioimaplib
import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from api.staff import attention
from api.staff.attention import AttentionKind
from commands.imap_poller import poll_mailbox
from communications.mail_in_store import InboundEmail
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.guest_links import reply_token
from guest_journey.settings import Settings
from tests.api.conftest import app_client
from tests.api.test_mail_in import DOMAIN, reply
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import KEYS, OPS, RES, bearer
from tests.dovecot_server import DovecotServer
from tests.workflows.journeys import end, now

WAIT_SECONDS = 20.0


@pytest.fixture
async def dovecot() -> AsyncIterator[DovecotServer]:
    async with DovecotServer() as server:
        yield server


@pytest.fixture
def imap_settings(api_settings: Settings, dovecot: DovecotServer) -> Settings:
    return api_settings.model_copy(update={
        "api_keys": KEYS, "imap_host": dovecot.host, "imap_port": dovecot.port, "imap_tls": "none",
        "imap_user": dovecot.user, "imap_password": SecretStr(dovecot.password),
        "imap_poll_seconds": 120.0,  # longer than any wait below: only IDLE can bring a message in time
        "mail_in_max_bytes": 200_000,
    })


@pytest.fixture
async def web(imap_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(imap_settings):
        yield client


@asynccontextmanager
async def polling(settings: Settings, sessions: SessionFactory, client: Any) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(poll_mailbox(settings, sessions, client, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def deliver(dovecot: DovecotServer, *messages: EmailMessage | bytes) -> None:
    """Put messages in the mailbox as a provider's MTA would (IMAP APPEND)."""
    imap = aioimaplib.IMAP4(dovecot.host, dovecot.port)
    await imap.wait_hello_from_server()
    assert (await imap.login(dovecot.user, dovecot.password)).result == "OK"
    for message in messages:
        raw = message if isinstance(message, bytes) else message.as_bytes()
        assert (await imap.append(raw, mailbox="INBOX")).result == "OK"
    await imap.logout()


async def unseen(dovecot: DovecotServer) -> int:
    imap = aioimaplib.IMAP4(dovecot.host, dovecot.port)
    await imap.wait_hello_from_server()
    await imap.login(dovecot.user, dovecot.password)
    await imap.select("INBOX")
    found = await imap.search("UNSEEN", charset=None)
    await imap.logout()
    return len(found.lines[0].split())


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> float:
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > WAIT_SECONDS:
            raise AssertionError(f"{what} within {WAIT_SECONDS:g}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def mails(sessions: SessionFactory) -> list[InboundEmail]:
    async with sessions() as session:
        return list((await session.exec(select(InboundEmail).order_by(col(InboundEmail.received_at)))).all())


async def test_a_reply_in_the_mailbox_reaches_the_timeline_by_idle_once(
        env, worker, email, web, dovecot, imap_settings, sessions):
    rid = f"R-IMAP-{uuid.uuid4().hex[:8]}"
    async with worker(), polling(imap_settings, sessions, env.client):
        put = await web.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=2)),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        await email.wait_for(1)
        ours = email.sent[0]
        to = f"reply+{reply_token(imap_settings.resolved_secret_key(), ours.message_id)}@{DOMAIN}"
        message = reply(to, "Podemos fazer o check-in às 13h?\n\nEm seg., 7 de dez. de 2026 às 10:00, Hotel "
                            "<reservas@hotel.example> escreveu:\n> Olá, Ana!\n")
        await deliver(dovecot, message)
        took = await until(lambda: _has_inbound(sessions, rid), "the reply reached the journey")
        await deliver(dovecot, message)  # the same Message-ID again
        await until(lambda: _unseen_is(dovecot, 0), "both copies were marked seen")
        async with sessions() as session:
            inbound = (await session.exec(select(MessageRecord).where(
                MessageRecord.reservation_id == rid, MessageRecord.direction == "inbound"))).all()
        journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
        await end(env, rid)

    assert took < imap_settings.imap_poll_seconds
    assert [m.body_text for m in inbound] == ["Podemos fazer o check-in às 13h?"]
    assert [m["id"] for m in journey["messages"] if m["direction"] == "inbound"] == [inbound[0].id]
    assert [(row.source, row.reservation_id) for row in await mails(sessions)] == [("imap", rid)]


async def test_forged_tokens_and_oversized_mail_in_the_mailbox_are_listed_for_staff(
        env, web, dovecot, imap_settings, sessions):
    forged = reply(f"reply+{reply_token('not-our-key', str(uuid.uuid4()))}@{DOMAIN}", "Oi", Subject="Forjado")
    big = reply(f"reservas@{DOMAIN}", "x", Subject="Fotos", Message_ID="<big@mail.example.com>")
    big.add_attachment(b"\0" * 300_000, maintype="application", subtype="octet-stream", filename="fotos.zip")
    malformed = b"From: <broken\r\nSubject: =?utf-8?b?!!!?=\r\nContent-Type: text/html\r\n\r\n<p>ol\xe1<script>x()"
    await deliver(dovecot, forged, big, malformed)
    async with polling(imap_settings, sessions, env.client):
        await until(lambda: _unseen_is(dovecot, 0), "every message was marked seen")
    unmatched = (await web.get("/communications/mail-in/unmatched", headers=bearer(OPS))).json()

    assert sorted((row["subject"] or "", row["reason"]) for row in unmatched) == [
        ("", "no_token"), ("Forjado", "forged_token"), ("Fotos", "too_large")]
    assert all(row["source"] == "imap" and row["reason_text"] for row in unmatched)
    async with sessions() as session:
        stored = (await session.exec(select(MessageRecord).where(MessageRecord.direction == "inbound"))).all()
    assert [m.body_text for m in stored] == ["olá"]  # the malformed one, as text; nothing of the forged one
    async with sessions() as session:  # the panel's "needs attention": the two kept as no guest message
        groups = {group.kind: group for group in await attention.needs_attention(
            session=session, now=datetime.now(UTC))}
    staff_list = groups[AttentionKind.unmatched_mail]
    assert staff_list.title == "E-mails sem reserva (mail-in)"
    assert sorted(item.detail.split("“")[1].split("”")[0] for item in staff_list.items) == ["Forjado", "Fotos"]
    assert all("—" in item.detail for item in staff_list.items)  # with why, in staff's words


async def test_the_poller_reads_over_imaps_and_comes_back_after_a_refused_login(
        env, dovecot, imap_settings, sessions, monkeypatch, caplog):
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.ca_file))
    wrong = imap_settings.model_copy(update={"imap_tls": "tls", "imap_port": dovecot.tls_port,
                                             "imap_password": SecretStr("wrong"), "imap_poll_seconds": 0.2})
    async with polling(wrong, sessions, env.client):
        await until(lambda: _logged(caplog, "login refused"), "the refused login was logged")
    await deliver(dovecot, reply("someone@example.com", "Olá", Message_ID="<tls@mail.example.com>"))
    right = imap_settings.model_copy(update={"imap_tls": "tls", "imap_port": dovecot.tls_port})
    async with polling(right, sessions, env.client):
        await until(lambda: _unseen_is(dovecot, 0), "the message was read over IMAPS")
    assert [row.message_id_header for row in await mails(sessions)] == ["<tls@mail.example.com>"]


async def test_a_server_without_idle_is_polled(env, sessions, imap_settings, caplog):
    caplog.set_level("INFO", logger="commands.imap_poller")
    async with DovecotServer(idle=False) as plain:
        settings = imap_settings.model_copy(update={"imap_port": plain.port, "imap_password": SecretStr(plain.password),
                                                    "imap_poll_seconds": 0.3})
        async with polling(settings, sessions, env.client):
            assert not await _idle_offered(plain)
            await deliver(plain, reply("someone@example.com", "Oi", Message_ID="<polled@mail.example.com>"))
            await until(lambda: _unseen_is(plain, 0), "the message was polled in")
    assert [row.message_id_header for row in await mails(sessions)] == ["<polled@mail.example.com>"]
    assert any("(every 0.3s)" in record.getMessage() for record in caplog.records)


async def _idle_offered(dovecot: DovecotServer) -> bool:
    imap = aioimaplib.IMAP4(dovecot.host, dovecot.port)
    await imap.wait_hello_from_server()
    await imap.login(dovecot.user, dovecot.password)
    offered = imap.has_capability("IDLE")
    await imap.logout()
    return offered


async def _has_inbound(sessions: SessionFactory, rid: str) -> bool:
    async with sessions() as session:
        rows = await session.exec(select(MessageRecord).where(
            MessageRecord.reservation_id == rid, MessageRecord.direction == "inbound"))
        return rows.first() is not None


async def _unseen_is(dovecot: DovecotServer, count: int) -> bool:
    return await unseen(dovecot) == count


async def _logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)
