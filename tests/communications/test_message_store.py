"""The message store: recipients, status history and inbound matching,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from communications.inbound import MatchedBy, UnknownReservation, list_unmatched, store_inbound
from communications.message_status import apply_status_update, record_hand_over, status_history
from communications.message_store import (
    MessageRecord,
    get_or_create_outbound,
    list_for_reservation,
    save_message,
)
from guest_journey.database import SessionFactory
from guest_journey.journeys import JourneyView, Stage, workflow_id_for
from guest_journey.messages import MessageStatus, SendMessageInput, message_id_for, message_key
from guest_journey.read_model import save_journey
from guest_journey.reservations import Channel
from tests.communications import database_fixtures
from tests.factories import make_guest, make_reservation

db_sessions = database_fixtures.db_sessions

T0 = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)


def send_input(
    reservation_id: str = "R-1",
    step_key: str = "checkin_invitation",
    channel: Channel = Channel.whatsapp,
    **guest: Any,
) -> SendMessageInput:
    key = message_key(reservation_id, step_key, channel)
    return SendMessageInput(
        message_id=message_id_for(key),
        message_key=key,
        reservation_id=reservation_id,
        hotel_id="hotel-sp",
        step_key=step_key,
        template="checkin_invitation",
        channel=channel,
        guest=make_guest(**guest),
    )


async def sent_message(
    sessions: SessionFactory,
    *,
    provider_message_id: str | None = "wamid.1",
    created_at: datetime = T0,
    **kwargs: Any,
) -> MessageRecord:
    """An outbound message handed to its channel at `created_at`."""
    async with sessions() as session:
        record = await get_or_create_outbound(session=session, message=send_input(**kwargs))
        record.status = MessageStatus.sent.value
        record.provider_message_id = provider_message_id
        record.created_at = created_at
        record.sent_at = created_at
        return await save_message(session=session, record=record)


async def save_journey_of(
    sessions: SessionFactory,
    reservation_id: str,
    hotel_id: str,
    stage: Stage = Stage.pre_arrival,
    **overrides: Any,
) -> None:
    reservation = make_reservation(reservation_id=reservation_id, hotel_id=hotel_id, **overrides)
    view = JourneyView(
        reservation_id=reservation_id,
        workflow_id=workflow_id_for(reservation_id),
        hotel_id=hotel_id,
        stage=stage,
        guest=reservation.guest,
        arrival=reservation.arrival,
        departure=reservation.departure,
    )
    async with sessions() as session:
        await save_journey(session=session, view=view)


async def test_an_outbound_message_records_the_guests_address_on_its_channel(db_sessions):
    async with db_sessions() as session:
        whatsapp = await get_or_create_outbound(
            session=session, message=send_input(phone="+55 11 99999-0000")
        )
        email = await get_or_create_outbound(
            session=session,
            message=send_input(channel=Channel.email, email="Ana.Souza@Example.com"),
        )
        webchat = await get_or_create_outbound(
            session=session, message=send_input(channel=Channel.webchat)
        )
    assert whatsapp.recipient == "+5511999990000"
    assert email.recipient == "ana.souza@example.com"
    assert webchat.recipient is None


async def test_statuses_reported_out_of_order_keep_the_furthest_and_all_the_history(db_sessions):
    message = await sent_message(db_sessions)
    reports = [(MessageStatus.read, 3), (MessageStatus.delivered, 2), (MessageStatus.sent, 1)]
    async with db_sessions() as session:
        for status, minutes in reports:
            record = await apply_status_update(
                session=session,
                provider_message_id="wamid.1",
                status=status,
                at=T0 + timedelta(minutes=minutes),
            )
        history = await status_history(session=session, message_id=message.id)
    assert record is not None
    assert record.status == MessageStatus.read
    assert record.status_at == T0 + timedelta(minutes=3)
    assert record.read_at == T0 + timedelta(minutes=3)
    assert record.delivered_at == T0 + timedelta(minutes=2)
    assert [(event.status, event.at) for event in history] == [
        ("sent", T0 + timedelta(minutes=1)),
        ("delivered", T0 + timedelta(minutes=2)),
        ("read", T0 + timedelta(minutes=3)),
    ]


async def test_a_redelivered_report_is_recorded_once(db_sessions):
    message = await sent_message(db_sessions)
    at = T0 + timedelta(minutes=1)
    async with db_sessions() as session:
        for _ in range(2):
            await apply_status_update(
                session=session,
                message_id=message.id,
                status=MessageStatus.delivered,
                at=at,
                event_id="evt-1",
            )
        # The same event id again, whatever it says, and the same report without an id.
        await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.read,
            at=at,
            event_id="evt-1",
        )
        record = await apply_status_update(
            session=session, provider_message_id="wamid.1", status=MessageStatus.delivered, at=at
        )
        history = await status_history(session=session, message_id=message.id)
    assert record is not None and record.status == MessageStatus.delivered
    assert [(event.status, event.event_id) for event in history] == [("delivered", "evt-1")]


async def test_a_delivered_message_never_becomes_failed(db_sessions):
    message = await sent_message(db_sessions)
    async with db_sessions() as session:
        await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.delivered,
            at=T0 + timedelta(minutes=1),
        )
        record = await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.failed,
            at=T0 + timedelta(minutes=2),
            reason="131026 undeliverable",
        )
        history = await status_history(session=session, message_id=message.id)
    assert record is not None
    assert (record.status, record.reason) == (MessageStatus.delivered, None)
    assert [event.status for event in history] == ["delivered", "failed"]
    assert history[1].reason == "131026 undeliverable"


async def test_a_failure_after_sending_wins_over_a_late_sent_but_not_over_a_delivery(db_sessions):
    message = await sent_message(db_sessions)
    async with db_sessions() as session:
        failed = await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.failed,
            at=T0 + timedelta(minutes=2),
            reason="blocked",
        )
        assert failed is not None and (failed.status, failed.reason) == (
            MessageStatus.failed,
            "blocked",
        )
        late_sent = await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.sent,
            at=T0 + timedelta(minutes=1),
        )
        assert late_sent is not None and late_sent.status == MessageStatus.failed
        delivered = await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.delivered,
            at=T0 + timedelta(minutes=3),
        )
    assert delivered is not None
    assert (delivered.status, delivered.reason) == (MessageStatus.delivered, None)


async def test_a_failure_reported_before_the_send_time_does_not_undo_it(db_sessions):
    message = await sent_message(db_sessions)
    async with db_sessions() as session:
        record = await apply_status_update(
            session=session,
            message_id=message.id,
            status=MessageStatus.failed,
            at=T0 - timedelta(minutes=1),
        )
    assert record is not None and record.status == MessageStatus.sent


async def test_a_failure_reported_in_the_second_of_the_hand_over_is_not_hidden_by_it(db_sessions):
    """WhatsApp's times are whole seconds; our hand-over has microseconds."""
    async with db_sessions() as session:
        queued = await get_or_create_outbound(session=session, message=send_input())
        handed_at = T0 + timedelta(microseconds=700_000)
        sent = await record_hand_over(
            session=session, message_id=queued.id, provider_message_id="wamid.fast",
            status=MessageStatus.sent, at=handed_at,
        )
        assert (sent.status, sent.sent_at) == (MessageStatus.sent, handed_at)
        failed = await apply_status_update(
            session=session, provider_message_id="wamid.fast", status=MessageStatus.failed,
            at=T0, reason="131047 re-engagement required",
        )
    assert failed is not None and failed.status == MessageStatus.failed
    assert failed.reason == "131047 re-engagement required"


