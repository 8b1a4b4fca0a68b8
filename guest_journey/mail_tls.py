"""How the mail connections are secured: SMTP out (`GUEST_JOURNEY_SMTP_TLS`, or the
deprecated `GUEST_JOURNEY_SMTP_STARTTLS`) and IMAP in (`GUEST_JOURNEY_IMAP_TLS`)."""

from __future__ import annotations

from typing import Literal

SmtpTls = Literal["starttls", "tls", "none"]
ImapTls = Literal["tls", "none"]
SMTPS_PORT = 465
IMAPS_PORT = 993
IMAP_PORT = 143


def smtp_tls(*, tls: SmtpTls | None, starttls: bool | None, port: int | None) -> SmtpTls:
    """How SMTP is secured: `tls` when set; unset, the deprecated `starttls`; neither,
    implicit TLS on port 465 and STARTTLS whenever offered elsewhere."""
    if tls is not None:
        return tls
    if starttls is not None:
        return smtp_tls_of_starttls(starttls, port)
    return "tls" if port == SMTPS_PORT else "starttls"


def smtp_tls_of_starttls(starttls: bool, port: int | None) -> SmtpTls:
    """What the deprecated GUEST_JOURNEY_SMTP_STARTTLS meant: true, STARTTLS; false,
    implicit TLS on port 465 and nothing elsewhere."""
    if starttls:
        return "starttls"
    return "tls" if port == SMTPS_PORT else "none"


def imap_port(port: int | None, tls: ImapTls) -> int:
    """The port given, else IMAPS's with TLS and IMAP's without."""
    return port or (IMAPS_PORT if tls == "tls" else IMAP_PORT)
