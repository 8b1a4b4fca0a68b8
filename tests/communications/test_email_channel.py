from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from communications.channels.base import Outgoing, PermanentDeliveryError, TransientDeliveryError
from communications.channels.email import OutboxEmailSender, SmtpEmailSender
from communications.rendered import RenderedMessage
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel
from tests.smtp_server import SmtpTestServer, free_port

SENDER = "Hotel Copa Mar <stay@copamar.example>"


def outgoing(**overrides: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": "5b0c6f1e-2d1a-5c39-9f51-0c1f2b3a4d5e",
        "reservation_id": "R-1001",
        "channel": Channel.email,
        "recipient": "maria@example.com",
        "guest_name": "Maria Oliveira",
        "rendered": RenderedMessage(
            template="upsell_offer",
            language="pt-BR",
            subject="Algo especial para a sua estadia: Upgrade de quarto",
            text="Olá, Maria!\n\nTemos uma oferta para você.",
            html="<!DOCTYPE html><html><body><p>Olá, Maria!</p></body></html>",
        ),
    }
    fields.update(overrides)
    return Outgoing(**fields)


def smtp_sender(server: SmtpTestServer, **overrides: Any) -> SmtpEmailSender:
    settings: dict[str, Any] = {
        "host": server.host,
        "port": server.port,
        "username": None,
        "password": None,
        "tls": "starttls",
        "sender": SENDER,
    }
    settings.update(overrides)
    return SmtpEmailSender(**settings)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def test_sends_text_and_html_with_threading_and_unsubscribe_headers(
    smtp_server: SmtpTestServer,
) -> None:
    message = outgoing(
        marketing=True,
        in_reply_to="0e8f4a8e-8d8f-4c57-9d36-2f5f0a1b9c77",
        reply_token="eyJyIjoiUi0xMDAxIn0.c2ln",
        unsubscribe_url="https://stay.example/guest/tok/unsubscribe",
    )

    delivery = await smtp_sender(smtp_server).send(message)

    assert delivery.status is MessageStatus.sent
    assert delivery.provider_message_id == f"<{message.message_id}@copamar.example>"
    [received] = smtp_server.received
    [envelope] = smtp_server.envelopes
    assert envelope.mail_from == "stay@copamar.example"
    assert envelope.rcpt_tos == ["maria@example.com"]
    assert received.get_content_type() == "multipart/alternative"
    assert parts(received) == (message.rendered.text + "\n", f"{message.rendered.html}\n")
    assert received["Subject"] == "Algo especial para a sua estadia: Upgrade de quarto"
    assert received["To"] == "Maria Oliveira <maria@example.com>"
    assert received["From"] == SENDER
    assert received["Message-ID"] == f"<{message.message_id}@copamar.example>"
    assert received["X-Guest-Journey-Message-Id"] == message.message_id
    assert received["In-Reply-To"] == "<0e8f4a8e-8d8f-4c57-9d36-2f5f0a1b9c77@copamar.example>"
    assert received["References"] == received["In-Reply-To"]
    assert received["Reply-To"] == "reply+eyJyIjoiUi0xMDAxIn0.c2ln@copamar.example"
    assert received["List-Unsubscribe"] == "<https://stay.example/guest/tok/unsubscribe>"
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Date"] is not None


async def test_service_messages_carry_no_unsubscribe_or_threading_headers(
    smtp_server: SmtpTestServer,
) -> None:
    message = outgoing(
        marketing=False, unsubscribe_url="https://stay.example/guest/tok/unsubscribe"
    )

    await smtp_sender(smtp_server).send(message)

    [received] = smtp_server.received
    for header in (
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "In-Reply-To",
        "References",
        "Reply-To",
    ):
        assert received[header] is None, header


async def test_text_only_message_and_non_ascii_names(smtp_server: SmtpTestServer) -> None:
    rendered = RenderedMessage(
        template="free_text", language="es", subject="Un mensaje de Señorío", text="¡Hola!"
    )
    message = outgoing(guest_name="Zoë Núñez", recipient="zoe@example.es", rendered=rendered)

    await smtp_sender(smtp_server).send(message)

    [received] = smtp_server.received
    assert received.get_content_type() == "text/plain"
    assert received.get_content() == "¡Hola!\n"
    assert received["Subject"] == "Un mensaje de Señorío"
    assert received["To"].addresses[0].display_name == "Zoë Núñez"


