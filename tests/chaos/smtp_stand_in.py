"""An SMTP server on loopback that may answer late, or never: aiosmtpd in its own thread.

    server = SmtpStandIn(answer=lambda recipient: SmtpAnswer.drop_after_data)
    await server.start()
    ...the worker sends to server.port...
    server.received      # our message id of every message the server took

What the server does once a message's DATA has ended (the final "."), by
`answer(recipient)`:

- `SmtpAnswer.accept`: 250 at once;
- `SmtpAnswer.slow`: 250 after `slow_by` seconds (within the client's timeout);
- `SmtpAnswer.drop_after_data`: closes the connection without a word.

In every case the message counts as received: the server has all of it and, a
real server, would deliver it. `before_answer`, when given, runs (in a thread)
after the message is taken and before the answer: the moment its sender is
about to record the hand-over.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from communications.channels.email import MESSAGE_ID_HEADER
from tests.loopback_servers import LoopbackServer
from tests.smtp_server import free_port


class SmtpAnswer(StrEnum):
    accept = "accept"
    slow = "slow"
    drop_after_data = "drop_after_data"


class _Handler:
    def __init__(
        self,
        answer: Callable[[str], SmtpAnswer],
        slow_by: float,
        before_answer: Callable[[], None] | None,
    ) -> None:
        self.answer = answer
        self.slow_by = slow_by
        self.before_answer = before_answer
        self.lock = threading.Lock()
        self.received: list[str] = []
        self.received_at: list[float] = []
        self.answers: list[SmtpAnswer] = []
        self.in_flight: set[str] = set()  # taken, not answered yet
        self.answered: list[str] = []  # 250 written to a connection still open
        self.answered_at: list[float] = []
        self.unheard: list[str] = []  # the client had gone before the (slow) answer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message_id = _message_id(envelope)
        answer = self.answer(envelope.rcpt_tos[0] if envelope.rcpt_tos else "")
        with self.lock:
            self.received.append(message_id)
            self.received_at.append(time.monotonic())
            self.answers.append(answer)
            self.in_flight.add(message_id)
        try:
            if self.before_answer is not None:
                await asyncio.to_thread(self.before_answer)
            if answer is SmtpAnswer.drop_after_data:
                assert server.transport is not None
                server.transport.close()  # what aiosmtpd writes next goes nowhere
                return "250 OK"
            if answer is SmtpAnswer.slow:
                await asyncio.sleep(self.slow_by)
            transport = server.transport
            with self.lock:
                if transport is None or transport.is_closing():
                    self.unheard.append(message_id)
                else:
                    self.answered.append(message_id)
                    self.answered_at.append(time.monotonic())
            return "250 Message accepted for delivery"
        finally:
            with self.lock:
                self.in_flight.discard(message_id)


def _message_id(envelope: Envelope) -> str:
    raw = envelope.original_content or envelope.content or b""
    data = raw if isinstance(raw, bytes) else raw.encode()
    header = f"{MESSAGE_ID_HEADER}:".lower().encode()
    for line in data.split(b"\r\n"):
        if not line:
            break  # end of the headers
        if line.lower().startswith(header):
            return line[len(header):].strip().decode()
    return "?"


class SmtpStandIn(LoopbackServer):
    def __init__(
        self,
        *,
        answer: Callable[[str], SmtpAnswer] = lambda _: SmtpAnswer.accept,
        slow_by: float = 0.0,
        before_answer: Callable[[], None] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self._handler = _Handler(answer, slow_by, before_answer)
        self._controller: Controller | None = None

    @property
    def received(self) -> list[str]:
        """Our message id (`X-Guest-Journey-Message-Id`) of every message taken, in order."""
        with self._handler.lock:
            return list(self._handler.received)

    @property
    def received_at(self) -> list[float]:
        with self._handler.lock:
            return list(self._handler.received_at)

    @property
    def in_flight(self) -> set[str]:
        """Messages taken whose answer is still to come."""
        with self._handler.lock:
            return set(self._handler.in_flight)

    @property
    def answered(self) -> list[str]:
        with self._handler.lock:
            return list(self._handler.answered)

    @property
    def answered_at(self) -> list[float]:
        """When each of `answered` was answered, as `time.monotonic()`."""
        with self._handler.lock:
            return list(self._handler.answered_at)

    @property
    def unheard(self) -> list[str]:
        """Messages whose sender had hung up before the answer came."""
        with self._handler.lock:
            return list(self._handler.unheard)

    def count(self, answer: SmtpAnswer) -> int:
        with self._handler.lock:
            return self._handler.answers.count(answer)

    async def start(self) -> None:
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None
