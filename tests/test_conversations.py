"""The inbox's conversations from the message store, on SQLite and on PostgreSQL:
one per reservation and channel, unanswered first, with what staff decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from communications.message_store import MessageRecord
from guest_journey.database import SessionFactory
from guest_journey.journeys import Stage
from guest_journey.read_model import save_journey
from services.conversation_state import assign, mark_done
from services.conversations import (
    NOBODY,
    ConversationFilters,
    ConversationStatus,
    get_conversation,
    inbox_version,
    list_conversations,
    thread,
)
from tests.api.test_staff_pages import view
from tests.communications import database_fixtures
from tests.communications.staff_replies import add_in_order

db_sessions = database_fixtures.db_sessions

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def msg(mid: str, rid: str, hotel: str, channel: str, direction: str, minutes_ago: float, *,
        step: str | None = None, body: str | None = None) -> MessageRecord:
    return MessageRecord(id=mid, reservation_id=rid, hotel_id=hotel, channel=channel, direction=direction,
                         status="received" if direction == "inbound" else "sent", step_key=step, body_text=body,
                         template=None if direction == "inbound" else ("free_text" if step else "checkin_invitation"),
                         created_at=ago(minutes_ago), updated_at=ago(minutes_ago))


async def load(sessions: SessionFactory) -> None:
    async with sessions() as session:
        await save_journey(session=session, view=view("R1", hotel_id="sp", arrival=NOW + timedelta(days=2)))
        await save_journey(session=session, view=view("R2", hotel_id="rj", arrival=NOW + timedelta(days=2),
                                                      stage=Stage.in_stay))
        await add_in_order(session, [
            # R1 on WhatsApp: answered, then the guest wrote again 3 min ago.
            msg("a1", "R1", "sp", "whatsapp", "inbound", 60, body="Tem berço?"),
            msg("a2", "R1", "sp", "whatsapp", "outbound", 55, step="manual:1", body="Temos sim."),
            msg("a3", "R1", "sp", "whatsapp", "inbound", 3, body="Obrigada!"),
            # R1 by e-mail: only the journey's own message, no conversation.
            msg("b1", "R1", "sp", "email", "outbound", 30),
            # R2 in the web chat: waiting for 25 min (past the 10 min target).
            msg("c1", "R2", "rj", "webchat", "inbound", 25, body="A piscina abre que horas?"),
            msg("c2", "R2", "rj", "webchat", "inbound", 20, body="Alô?"),
            # R2 on WhatsApp: answered, nothing waiting.
            msg("d1", "R2", "rj", "whatsapp", "inbound", 120, body="Oi"),
            msg("d2", "R2", "rj", "whatsapp", "outbound", 118, step="manual:2", body="Olá!"),
            # Too old for the inbox.
            msg("e1", "R3", "rj", "email", "inbound", 60 * 24 * 40, body="Antigo"),
        ])


async def listed(sessions: SessionFactory, **kwargs: object) -> list[tuple[str, str]]:
    async with sessions() as session:
        found = await list_conversations(session=session, now=NOW, target_of=lambda _: TEN, **kwargs)  # type: ignore[arg-type]
    return [(c.reservation_id, c.channel) for c in found]


async def test_every_conversation_unanswered_first_with_its_timer_and_last_message(db_sessions):
    await load(db_sessions)
    async with db_sessions() as session:
        found = await list_conversations(session=session, now=NOW, target_of=lambda _: TEN)
    assert [(c.reservation_id, c.channel) for c in found] == [("R2", "webchat"), ("R1", "whatsapp"), ("R2", "whatsapp")]
    waiting, fresh, answered = found
    assert waiting.waiting_since == ago(25) and waiting.overdue(NOW) and waiting.last_text == "Alô?"
    assert waiting.guest_name == "Ana Souza" and waiting.stage == "in_stay" and waiting.hotel_id == "rj"
    assert fresh.waiting_since == ago(3) and not fresh.overdue(NOW) and fresh.window_open(NOW)
    assert answered.waiting_since is None and answered.last_direction == "outbound" and answered.last_text == "Olá!"
    assert not answered.window_open(NOW + timedelta(days=1))  # 24 h after the guest's last WhatsApp message


async def test_filters_scope_assignee_and_done(db_sessions):
    await load(db_sessions)
    assert await listed(db_sessions, hotels={"sp"}) == [("R1", "whatsapp")]
    assert await listed(db_sessions, filters=ConversationFilters(channel="webchat")) == [("R2", "webchat")]
    assert await listed(db_sessions, filters=ConversationFilters(hotel_id="rj")) == [
        ("R2", "webchat"), ("R2", "whatsapp")]
    async with db_sessions() as session:
        before = await inbox_version(session=session)
        await assign(session=session, reservation_id="R2", channel="webchat", hotel_id="rj", assignee="k-ana",
                     now=NOW)
        await mark_done(session=session, reservation_id="R2", channel="whatsapp", hotel_id="rj", now=NOW)
        await mark_done(session=session, reservation_id="R1", channel="whatsapp", hotel_id="sp", now=ago(10))
        assert await inbox_version(session=session) != before
    assert await listed(db_sessions, filters=ConversationFilters(assignee="k-ana")) == [("R2", "webchat")]
    assert await listed(db_sessions, filters=ConversationFilters(assignee=NOBODY)) == [("R1", "whatsapp")]
    # R1 was done before the guest wrote again: open again. R2 on WhatsApp is done.
    assert await listed(db_sessions) == [("R2", "webchat"), ("R1", "whatsapp")]
    assert await listed(db_sessions, filters=ConversationFilters(status=ConversationStatus.done)) == [
        ("R2", "whatsapp")]


async def test_one_conversation_and_its_thread(db_sessions):
    await load(db_sessions)
    async with db_sessions() as session:
        one = await get_conversation(session=session, reservation_id="R3", channel="email", now=NOW,
                                     target_of=lambda _: TEN)
        assert one is not None and one.waiting_since == ago(60 * 24 * 40)
        assert await get_conversation(session=session, reservation_id="R1", channel="email", now=NOW,
                                      target_of=lambda _: TEN) is None
        assert [m.id for m in await thread(session=session, reservation_id="R1", channel="whatsapp")] == [
            "a1", "a2", "a3"]
