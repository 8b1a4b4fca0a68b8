"""The one interface every channel implements."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from pydantic import BaseModel

from communications.rendered import RenderedMessage
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel


class Outgoing(BaseModel):
    """One message for one channel: who, what, and the threading it belongs to."""

    message_id: str
    reservation_id: str
    channel: Channel
    recipient: str
    guest_name: str
    rendered: RenderedMessage
    marketing: bool = False
    in_reply_to: str | None = None
    reply_token: str | None = None
    unsubscribe_url: str | None = None
    window_open: bool = False  # WhatsApp: the guest wrote within 24 h, free text is allowed


class Delivery(BaseModel):
    """What the channel did with it."""

    status: MessageStatus = MessageStatus.sent
    provider_message_id: str | None = None
    note: str | None = None


class DeliveryError(Exception):
    """Base of channel failures; `str(error)` is the reason staff see."""


class TransientDeliveryError(DeliveryError):
    """Worth retrying later (server down, rate limited)."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (bad address, rejected): fall back to the next channel."""


class InDoubtDeliveryError(DeliveryError):
    """The request reached the provider but its answer did not reach us (a timeout
    or a dropped connection after the message was written, a success without an id):
    the guest may or may not have it. Never sent again blindly."""


class ChannelSender(Protocol):
    channel: Channel
    # Sending the same message again replaces it, never duplicates it (our own
    # web chat, the local outbox): an interrupted attempt may simply be repeated.
    retry_is_safe: bool
    # The provider reports what became of a message (WhatsApp status webhooks),
    # so a send in doubt can wait for that report before it is declared in doubt.
    reports_status: bool
    # The longest one `send` may take, every attempt and fallback inside it
    # included: the worker's graceful shutdown is derived from it.
    @property
    def longest_send(self) -> timedelta: ...

    async def send(self, outgoing: Outgoing) -> Delivery: ...
