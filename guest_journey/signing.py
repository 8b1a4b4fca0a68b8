"""The service's keyed MACs: one purpose each, and their constant-time verification.

Everything the service signs or digests under its secret key is made here:
guest links and reply addresses (`guest_journey.guest_links`), the digest an
erasure leaves of an unsubscribed address (`communications.unsubscribes`), the
staff session cookie, its key fingerprint and the staff forms' CSRF token
(`api.staff.session`), and the guest pages' CSRF token (`api.guest.visit`).

A `Purpose` is HMAC-SHA256 over its salt followed by the message, cut to the
purpose's length and written as base64url (unpadded) or hex. The salts are the
ones the values already issued were made with, so links already sent, cookies
already set and digests already stored keep matching (`tests/test_signing.py`
holds their golden values). Guest links and address digests have the empty
salt for that reason: a link's payload is base64url, so it never begins with
another purpose's salt (each ends in `:`), but the digest of an address that
read exactly like a link's payload would share that link's MAC. The digests
stay in the database and are never shown; a new purpose takes a salt of its own
that no other salt begins with.

Verification takes one key or the keys to try, current first and then
`GUEST_JOURNEY_SECRET_KEY_FALLBACKS` (`Settings.verification_secret_keys`): a
value made before the key was rotated still verifies. Every key is tried and
compared with `hmac.compare_digest`, so the time taken tells neither how much
of a signature was right nor which key matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from enum import Enum, unique
from typing import Literal

Secrets = str | Sequence[str]  # one key, or the keys to verify with (current first)
TextForm = Literal["base64url", "hex"]


@unique
class Purpose(Enum):
    """What a MAC is for: its salt, the bytes kept, and how they are written."""

    GUEST_LINK = ("guest-link", "", 20, "base64url")
    REPLY_ADDRESS = ("reply-address", "reply:", 9, "base64url")  # 12 characters, for the local part
    UNSUBSCRIBE_DIGEST = ("unsubscribe-digest", "", 32, "hex")
    STAFF_SESSION = ("staff-session", "staff-session:", 32, "base64url")
    STAFF_KEY = ("staff-key", "staff-key:", 18, "base64url")
    STAFF_CSRF = ("staff-csrf", "staff-csrf:", 32, "base64url")
    GUEST_CSRF = ("guest-csrf", "csrf:", 24, "base64url")

    def __init__(self, label: str, salt: str, size: int, form: TextForm) -> None:
        self.label = label
        self.salt = salt
        self.size = size
        self.form: TextForm = form


def keys(secrets: Secrets) -> tuple[str, ...]:
    """The keys to try, current first."""
    return (secrets,) if isinstance(secrets, str) else tuple(secrets)


def sign(purpose: Purpose, secret: str, message: str) -> str:
    """The MAC of `message` for `purpose` under `secret`, as text."""
    digest = hmac.new(secret.encode(), (purpose.salt + message).encode(), hashlib.sha256).digest()[: purpose.size]
    if purpose.form == "hex":
        return digest.hex()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify(purpose: Purpose, secrets: Secrets, message: str, signature: str) -> bool:
    """Whether `signature` is the MAC of `message` for `purpose` under one of the keys. Every
    key is tried, so the time taken does not tell which one matched."""
    matched = False
    for secret in keys(secrets):
        matched |= same(signature, sign(purpose, secret, message))
    return matched


def same(given: str, expected: str) -> bool:
    """Constant-time comparison; any text a caller sends (not only ASCII) is just unequal."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
