"""SMTP over TLS against a real aiosmtpd on loopback: STARTTLS whenever the server
offers it, implicit TLS (SMTPS), never with `none`, and credentials never in clear.

The server's certificate comes from a `trustme` test CA; the sender trusts it
through its `tls_context` (production uses the system's CAs).
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Iterator

import pytest
import trustme
from pydantic import ValidationError

from communications.channels.base import Outgoing, PermanentDeliveryError, TransientDeliveryError
from communications.channels.email import SmtpEmailSender
from communications.rendered import RenderedMessage
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.smtp_server import SmtpTestServer
from worker import build_channels

SENDER = "Hotel Copa Mar <reservas@copamar.example>"
USER, PASSWORD = "hotel", "correct horse battery staple"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def outgoing(message_id: str = "msg-tls-1") -> Outgoing:
    return Outgoing(
        message_id=message_id,
        reservation_id="R-TLS",
        channel=Channel.email,
        recipient="maria@example.com",
        guest_name="Maria Silva",
        rendered=RenderedMessage(
            template="checkin_invitation", language="pt-BR", subject="Check-in online", text="Olá, Maria!"
        ),
    )


def sender(server: SmtpTestServer, tls: str, context: ssl.SSLContext | None, *, login: bool = False) -> SmtpEmailSender:
    return SmtpEmailSender(
        server.host, server.port, USER if login else None, PASSWORD if login else None,
        tls, SENDER, timeout=10, tls_context=context,  # type: ignore[arg-type]
    )


async def test_starttls_is_used_whenever_the_server_offers_it(server_tls, client_tls):
    async with SmtpTestServer(starttls=server_tls) as server:
        await sender(server, "starttls", client_tls).send(outgoing())
    assert server.tls == [True]
    assert server.received[0]["Subject"] == "Check-in online"


async def test_auth_goes_over_starttls(server_tls, client_tls):
    async with SmtpTestServer(starttls=server_tls, logins={USER: PASSWORD}) as server:
        await sender(server, "starttls", client_tls, login=True).send(outgoing())
    assert server.logins == [(USER, True)]  # the password went out only once TLS was up
    assert server.tls == [True]


async def test_a_wrong_password_over_starttls_is_permanent(server_tls, client_tls):
    async with SmtpTestServer(starttls=server_tls, logins={USER: "another"}) as server:
        with pytest.raises(PermanentDeliveryError, match="authentication failed"):
            await sender(server, "starttls", client_tls, login=True).send(outgoing())
    assert server.received == []


async def test_none_never_upgrades(server_tls, client_tls):
    async with SmtpTestServer(starttls=server_tls) as server:
        await sender(server, "none", client_tls).send(outgoing())
    assert server.tls == [False]


async def test_tls_speaks_tls_from_the_first_byte(server_tls, client_tls):
    async with SmtpTestServer(smtps=server_tls, logins={USER: PASSWORD}) as server:
        await sender(server, "tls", client_tls, login=True).send(outgoing())
    assert server.logins == [(USER, True)]
    assert server.tls == [True]


async def test_credentials_are_never_sent_when_the_server_offers_no_starttls(client_tls):
    async with SmtpTestServer(logins={USER: PASSWORD}) as server:  # AUTH offered, in clear
        with pytest.raises(PermanentDeliveryError, match="offers no STARTTLS"):
            await sender(server, "starttls", client_tls, login=True).send(outgoing())
    assert server.logins == []
    assert server.received == []


async def test_without_credentials_a_server_without_starttls_gets_the_message_in_clear_with_a_warning(
    client_tls, caplog
):
    caplog.set_level(logging.WARNING, logger="communications.channels.email")
    async with SmtpTestServer() as server:
        smtp = sender(server, "starttls", client_tls)
        await smtp.send(outgoing("msg-clear-1"))
        await smtp.send(outgoing("msg-clear-2"))
    assert server.tls == [False, False]
    warnings = [r.getMessage() for r in caplog.records if "offers no STARTTLS" in r.getMessage()]
    assert len(warnings) == 1 and "msg-clear-1" in warnings[0]  # once, not per message
    assert "maria@example.com" not in warnings[0]


async def test_a_certificate_the_client_does_not_trust_fails_and_nothing_falls_back_to_clear(server_tls):
    async with SmtpTestServer(starttls=server_tls, logins={USER: PASSWORD}) as server:
        with pytest.raises(TransientDeliveryError):
            await sender(server, "starttls", None, login=True).send(outgoing())  # the system's CAs
    assert server.logins == [] and server.received == []


# -- settings and the worker's wiring ---------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("SMTP_TLS", "SMTP_STARTTLS", "SMTP_PORT", "SMTP_HOST", "SMTP_USERNAME", "SMTP_PASSWORD", "ENV"):
        monkeypatch.delenv(f"GUEST_JOURNEY_{name}", raising=False)
    yield


def production(**smtp: object) -> Settings:
    return Settings(
        env="production",
        api_keys=f"{secrets.token_urlsafe(32)}:admin",
        secret_key=secrets.token_urlsafe(32),
        database_url="postgresql://guest:journey@127.0.0.1/guest_journey",
        smtp_host="smtp.hotel.example",
        **smtp,  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_smtp_auth_without_tls():
    with pytest.raises(ValidationError, match="refuses SMTP AUTH without TLS"):
        production(smtp_username=USER, smtp_password=PASSWORD, smtp_tls="none")
    with pytest.raises(ValidationError, match="refuses SMTP AUTH without TLS"):
        production(smtp_username=USER, smtp_password=PASSWORD, smtp_starttls=False)  # the deprecated spelling
    production(smtp_username=USER, smtp_password=PASSWORD)  # starttls by default
    production(smtp_username=USER, smtp_password=PASSWORD, smtp_tls="tls")
    production(smtp_tls="none")  # no credentials: a relay that trusts the network


@pytest.mark.usefixtures("clean_environment")
def test_production_refuses_it_from_the_environment_too(monkeypatch):
    monkeypatch.setenv("GUEST_JOURNEY_SMTP_USERNAME", USER)
    monkeypatch.setenv("GUEST_JOURNEY_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("GUEST_JOURNEY_SMTP_TLS", "none")
    with pytest.raises(ValidationError, match="GUEST_JOURNEY_SMTP_TLS=starttls or tls"):
        production()


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("given", "tls"),
    [
        ({}, "starttls"),
        ({"smtp_port": 465}, "tls"),
        ({"smtp_tls": "none"}, "none"),
        ({"smtp_tls": "TLS"}, "tls"),
        ({"smtp_tls": ""}, "starttls"),
        ({"smtp_starttls": True}, "starttls"),
        ({"smtp_starttls": False}, "none"),
        ({"smtp_starttls": False, "smtp_port": 465}, "tls"),
        ({"smtp_starttls": True, "smtp_tls": "starttls"}, "starttls"),
    ],
)
def test_the_tls_mode_and_its_deprecated_spelling(given, tls):
    assert Settings(**given).resolved_smtp_tls == tls


@pytest.mark.usefixtures("clean_environment")
def test_the_two_spellings_must_agree():
    with pytest.raises(ValidationError, match="contradicts the deprecated"):
        Settings(smtp_tls="starttls", smtp_starttls=False)


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("given", "tls", "port"),
    [
        ({}, "starttls", 25),
        ({"smtp_username": USER}, "starttls", 587),
        ({"smtp_tls": "tls"}, "tls", 465),
        ({"smtp_starttls": True}, "starttls", 587),  # the deprecated setting's port, as before
        ({"smtp_starttls": False}, "none", 25),
        ({"smtp_port": 2525}, "starttls", 2525),
    ],
)
def test_the_worker_builds_the_sender_the_settings_describe(given, tls, port):
    smtp = build_channels(Settings(smtp_host="smtp.hotel.example", **given))[Channel.email]
    assert isinstance(smtp, SmtpEmailSender)
    assert (smtp.tls, smtp.port) == (tls, port)


@pytest.mark.usefixtures("clean_environment")
async def test_the_worker_wiring_upgrades_with_starttls(server_tls, client_tls, monkeypatch):
    """Through `build_channels`: the default setting upgrades a server that offers STARTTLS
    and logs in over it (the test CA is trusted by handing the sender its context)."""
    async with SmtpTestServer(starttls=server_tls, logins={USER: PASSWORD}) as server:
        settings = Settings(
            smtp_host=server.host, smtp_port=server.port, smtp_username=USER, smtp_password=PASSWORD,
            email_from=SENDER,
        )
        smtp = build_channels(settings)[Channel.email]
        assert isinstance(smtp, SmtpEmailSender)
        smtp.tls_context = client_tls
        await smtp.send(outgoing())
    assert server.logins == [(USER, True)] and server.tls == [True]


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="not one of starttls, tls, none"):
        SmtpEmailSender("mail.example", None, None, None, "ssl", SENDER)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Settings(smtp_tls="ssl")