async def test_a_report_for_an_unknown_message_is_answered_with_none(db_sessions):
    async with db_sessions() as session:
        record = await apply_status_update(
            session=session, provider_message_id="wamid.unknown", status=MessageStatus.read, at=T0
        )
    assert record is None


async def test_an_inbound_message_is_matched_by_an_explicit_reservation(db_sessions):
    await save_journey_of(db_sessions, "R-7", "hotel-rj")
    async with db_sessions() as session:
        result = await store_inbound(
            session=session,
            channel=Channel.webchat,
            sender="R-7",
            body="Is breakfast included?",
            received_at=T0,
            reservation_id="R-7",
        )
    assert result.matched and result.matched_by is MatchedBy.reservation_id
    assert (result.message.reservation_id, result.message.hotel_id) == ("R-7", "hotel-rj")
    assert result.message.status == MessageStatus.received
    assert result.message.direction == "inbound"
    assert result.response_time_minutes is None


async def test_an_explicit_reservation_without_a_journey_is_refused(db_sessions):
    async with db_sessions() as session:
        with pytest.raises(UnknownReservation) as raised:
            await store_inbound(
                session=session,
                channel=Channel.webchat,
                sender="x",
                body="hi",
                received_at=T0,
                reservation_id="R-404",
            )
        assert raised.value.reservation_id == "R-404"
        assert await list_unmatched(session=session) == []


@pytest.mark.parametrize(
    ("channel", "reference"),
    [
        (Channel.whatsapp, "our id"),
        (Channel.whatsapp, "wamid.HBgM"),
        (Channel.email, "<our id@hotel.example>"),
    ],
)
async def test_a_reply_is_matched_to_the_message_it_answers(db_sessions, channel, reference):
    message = await sent_message(
        db_sessions, reservation_id="R-2", channel=channel, provider_message_id="wamid.HBgM"
    )
    reference = reference.replace("our id", message.id)
    async with db_sessions() as session:
        result = await store_inbound(
            session=session,
            channel=channel,
            sender="someone-else@example.org",
            body="Yes, please",
            received_at=T0 + timedelta(minutes=12, seconds=30),
            in_reply_to=reference,
        )
    assert result.matched_by is MatchedBy.in_reply_to
    assert (result.message.reservation_id, result.message.hotel_id) == ("R-2", "hotel-sp")
    assert result.message.in_reply_to == message.id
    assert result.response_time_minutes == 12.5


