"""`guest-journey mail-in`'s SMTP receiver on loopback: a guest's reply to one of our
e-mails reaches the journey's timeline, and bad input is stored safely or refused
with an SMTP code, never breaking the receiver."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest
import trustme
from sqlmodel import select

from api.staff import attention
from api.staff.attention import AttentionKind
from commands.mail_in import smtp_receiver
from communications.mail_in_store import InboundEmail
from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.guest_links import reply_token
from guest_journey.settings import Settings
from services.gdpr import erase_guest_data
from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import HTML, KEYS, OPS, RES, bearer
from tests.smtp_server import free_port
from tests.workflows.journeys import end, now

DOMAIN = "guest-journey.localhost"  # the worker's default sender's domain: our Reply-To's
SCOPED = "scoped-ops-key-0123456789"  # an ops key limited to hotel-1


@pytest.fixture
def mail_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"api_keys": f"{KEYS},{SCOPED}:ops:hotel-1", "mail_in_port": free_port(),
                                           "mail_in_max_bytes": 1_000_000})


@pytest.fixture
async def web(mail_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(mail_settings):
        yield client


@pytest.fixture
async def receiver(mail_settings: Settings, sessions: SessionFactory, env: Any) -> AsyncIterator[int]:
    async with smtp_receiver(mail_settings, sessions, env.client):
        yield mail_settings.mail_in_port or 0


def reply(to: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Ana Souza <ana@example.com>")
    message["To"] = to
    message["Subject"] = headers.pop("Subject", "Re: Sua reserva")
    message["Message-ID"] = headers.pop("Message_ID", make_msgid(domain="mail.example.com"))
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


async def send(port: int, message: EmailMessage | bytes, to: str) -> None:
    await aiosmtplib.send(message, hostname="127.0.0.1", port=port, sender="ana@example.com", recipients=[to],
                          start_tls=False)


async def timeline(web: httpx.AsyncClient, sessions: SessionFactory, rid: str) -> list[dict[str, Any]]:
    """The journey's inbound messages as its timeline lists them, with the text each was stored with."""
    journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
    async with sessions() as session:
        texts = {m.id: m.body_text for m in (await session.exec(
            select(MessageRecord).where(MessageRecord.reservation_id == rid))).all()}
    return [{**m, "body_text": texts[m["id"]]} for m in journey["messages"] if m["direction"] == "inbound"]


async def test_a_reply_by_smtp_shows_in_the_journeys_timeline_once(env, worker, email, web, receiver,
                                                                      mail_settings, sessions):
    rid = f"R-MAIL-{uuid.uuid4().hex[:8]}"
    async with worker():
        put = await web.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=2)),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        await email.wait_for(1)
        ours = email.sent[0]
        to = f"reply+{reply_token(mail_settings.resolved_secret_key(), ours.message_id)}@{DOMAIN}"
        message = reply(to, "Chego às 22h, obrigada!\n\n-- \nAna Souza\n+55 11 99999-0000\n", In_Reply_To="<x@y>")
        message.add_attachment(b"\x89PNG" + b"0" * 2044, maintype="image", subtype="png", filename="passaporte.png")
        await send(receiver, message, to)
        await send(receiver, message, to)  # the same Message-ID again: taken, nothing new stored
        inbound = await timeline(web, sessions, rid)
        unmatched = (await web.get("/communications/mail-in/unmatched", headers=bearer(OPS))).json()
        await end(env, rid)

    assert [(m["channel"], m["body_text"]) for m in inbound] == [
        ("email", "Chego às 22h, obrigada!\n[anexo: passaporte.png, 2 kB]")]
    assert inbound[0]["in_reply_to"] == ours.message_id
    assert unmatched == []

    counts = await erase_guest_data(sessions, rid, secret_key="k", actor="test")
    await send(receiver, message, to)  # redelivered after the erasure: still the same e-mail
    async with sessions() as session:
        [row] = (await session.exec(select(InboundEmail))).all()
        replies = (await session.exec(select(MessageRecord).where(MessageRecord.direction == "inbound"))).all()
    assert counts["inbound_email"] == 1 and len(replies) == 1
    assert (row.sender, row.subject, row.attachments) == (None, None, [{"name": "[erased]", "size": 2048}])


