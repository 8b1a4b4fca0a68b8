"""A stopping worker lets every send in flight finish: its grace follows the channels."""

from __future__ import annotations

from datetime import timedelta

from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from worker import HAND_OVER_RECORD_TIME, build_channels, graceful_shutdown


def configured(**settings: object) -> Settings:
    return Settings(
        smtp_host="smtp.hotel.example",
        whatsapp_phone_number_id="123",
        whatsapp_access_token="token",
        **settings,
    )


def test_the_grace_covers_the_longest_send_of_any_channel_and_its_record() -> None:
    channels = build_channels(configured())
    grace = graceful_shutdown(channels)

    assert grace == timedelta(seconds=35) + HAND_OVER_RECORD_TIME  # a whole SMTP conversation, and QUIT
    for sender in channels.values():
        assert grace >= sender.longest_send + HAND_OVER_RECORD_TIME


def test_longer_provider_timeouts_lengthen_the_grace() -> None:
    channels = build_channels(configured(smtp_timeout_seconds=10, whatsapp_timeout_seconds=60))

    # WhatsApp's free text refused for the closed window, then its template: two requests.
    assert channels[Channel.whatsapp].longest_send == timedelta(seconds=2 * 61)
    assert graceful_shutdown(channels) == timedelta(seconds=122) + HAND_OVER_RECORD_TIME