@pytest.mark.parametrize(
    ("channel", "sender"),
    [(Channel.email, "Ana Souza <ANA.souza@example.com>"), (Channel.whatsapp, "5511999990000")],
)
async def test_a_message_without_clues_is_matched_by_its_sender_most_recent_reservation_first(
    db_sessions, channel, sender
):
    await sent_message(
        db_sessions, reservation_id="R-old", channel=channel, provider_message_id=None
    )
    await sent_message(
        db_sessions,
        reservation_id="R-new",
        channel=channel,
        provider_message_id=None,
        created_at=T0 + timedelta(days=30),
    )
    async with db_sessions() as session:
        result = await store_inbound(
            session=session,
            channel=channel,
            sender=sender,
            body="Hello",
            received_at=T0 + timedelta(days=31),
        )
    assert result.matched_by is MatchedBy.sender
    assert result.message.reservation_id == "R-new"
    assert result.message.in_reply_to is None and result.response_time_minutes is None


@pytest.mark.parametrize(
    ("channel", "sender"),
    [(Channel.email, "Bia@Example.com"), (Channel.whatsapp, "5521988887777")],
)
async def test_a_guest_not_yet_written_to_is_matched_by_the_contacts_of_a_running_journey(
    db_sessions, channel, sender
):
    guest = {"email": "bia@example.com", "phone": "+5521988887777"}
    await save_journey_of(db_sessions, "R-done", "hotel-sp", stage=Stage.completed, **guest)
    await save_journey_of(db_sessions, "R-earlier", "hotel-sp", **guest)
    await save_journey_of(
        db_sessions, "R-next", "hotel-rj", arrival=datetime(2025, 9, 1, 15, tzinfo=UTC), **guest
    )
    await save_journey_of(
        db_sessions, "R-other", "hotel-sp", email="carla@example.com", phone="+5521900000000"
    )
    async with db_sessions() as session:
        result = await store_inbound(
            session=session, channel=channel, sender=sender, body="Oi", received_at=T0
        )
    assert result.matched_by is MatchedBy.sender
    assert (result.message.reservation_id, result.message.hotel_id) == ("R-next", "hotel-rj")


async def test_a_finished_journey_is_not_matched_by_its_guests_contacts(db_sessions):
    await save_journey_of(
        db_sessions, "R-done", "hotel-sp", stage=Stage.completed, phone="+5521988887777"
    )
    async with db_sessions() as session:
        result = await store_inbound(
            session=session,
            channel=Channel.whatsapp,
            sender="+55 21 98888-7777",
            body="Oi",
            received_at=T0,
        )
    assert not result.matched


async def test_an_unmatched_message_is_kept_and_listed(db_sessions):
    await sent_message(db_sessions, reservation_id="R-1")
    async with db_sessions() as session:
        first = await store_inbound(
            session=session,
            channel=Channel.whatsapp,
            sender="+4930123456",
            body="Room?",
            received_at=T0,
        )
        second = await store_inbound(
            session=session,
            channel=Channel.email,
            sender="stranger@example.org",
            body="Rates?",
            received_at=T0 + timedelta(minutes=1),
            in_reply_to="<unknown@elsewhere.example>",
        )
        unmatched = await list_unmatched(session=session)
    assert not first.matched and first.matched_by is None
    assert second.message.in_reply_to is None and second.response_time_minutes is None
    assert [message.id for message in unmatched] == [second.message.id, first.message.id]
    assert unmatched[1].sender == "+4930123456"


async def test_an_inbound_message_delivered_twice_is_stored_once(db_sessions):
    message = await sent_message(db_sessions, reservation_id="R-3")
    async with db_sessions() as session:
        first = await store_inbound(
            session=session,
            channel=Channel.whatsapp,
            sender="5511999990000",
            body="Thanks!",
            received_at=T0 + timedelta(minutes=5),
            in_reply_to="wamid.1",
            provider_message_id="wamid.in.1",
        )
        again = await store_inbound(
            session=session,
            channel=Channel.whatsapp,
            sender="5511999990000",
            body="Thanks!",
            received_at=T0 + timedelta(minutes=9),
            in_reply_to="wamid.1",
            provider_message_id="wamid.in.1",
        )
    assert not first.duplicate and again.duplicate
    assert again.message.id == first.message.id
    assert again.matched_by is MatchedBy.in_reply_to
    assert again.response_time_minutes == first.response_time_minutes == 5.0
    async with db_sessions() as session:
        replies = [
            record
            for record in await list_for_reservation(session=session, reservation_id="R-3")
            if record.direction == "inbound" and record.in_reply_to == message.id
        ]
    assert len(replies) == 1
