"""Which channels a message tries, in order: a pure function of the guest."""

from __future__ import annotations

from guest_journey.reservations import Channel, Guest

# Without a stated preference: e-mail first, then WhatsApp. Web chat is used
# only when the guest chose it (a guest who never opens the chat page would
# not see the message, so it is no silent fallback).
DEFAULT_ORDER = (Channel.email, Channel.whatsapp)


def reachable(guest: Guest, channel: Channel) -> bool:
    if channel is Channel.email:
        return guest.email is not None
    if channel is Channel.whatsapp:
        return guest.phone is not None
    return True


def channels_for(guest: Guest, requested: Channel | None = None) -> list[Channel]:
    """The guest's channels in the order to try; a requested channel goes first."""
    order = list(guest.preferred_channels) or list(DEFAULT_ORDER)
    if requested is not None:
        order = [requested] + [channel for channel in order if channel is not requested]
    return [channel for channel in order if reachable(guest, channel)]
