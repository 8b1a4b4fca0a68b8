"""A real SMTP server on loopback for tests: aiosmtpd in its own thread.

    async with SmtpTestServer() as server:
        ...send to server.host:server.port...
        server.received[0]["Subject"]

`refuse` maps recipient addresses to the reply their RCPT gets, e.g.
`{"gone@example.com": "550 5.1.1 No such user"}` or a 4xx for a deferral.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage
from types import TracebackType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class _Collector:
    def __init__(self, refuse: dict[str, str]) -> None:
        self.refuse = {address.lower(): reply for address, reply in refuse.items()}
        self.received: list[EmailMessage] = []
        self.received_at: list[float] = []
        self.envelopes: list[Envelope] = []
        self.arrived = threading.Condition()

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        # Line endings as in a file, so that bodies compare equal to what was rendered.
        message = email.message_from_bytes(
            data.replace(b"\r\n", b"\n"), policy=email.policy.default
        )
        assert isinstance(message, EmailMessage)
        with self.arrived:
            self.envelopes.append(envelope)
            self.received.append(message)
            self.received_at.append(time.monotonic())
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpTestServer:
    def __init__(self, *, host: str = "127.0.0.1", refuse: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = free_port(host)
        self._collector = _Collector(refuse or {})
        self._controller: Controller | None = None

    @property
    def received(self) -> list[EmailMessage]:
        """Every accepted message, parsed with `email.policy.default` (with `\\n` line endings)."""
        return self._collector.received

    @property
    def received_at(self) -> list[float]:
        """When each of `received` was accepted, as `time.monotonic()`."""
        return self._collector.received_at

    @property
    def envelopes(self) -> list[Envelope]:
        """The SMTP envelopes (`mail_from`, `rcpt_tos`) of the accepted messages."""
        return self._collector.envelopes

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until `count` messages have arrived (the server runs in its own thread)."""
        collector = self._collector

        def wait() -> bool:
            with collector.arrived:
                return collector.arrived.wait_for(lambda: len(collector.received) >= count, timeout)

        if not await asyncio.to_thread(wait):
            raise TimeoutError(f"{len(collector.received)} of {count} messages arrived in {timeout} s")
        return collector.received

    async def start(self) -> None:
        self._controller = Controller(self._collector, hostname=self.host, port=self.port)
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None

    async def __aenter__(self) -> SmtpTestServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()