async def test_server_not_running_is_transient() -> None:
    sender = SmtpEmailSender("127.0.0.1", free_port(), None, None, "starttls", SENDER, timeout=5)

    with pytest.raises(TransientDeliveryError, match="SMTP server unreachable"):
        await sender.send(outgoing())


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """Accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_silent_server_times_out_as_transient(silent_server: int) -> None:
    sender = SmtpEmailSender("127.0.0.1", silent_server, None, None, "starttls", SENDER, timeout=0.3)

    with pytest.raises(TransientDeliveryError, match="timed out"):
        await sender.send(outgoing())


async def test_server_hanging_up_is_transient() -> None:
    async def greet_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mail.example ESMTP\r\n")
        await writer.drain()
        await reader.readline()
        writer.close()

    server = await asyncio.start_server(greet_and_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientDeliveryError, match="SMTP server unreachable"):
            await SmtpEmailSender("127.0.0.1", port, None, None, "starttls", SENDER, timeout=5).send(
                outgoing()
            )
    finally:
        server.close()


async def test_recipient_refused_with_550_is_permanent() -> None:
    async with SmtpTestServer(refuse={"gone@example.com": "550 5.1.1 No such user here"}) as server:
        with pytest.raises(PermanentDeliveryError, match="550"):
            await smtp_sender(server).send(outgoing(recipient="gone@example.com"))
        assert server.received == []


async def test_recipient_deferred_with_450_is_transient() -> None:
    async with SmtpTestServer(
        refuse={"full@example.com": "450 4.2.1 Mailbox busy, try later"}
    ) as server:
        with pytest.raises(TransientDeliveryError, match="450"):
            await smtp_sender(server).send(outgoing(recipient="full@example.com"))


async def test_malformed_address_is_permanent(smtp_server: SmtpTestServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="not valid"):
        await smtp_sender(smtp_server).send(outgoing(recipient="maria at example"))
    assert smtp_server.received == []


def test_default_ports() -> None:
    assert SmtpEmailSender("mail.example", None, None, None, "starttls", SENDER).port == 25
    assert SmtpEmailSender("mail.example", None, "u", "p", "starttls", SENDER).port == 587
    assert SmtpEmailSender("mail.example", None, "u", "p", "tls", SENDER).port == 465
    assert SmtpEmailSender("mail.example", None, "u", "p", "none", SENDER).port == 25


def test_sender_must_be_an_address() -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        SmtpEmailSender("localhost", 25, None, None, "none", "Hotel Copa Mar")
    with pytest.raises(ValueError, match="not an e-mail address"):
        OutboxEmailSender(Path("outbox"), "nobody")


async def test_outbox_writes_the_message_once_per_id(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "outbox"
    sender = OutboxEmailSender(directory, SENDER)
    message = outgoing(marketing=True, unsubscribe_url="https://stay.example/u")

    first = await sender.send(message)
    again = await sender.send(
        message.model_copy(
            update={"rendered": message.rendered.model_copy(update={"subject": "Second"})}
        )
    )

    path = directory / f"{message.message_id}.eml"
    assert [p.name for p in directory.iterdir()] == [path.name]
    assert first.status is MessageStatus.queued
    assert (
        first.provider_message_id
        == again.provider_message_id
        == f"<{message.message_id}@copamar.example>"
    )
    assert first.note == f"SMTP not configured: kept in the local outbox {path}"
    stored = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(stored, EmailMessage)
    assert stored["Subject"] == "Second"
    assert stored["Message-ID"] == first.provider_message_id
    assert stored["List-Unsubscribe"] == "<https://stay.example/u>"
    assert parts(stored)[0] == message.rendered.text + "\n"


def test_both_senders_are_email_channels(tmp_path: Path) -> None:
    assert SmtpEmailSender.channel is Channel.email
    assert OutboxEmailSender(tmp_path, SENDER).channel is Channel.email