async def test_an_html_only_reply_with_scripts_is_kept_as_text_and_no_script_reaches_the_page(
        env, worker, email, web, receiver, mail_settings, sessions):
    rid = f"R-MAIL-{uuid.uuid4().hex[:8]}"
    async with worker():
        put = await web.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=2)),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        await email.wait_for(1)
        to = f"reply+{reply_token(mail_settings.resolved_secret_key(), email.sent[0].message_id)}@{DOMAIN}"
        message = reply(to, "")
        message.set_content(
            "<html><head><script>alert('head')</script></head><body><p>Quero o <b>upgrade</b> &amp; café"
            "<script>document.cookie</script></p><img src=x onerror=alert(1)>"
            "<p>&lt;script&gt;alert(2)&lt;/script&gt;</p></body></html>", subtype="html")
        await send(receiver, message, to)
        inbound = await timeline(web, sessions, rid)
        page = await web.get(f"/guest-experience?reservation_id={rid}", headers={**bearer(OPS), **HTML})
        await end(env, rid)

    assert [m["body_text"] for m in inbound] == ["Quero o upgrade & café\n<script>alert(2)</script>"]
    assert page.status_code == 200
    assert "Quero o upgrade &amp; café" in page.text
    assert "<script>alert(2)" not in page.text and "document.cookie" not in page.text
    assert "onerror" not in page.text


async def test_recipients_not_ours_and_forged_tokens_are_refused_at_rcpt(receiver, mail_settings):
    forged = f"reply+{reply_token('not-our-key', str(uuid.uuid4()))}@{DOMAIN}"
    valid = f"reply+{reply_token(mail_settings.resolved_secret_key(), str(uuid.uuid4()))}@{DOMAIN}"
    other_domain = valid.replace(DOMAIN, "other.example")

    def talk() -> list[int]:
        with smtplib.SMTP("127.0.0.1", receiver, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("someone@example.com")
            return [smtp.rcpt(to)[0] for to in (forged, other_domain, f"reservas@{DOMAIN}", valid)]

    assert await asyncio.to_thread(talk) == [550, 550, 550, 250]


async def test_bad_input_is_stored_safely_or_refused_and_the_receiver_stays_up(receiver, mail_settings, web, sessions):
    secret = mail_settings.resolved_secret_key()
    to = f"reply+{reply_token(secret, str(uuid.uuid4()))}@{DOMAIN}"  # ours, for a message no longer kept
    big = reply(to, "x" * 100, Message_ID="<big@mail.example.com>")
    big.add_attachment(b"\0" * (30 * 1024 * 1024), maintype="application", subtype="octet-stream", filename="big.bin")
    with pytest.raises(aiosmtplib.SMTPResponseException) as refused:
        await send(receiver, big.as_bytes(), to)
    assert refused.value.code == 552

    malformed = (b"From: =?utf-8?q?broken <nobody\r\nSubject: =?x-unknown?b?!!!?=\r\n"
                 b"Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n\r\n"
                 b"--never-closed\r\nContent-Type: text/plain; charset=no-such-charset\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\n@@@not base64@@@\r\n")
    eight_bit = ("From: José <jose@example.com>\r\nSubject: Reserva até sábado ção\r\n"
                 "Message-ID: <8bit@mail.example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Transfer-Encoding: 8bit\r\n\r\nOlá, tudo bem?\r\n").encode()
    latin = b"From: Mar\xeda <maria@example.com>\r\nSubject: Habitaci\xf3n\r\n\r\nHola\r\n"
    for raw in (malformed, eight_bit, latin):
        await aiosmtplib.send(raw, hostname="127.0.0.1", port=receiver, sender="x@example.com",
                              recipients=[to], start_tls=False)
    unmatched = (await web.get("/communications/mail-in/unmatched", headers=bearer(OPS))).json()
    scoped = await web.get("/communications/mail-in/unmatched", headers=bearer(SCOPED))

    assert scoped.status_code == 200 and scoped.json() == []  # it belongs to no hotel of theirs
    subjects = {row["subject"] for row in unmatched}
    assert {"Reserva até sábado ção", "Habitación"} <= subjects
    assert len(unmatched) == 3 and {row["reason"] for row in unmatched} == {"message_gone"}
    assert all(row["reason_text"] for row in unmatched)
    async with sessions() as session:  # the panel's "needs attention" lists them for staff, once
        groups = {group.kind: group.items for group in await attention.needs_attention(
            session=session, now=datetime.now(UTC))}
    assert any(item.detail.startswith("email de jose@example.com") for item in groups[AttentionKind.unmatched])
    assert groups[AttentionKind.unmatched_mail] == []  # each was kept as a guest message: listed there


async def test_starttls_is_offered_when_a_certificate_is_configured(
        tmp_path: Path, mail_settings: Settings, sessions: SessionFactory, env: Any) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    settings = mail_settings.model_copy(update={"mail_in_tls_cert": tmp_path / "cert.pem",
                                                "mail_in_tls_key": tmp_path / "key.pem"})
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    def talk(port: int) -> tuple[int, bool]:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.starttls(context=client_context)
            smtp.ehlo()
            smtp.mail("ana@example.com")
            return smtp.rcpt(f"nobody@{DOMAIN}")[0], isinstance(smtp.sock, ssl.SSLSocket)

    async with smtp_receiver(settings, sessions, env.client, port=free_port()) as server:
        answer = await asyncio.to_thread(talk, server.sockets[0].getsockname()[1])
    assert answer == (550, True)
