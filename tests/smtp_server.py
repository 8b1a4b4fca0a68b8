"""A real SMTP server on loopback for tests: aiosmtpd in its own thread.

    async with SmtpTestServer() as server:
        ...send to server.host:server.port...
        server.received[0]["Subject"]

`refuse` maps recipient addresses to the reply their RCPT gets, e.g.
`{"gone@example.com": "550 5.1.1 No such user"}` or a 4xx for a deferral.

TLS and AUTH (certificates from a `trustme` test CA): `starttls=` a
server `ssl.SSLContext` offers STARTTLS; `smtps=` one speaks TLS from the first
byte instead; `logins={"user": "password"}` offers AUTH (PLAIN, LOGIN), also
before TLS, so that a client sending credentials in clear would be seen doing
it. `server.tls[i]` says whether message i arrived over TLS, and
`server.logins` lists each AUTH attempt as (user, over TLS).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.loopback_servers import LoopbackServer


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
        self.tls: list[bool] = []
        self.logins: list[tuple[str, bool]] = []
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
            self.tls.append(_over_tls(server))
            self.envelopes.append(envelope)
            self.received.append(message)
            self.received_at.append(time.monotonic())
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


def _over_tls(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("sslcontext") is not None


class _Accounts:
    def __init__(self, logins: dict[str, str], collector: _Collector) -> None:
        self.logins = logins
        self.collector = collector

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.collector.logins.append((user, _over_tls(server)))
        return AuthResult(success=self.logins.get(user) == password, handled=False)


class SmtpTestServer(LoopbackServer):
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        refuse: dict[str, str] | None = None,
        starttls: ssl.SSLContext | None = None,
        smtps: ssl.SSLContext | None = None,
        logins: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = free_port(host)
        self._collector = _Collector(refuse or {})
        self._controller: Controller | None = None
        self._starttls = starttls
        self._smtps = smtps
        self._logins = logins

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

    @property
    def tls(self) -> list[bool]:
        """For each of `received`: whether it came over TLS (STARTTLS or SMTPS)."""
        return self._collector.tls

    @property
    def logins(self) -> list[tuple[str, bool]]:
        """Each AUTH attempt: the user name, and whether the connection was TLS by then."""
        return self._collector.logins

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
        secure: dict[str, object] = {}
        if self._starttls is not None:
            secure["tls_context"] = self._starttls
        if self._smtps is not None:
            secure["ssl_context"] = self._smtps
        if self._logins is not None:
            secure.update(authenticator=_Accounts(self._logins, self._collector), auth_require_tls=False)
        self._controller = Controller(self._collector, hostname=self.host, port=self.port, **secure)
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None
