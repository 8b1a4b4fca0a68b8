"""How far an SMTP conversation got decides what a failure means: before the
message content went out it surely was not sent; after, without the server's
answer, it is in doubt — never "try again", which could deliver it twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from communications.channels.base import (
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from communications.channels.email import SmtpEmailSender
from communications.rendered import RenderedMessage
from guest_journey.reservations import Channel

SENDER = "Hotel Copa Mar <stay@hotel.example>"


def outgoing() -> Outgoing:
    return Outgoing(
        message_id="m-1",
        reservation_id="R1",
        channel=Channel.email,
        recipient="ana@example.com",
        guest_name="Ana",
        rendered=RenderedMessage(
            template="checkin_invitation", channel=Channel.email, language="pt-BR",
            subject="Check-in", text="Olá, Ana",
        ),
    )


class ScriptedSmtp:
    """A loopback SMTP peer that answers a normal conversation and, at the end of
    the message content (or at DATA), does what the test asks: answer with
    `after_content`, close the connection (None), or say nothing (``"hang"``)."""

    def __init__(self, *, at_data: str = "354 go ahead", after_content: str | None = "250 queued") -> None:
        self.at_data = at_data
        self.after_content = after_content
        self.contents: list[bytes] = []
        self.content_received = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while line := await reader.readline():
                command = line.decode().strip().upper()
                if command.startswith(("EHLO", "HELO")):
                    writer.write(b"250 scripted\r\n")
                elif command.startswith(("MAIL", "RCPT", "RSET", "NOOP")):
                    writer.write(b"250 ok\r\n")
                elif command == "QUIT":
                    writer.write(b"221 bye\r\n")
                    break
                elif command == "DATA":
                    writer.write(f"{self.at_data}\r\n".encode())
                    if not self.at_data.startswith("354"):
                        continue
                    self.contents.append(await reader.readuntil(b"\r\n.\r\n"))
                    self.content_received.set()
                    if self.after_content is None:
                        break  # the connection drops: no answer
                    if self.after_content == "hang":
                        await asyncio.Event().wait()
                    writer.write(f"{self.after_content}\r\n".encode())
                await writer.drain()
        finally:
            writer.close()


@asynccontextmanager
async def scripted(**behaviour: str | None) -> AsyncIterator[tuple[ScriptedSmtp, Callable[..., SmtpEmailSender]]]:
    peer = ScriptedSmtp(**behaviour)  # type: ignore[arg-type]
    server = await asyncio.start_server(peer.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    def sender(timeout: float = 5.0) -> SmtpEmailSender:
        return SmtpEmailSender("127.0.0.1", port, None, None, "none", SENDER, timeout=timeout)

    async with server:
        yield peer, sender


async def test_a_connection_dropped_after_the_content_leaves_the_message_in_doubt() -> None:
    async with scripted(after_content=None) as (peer, sender):
        with pytest.raises(InDoubtDeliveryError, match="dropped the connection after the message was handed over"):
            await sender().send(outgoing())
    assert len(peer.contents) == 1  # the server has the whole message


async def test_no_answer_after_the_content_within_the_timeout_leaves_it_in_doubt() -> None:
    async with scripted(after_content="hang") as (peer, sender):
        # Long enough for the conversation before the content on a busy machine: the
        # timeout must strike after the content was handed over.
        with pytest.raises(InDoubtDeliveryError, match="timed out after 2s after the message was handed over"):
            await sender(timeout=2.0).send(outgoing())
    assert peer.content_received.is_set()


async def test_a_refusal_after_the_content_is_the_server_s_answer_not_a_doubt() -> None:
    async with scripted(after_content="554 5.7.1 rejected as spam") as (_, sender):
        with pytest.raises(PermanentDeliveryError, match="554"):
            await sender().send(outgoing())
    async with scripted(after_content="451 4.3.0 try later") as (_, sender):
        with pytest.raises(TransientDeliveryError, match="451") as raised:
            await sender().send(outgoing())
    assert not isinstance(raised.value, InDoubtDeliveryError)


async def test_data_refused_before_the_content_is_surely_not_sent() -> None:
    async with scripted(at_data="452 4.3.1 insufficient storage") as (peer, sender):
        with pytest.raises(TransientDeliveryError, match="452") as raised:
            await sender().send(outgoing())
    assert not isinstance(raised.value, InDoubtDeliveryError)
    assert peer.contents == []


async def test_the_whole_conversation_is_bounded_by_the_timeout() -> None:
    """The worker's shutdown grace is derived from this bound (`longest_send`)."""
    async with scripted(after_content="hang") as (_, sender):
        smtp = sender(timeout=0.5)
        started = asyncio.get_running_loop().time()
        with pytest.raises(InDoubtDeliveryError):
            await smtp.send(outgoing())
        took = asyncio.get_running_loop().time() - started
    assert took < smtp.longest_send.total_seconds()
