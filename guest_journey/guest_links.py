"""Signed, expiring links to the guest pages (`/guest/{token}/...`).

A token names one reservation and one purpose, carries its expiry and is
signed under the service's secret key (`guest_journey.signing`); verification
also accepts the earlier keys of `GUEST_JOURNEY_SECRET_KEY_FALLBACKS`, so that
rotating the key keeps the links already sent working. An offer link's token
also names its offer (`o`): it opens that offer's page and no other. Offer
links sent before the offer was signed in (no `o`) still open, but only for an
offer the journey has actually offered to this guest (docs/guest-pages.md).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from guest_journey import signing
from guest_journey.signing import Secrets


class Purpose(StrEnum):
    checkin = "checkin"
    offer = "offer"
    feedback = "feedback"
    chat = "chat"
    unsubscribe = "unsubscribe"


FEEDBACK_VALID_AFTER_DEPARTURE = timedelta(days=30)
UNSUBSCRIBE_VALID_AFTER_DEPARTURE = timedelta(days=365)


class GuestTokenError(ValueError):
    """The link is not ours, was altered, or is for something else."""


class ExpiredGuestToken(GuestTokenError):
    """The link was ours but has expired."""


class GuestToken(BaseModel):
    reservation_id: str
    purpose: Purpose
    expires_at: datetime
    offer: str | None = None  # the offer an offer link is for; None in links made before it was signed in


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(
    secret: str, reservation_id: str, purpose: Purpose, expires_at: datetime, offer: str | None = None
) -> str:
    body: dict[str, object] = {"r": reservation_id, "p": purpose.value, "e": int(expires_at.timestamp())}
    if offer is not None:
        body["o"] = offer
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{payload}.{signing.sign(signing.Purpose.GUEST_LINK, secret, payload)}"


def read_token(secret: Secrets, token: str, purpose: Purpose, now: datetime | None = None) -> GuestToken:
    payload, _, signature = token.partition(".")
    if not payload or not signature or not signing.verify(signing.Purpose.GUEST_LINK, secret, payload, signature):
        raise GuestTokenError("this link is not valid")
    try:
        body = json.loads(_unb64(payload))
        parsed = GuestToken(
            reservation_id=body["r"],
            purpose=body["p"],
            expires_at=datetime.fromtimestamp(body["e"], UTC),
            offer=body.get("o"),
        )
    except (ValueError, KeyError, TypeError, ValidationError) as error:
        raise GuestTokenError("this link is not valid") from error
    if parsed.purpose is not purpose:
        raise GuestTokenError("this link is for another page")
    if parsed.expires_at <= (now or datetime.now(UTC)):
        raise ExpiredGuestToken("this link has expired")
    return parsed


class GuestLinks:
    """Builds the links a message carries for one reservation."""

    def __init__(self, base_url: str, secret: str) -> None:
        self._base_url = base_url.rstrip("/")
        self._secret = secret

    def url(
        self, reservation_id: str, purpose: Purpose, expires_at: datetime, path: str, offer: str | None = None
    ) -> str:
        token = make_token(self._secret, reservation_id, purpose, expires_at, offer)
        return f"{self._base_url}/guest/{token}/{path}"

    def for_message(self, reservation_id: str, departure: datetime, offer: str | None) -> dict[str, str]:
        feedback_until = departure + FEEDBACK_VALID_AFTER_DEPARTURE
        links = {
            "checkin_url": self.url(reservation_id, Purpose.checkin, departure, "check-in"),
            "feedback_url": self.url(reservation_id, Purpose.feedback, feedback_until, "feedback"),
            "chat_url": self.url(reservation_id, Purpose.chat, feedback_until, "chat"),
        }
        if offer:
            offer_url = self.url(reservation_id, Purpose.offer, departure, f"offers/{offer}", offer)
            links.update(offer_url=offer_url, accept_url=f"{offer_url}?answer=accept",
                         decline_url=f"{offer_url}?answer=decline")
            links["unsubscribe_url"] = self.url(
                reservation_id, Purpose.unsubscribe, departure + UNSUBSCRIBE_VALID_AFTER_DEPARTURE, "unsubscribe"
            )
        return links

    def reply_token(self, message_id: str) -> str:
        return reply_token(self._secret, message_id)


# An e-mail's Reply-To is `reply+<token>@domain`: the token names the message
# replied to (so its reservation) and fits the 64-character local part.
_REPLY_ADDRESS = re.compile(r"reply\+([0-9a-f]{32})([A-Za-z0-9_-]{12})@", re.IGNORECASE)


def reply_token(secret: str, message_id: str) -> str:
    hex_id = uuid.UUID(message_id).hex
    return hex_id + signing.sign(signing.Purpose.REPLY_ADDRESS, secret, hex_id)


def message_replied_to(secret: Secrets, address: str) -> str | None:
    """The message id in a `reply+<token>@…` address, when the token is ours and intact."""
    found = _REPLY_ADDRESS.search(address)
    if found is None:
        return None
    hex_id, signature = found.group(1).lower(), found.group(2)
    if not signing.verify(signing.Purpose.REPLY_ADDRESS, secret, hex_id, signature):
        return None
    return str(uuid.UUID(hex_id))
