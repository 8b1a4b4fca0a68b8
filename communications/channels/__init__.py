"""Channels behind one small interface: `ChannelSender.send(outgoing) -> Delivery`."""
