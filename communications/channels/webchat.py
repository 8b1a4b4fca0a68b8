"""Web chat: the message row is the chat; the guest's chat page reads it."""

from __future__ import annotations

from datetime import timedelta

from communications.channels.base import Delivery, Outgoing
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel


class WebchatSender:
    channel = Channel.webchat
    retry_is_safe = True  # the message row is the chat: writing it again changes nothing
    reports_status = False
    longest_send = timedelta(seconds=1)

    async def send(self, outgoing: Outgoing) -> Delivery:
        return Delivery(status=MessageStatus.delivered, provider_message_id=outgoing.message_id)
