"""`services.inbound_messages.receive_inbound`: a guest's message stored, counted
once when it replies to one of ours, and signalled once to its journey; and the
detractor rule of `services.guest_feedback`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from guest_journey.database import SessionFactory
from guest_journey.journeys import workflow_id_for
from guest_journey.kpis import DETRACTOR_MAX
from guest_journey.reservations import Channel
from services.errors import NotFound
from services.guest_feedback import is_detractor
from services.inbound_messages import receive_inbound
from tests.communications.test_message_store import T0, sent_message


@dataclass
class Signals:
    """A stand-in for the Temporal client: the signals the journeys were sent."""

    sent: list[tuple[str, Any]] = field(default_factory=list)

    def get_workflow_handle_for(self, _run: Any, workflow_id: str) -> Any:
        signals = self

        class Handle:
            async def signal(self, _signal: Any, notice: Any) -> None:
                signals.sent.append((workflow_id, notice))

        return Handle()


def replies(channel: Channel) -> float:
    value = REGISTRY.get_sample_value("guest_journey_guest_reply_time_seconds_count", {"channel": channel.value})
    return value or 0.0


async def receive(sessions: SessionFactory, signals: Signals, **message: Any) -> Any:
    async with sessions() as session:
        return await receive_inbound(session=session, client=signals, **message)  # type: ignore[arg-type]


async def test_a_reply_is_counted_and_signalled_once_and_its_redelivery_neither(sessions):
    ours = await sent_message(sessions, provider_message_id="wamid.OURS", reservation_id="R-IN-1")
    signals = Signals()
    message = {"channel": Channel.whatsapp, "sender": "+5511999990000", "body": "Sim!",
               "received_at": T0 + timedelta(minutes=12), "in_reply_to": "wamid.OURS",
               "provider_message_id": "wamid.THEIRS"}
    before = replies(Channel.whatsapp)
    first = await receive(sessions, signals, **message)
    after_first = replies(Channel.whatsapp)
    again = await receive(sessions, signals, **message)

    assert first.response_time_minutes == pytest.approx(12) and not first.duplicate
    assert after_first - before == 1
    assert again.duplicate and replies(Channel.whatsapp) == after_first
    assert [(workflow_id, notice.message_id) for workflow_id, notice in signals.sent] == [
        (workflow_id_for(ours.reservation_id or ""), first.message.id)]


async def test_a_message_that_replies_to_nothing_is_kept_unmatched_and_not_counted(sessions):
    signals = Signals()
    before = replies(Channel.email)
    result = await receive(sessions, signals, channel=Channel.email, sender="someone@example.com", body="Olá?",
                           received_at=T0)
    assert result.message.reservation_id is None and result.response_time_minutes is None
    assert replies(Channel.email) == before and signals.sent == []


async def test_a_message_for_an_unknown_reservation_is_not_found(sessions):
    with pytest.raises(NotFound, match="no journey for reservation 'R-NOBODY'"):
        await receive(sessions, Signals(), channel=Channel.webchat, sender="webchat:R-NOBODY", body="Oi",
                      received_at=T0, reservation_id="R-NOBODY")


def test_a_detractor_is_who_the_kpis_count_as_one():
    assert is_detractor(DETRACTOR_MAX) and is_detractor(0)
    assert not is_detractor(DETRACTOR_MAX + 1)
