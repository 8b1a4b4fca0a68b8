"""The words of a message, and what the workflow asks of the messaging activity."""

from __future__ import annotations

import uuid
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from guest_journey.reservations import Channel, Guest

_MESSAGE_NAMESPACE = uuid.UUID("6f1d3c52-8a43-4c8e-9d7e-3b7f0f5a2c11")


def message_key(reservation_id: str, step_key: str, channel: Channel) -> str:
    """The idempotency key of one message: a step sent on one channel, at most once."""
    return f"{reservation_id}:{step_key}:{channel.value}"


def template_resend_key(key: str) -> str:
    """The idempotency key of a message's one re-send as a WhatsApp template, after
    its free text was reported failed because the 24-hour window had closed."""
    return f"{key}:template"


def message_id_for(key: str) -> str:
    """A stable message id derived from the idempotency key (deterministic in workflows)."""
    return str(uuid.uuid5(_MESSAGE_NAMESPACE, key))


class MessageDirection(StrEnum):
    outbound = "outbound"
    inbound = "inbound"


class MessageStatus(StrEnum):
    """Where a message is. Before its channel has it: `queued` (nothing sent yet, or
    an attempt that surely failed), `sending` (an attempt is under way: recorded
    before the provider is called), `in_doubt` (an attempt reached the provider but
    its answer was lost: it may have arrived; never sent again without staff)."""

    queued = "queued"
    sending = "sending"
    in_doubt = "in_doubt"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"
    received = "received"

    @property
    def rank(self) -> int:
        """Statuses only move forward: a late 'sent' never overwrites 'read'."""
        return _RANK[self]


_RANK = {
    MessageStatus.queued: 0,
    MessageStatus.sending: 0,
    MessageStatus.in_doubt: 1,
    MessageStatus.failed: 1,
    MessageStatus.sent: 2,
    MessageStatus.delivered: 3,
    MessageStatus.read: 4,
    MessageStatus.received: 4,
}

SENT_STATUSES = frozenset({MessageStatus.sent, MessageStatus.delivered, MessageStatus.read})
NOT_HANDED_OVER = frozenset({MessageStatus.queued, MessageStatus.sending, MessageStatus.in_doubt})


class SendMessageInput(BaseModel):
    """One step of a journey, to be sent on one channel."""

    message_id: str
    message_key: str
    reservation_id: str
    hotel_id: str
    step_key: str
    template: str
    channel: Channel
    guest: Guest
    marketing: bool = False
    in_reply_to: str | None = None
    window_open: bool = False
    context: dict[str, Any] = Field(default_factory=dict)
    note: str | None = Field(default=None, description="why it is sent this way, kept with the message once sent")
    wait_for_provider_status: timedelta = Field(
        default=timedelta(minutes=2),
        description="a send in doubt on a channel that reports statuses waits this long for the report",
    )
    send_again_request: str | None = Field(
        default=None, description="staff asked to send this message again after it was in doubt (their request id)"
    )


class SendMessageResult(BaseModel):
    message_id: str
    channel: Channel
    status: MessageStatus
    sent_at: AwareDatetime
    note: str | None = None


class MessageFailureNotice(BaseModel):
    """Every channel of a step failed: what `record_guest_message_failure` records."""

    reservation_id: str
    hotel_id: str
    step_key: str
    template: str
    channels: list[Channel]
    reason: str
