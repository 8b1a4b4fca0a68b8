"""A channel that keeps what it is given, and can be told to fail."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from communications.channels.base import (
    Delivery,
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel


class RecordingSender:
    retry_is_safe = False
    reports_status = False
    longest_send = timedelta(seconds=1)

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.sent: list[Outgoing] = []
        self.transient_failures = 0
        self.in_doubt_failures = 0  # the provider takes these, but its answer is lost
        self.permanent_failure: str | None = None
        self.calls = 0
        self.in_doubt_raised = asyncio.Event()
        self._sent_changed = asyncio.Condition()

    async def send(self, outgoing: Outgoing) -> Delivery:
        self.calls += 1
        if self.permanent_failure:
            raise PermanentDeliveryError(self.permanent_failure)
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise TransientDeliveryError("server busy, try later")
        if self.in_doubt_failures > 0:
            self.in_doubt_failures -= 1
            self.sent.append(outgoing)
            self.in_doubt_raised.set()
            raise InDoubtDeliveryError("the provider took it but its answer was lost")
        async with self._sent_changed:
            self.sent.append(outgoing)
            self._sent_changed.notify_all()
        return Delivery(status=MessageStatus.sent, provider_message_id=f"<{outgoing.message_id}@test>")

    async def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` messages have been sent (the worker runs in this event loop)."""
        async with asyncio.timeout(timeout), self._sent_changed:
            await self._sent_changed.wait_for(lambda: len(self.sent) >= count)

    def templates(self) -> list[str]:
        """The template of each message sent, in order."""
        return [outgoing.rendered.template for outgoing in self.sent]
