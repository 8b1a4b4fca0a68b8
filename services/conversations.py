"""The inbox's conversations: every reservation's exchange with its guest on one
channel, read from the message store.

A conversation is one reservation on one channel that has a guest's message or
a staff reply (`communications.response_times.in_conversation`) in the last
`RECENT`; the query reads those messages through their partial index
(`ix_message_conversation`), never the whole table. Each conversation has its
last message, the first guest message no staff reply has followed yet
(`waiting_since`: where the response time runs from, the same rule as the
response-time figures), the guest's last message (WhatsApp's 24-hour window),
and what staff decided (`services.conversation_state`: assignee, done).
Unanswered conversations come first, the longest waiting first; then the rest,
the latest first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_store import MessageRecord
from communications.response_times import in_conversation, waiting_since
from guest_journey.messages import MessageDirection
from guest_journey.read_model import JourneyRecord
from guest_journey.reservations import Channel
from services.conversation_state import ConversationState
from services.staff_messages import whatsapp_window_open

RECENT = timedelta(days=30)
LIMIT = 200
NOBODY = "none"

TargetOf = Callable[[str | None], timedelta]


class ConversationStatus(StrEnum):
    open = "open"  # not done, or the guest wrote again since
    done = "done"
    all = "all"


@dataclass(frozen=True)
class ConversationFilters:
    hotel_id: str | None = None
    channel: str | None = None
    assignee: str | None = None  # an assignee, NOBODY, or None for anyone's
    status: ConversationStatus = ConversationStatus.open


@dataclass(frozen=True)
class Conversation:
    reservation_id: str
    channel: str
    hotel_id: str | None
    stage: str | None
    guest_name: str | None
    last_message_at: datetime
    last_direction: str
    last_text: str
    waiting_since: datetime | None
    last_guest_message_at: datetime | None
    assignee: str | None
    done_at: datetime | None
    target: timedelta

    @property
    def unanswered(self) -> bool:
        return self.waiting_since is not None

    @property
    def done(self) -> bool:
        return self.done_at is not None and (
            self.last_guest_message_at is None or self.last_guest_message_at <= self.done_at)

    def overdue(self, now: datetime) -> bool:
        """Waiting longer than the hotel's reply target."""
        return self.waiting_since is not None and now - self.waiting_since > self.target

    def window_open(self, now: datetime) -> bool:
        """WhatsApp takes free text only within 24 h of the guest's last message (other channels always)."""
        if self.channel != Channel.whatsapp.value:
            return True
        return whatsapp_window_open(self.last_guest_message_at, now)


async def list_conversations(
    *,
    session: AsyncSession,
    now: datetime,
    target_of: TargetOf,
    hotels: Collection[str] | None = None,
    filters: ConversationFilters = ConversationFilters(),
) -> list[Conversation]:
    """The conversations of the caller's hotels (`hotels`: `api.access`; None: all) that
    pass `filters`, unanswered first (module rules); at most `LIMIT`."""
    message = aliased(MessageRecord, name="m")
    # `_indexed` is `in_conversation` as the index writes it (only outbound messages have steps)
    scope = [col(message.created_at) >= now - RECENT, col(message.reservation_id).is_not(None), _indexed(message)]
    if hotels is not None:
        scope.append(col(message.hotel_id).in_(sorted(hotels)))
    if filters.hotel_id:
        scope.append(col(message.hotel_id) == filters.hotel_id)
    if filters.channel:
        scope.append(col(message.channel) == filters.channel)
    recent = (
        select(
            col(message.reservation_id).label("reservation_id"),
            col(message.channel).label("channel"),
            func.max(message.hotel_id).label("hotel_id"),
            func.max(message.created_at).label("last_at"),
        )
        .where(*scope)
        .group_by(message.reservation_id, message.channel)
        .subquery("recent")
    )
    return await _conversations(session, recent, now=now, target_of=target_of, filters=filters)


def _indexed(message: Any) -> Any:
    """The predicate of `ix_message_conversation`, written as the index writes it (literals,
    not parameters), so that the database may read the conversations' messages through it."""
    return or_(col(message.direction) == literal(MessageDirection.inbound.value, literal_execute=True),
               col(message.step_key).like(literal("manual:%", literal_execute=True)))


async def get_conversation(
    *, session: AsyncSession, reservation_id: str, channel: str, now: datetime, target_of: TargetOf,
) -> Conversation | None:
    """One conversation, however old; None when it has no guest message nor staff reply."""
    message = aliased(MessageRecord, name="m")
    one = (
        select(
            col(message.reservation_id).label("reservation_id"),
            col(message.channel).label("channel"),
            func.max(message.hotel_id).label("hotel_id"),
            func.max(message.created_at).label("last_at"),
        )
        .where(col(message.reservation_id) == reservation_id, col(message.channel) == channel,
               in_conversation(message))
        .group_by(message.reservation_id, message.channel)
        .subquery("recent")
    )
    found = await _conversations(session, one, now=now, target_of=target_of,
                                 filters=ConversationFilters(status=ConversationStatus.all))
    return found[0] if found else None


async def thread(*, session: AsyncSession, reservation_id: str, channel: str) -> list[MessageRecord]:
    """Every message of the reservation on the channel, ours (the journey's too) and the guest's, oldest first."""
    rows = await session.exec(
        select(MessageRecord)
        .where(col(MessageRecord.reservation_id) == reservation_id, col(MessageRecord.channel) == channel)
        .order_by(col(MessageRecord.created_at), col(MessageRecord.id))
    )
    return list(rows.all())


async def inbox_version(*, session: AsyncSession) -> str:
    """Changes whenever a message arrives or changes status, or staff act on a conversation:
    what the inbox's live updates watch (two index lookups)."""
    messages = (await session.exec(select(func.max(MessageRecord.updated_at)))).one()
    states = (await session.exec(select(func.max(ConversationState.updated_at)))).one()
    return f"{_stamp(messages)}|{_stamp(states)}"


async def _conversations(
    session: AsyncSession, recent: Any, *, now: datetime, target_of: TargetOf, filters: ConversationFilters,
) -> list[Conversation]:
    guest_last = aliased(MessageRecord, name="guest_last")
    last_guest_at = (
        select(func.max(guest_last.created_at))
        .where(col(guest_last.reservation_id) == recent.c.reservation_id, col(guest_last.channel) == recent.c.channel,
               col(guest_last.direction) == MessageDirection.inbound.value)
        .scalar_subquery()
    )
    last = aliased(MessageRecord, name="last")
    last_id = (
        select(last.id)
        .where(col(last.reservation_id) == recent.c.reservation_id, col(last.channel) == recent.c.channel,
               col(last.created_at) == recent.c.last_at, in_conversation(last))
        .order_by(col(last.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    waiting = waiting_since(recent.c.reservation_id, recent.c.channel).label("waiting_since")
    state = ConversationState
    query = (
        sa_select(recent.c.reservation_id, recent.c.channel, recent.c.hotel_id, recent.c.last_at, waiting,
                  last_guest_at.label("last_guest_at"), last_id.label("last_id"), col(state.assignee),
                  col(state.done_at), col(JourneyRecord.stage))
        .select_from(recent)
        .outerjoin(state, (col(state.reservation_id) == recent.c.reservation_id)
                   & (col(state.channel) == recent.c.channel))
        .outerjoin(JourneyRecord, col(JourneyRecord.reservation_id) == recent.c.reservation_id)
    )
    if filters.assignee == NOBODY:
        query = query.where(col(state.assignee).is_(None))
    elif filters.assignee:
        query = query.where(col(state.assignee) == filters.assignee)
    is_done = (col(state.done_at).is_not(None)) & or_(last_guest_at.is_(None), last_guest_at <= col(state.done_at))
    if filters.status is ConversationStatus.open:
        query = query.where(~is_done)
    elif filters.status is ConversationStatus.done:
        query = query.where(is_done)
    query = query.order_by(
        case((waiting.is_(None), literal(1)), else_=literal(0)), waiting, recent.c.last_at.desc(),
    ).limit(LIMIT)
    rows = (await session.exec(query)).all()  # type: ignore[call-overload]  # ten columns: past sqlmodel's overloads
    texts = await _last_messages(session, [row.last_id for row in rows])
    names = await _guest_names(session, [row.reservation_id for row in rows])
    return [
        Conversation(
            reservation_id=row.reservation_id, channel=row.channel, hotel_id=row.hotel_id, stage=row.stage,
            guest_name=names.get(row.reservation_id),
            last_message_at=_aware(row.last_at),
            last_direction=texts.get(row.last_id, ("", ""))[0],
            last_text=texts.get(row.last_id, ("", ""))[1],
            waiting_since=_aware(row.waiting_since) if row.waiting_since is not None else None,
            last_guest_message_at=_aware(row.last_guest_at) if row.last_guest_at is not None else None,
            assignee=row.assignee, done_at=_aware(row.done_at) if row.done_at is not None else None,
            target=target_of(row.hotel_id),
        )
        for row in rows
    ]


async def _last_messages(session: AsyncSession, ids: list[str]) -> dict[str, tuple[str, str]]:
    if not ids:
        return {}
    rows = await session.exec(
        select(MessageRecord.id, MessageRecord.direction, MessageRecord.body_text, MessageRecord.template)
        .where(col(MessageRecord.id).in_(ids))
    )
    return {message_id: (direction, (text or template or "").strip()) for message_id, direction, text, template in rows}


async def _guest_names(session: AsyncSession, reservation_ids: list[str]) -> dict[str, str]:
    """The guests' names, from the journeys' views (only the conversations shown)."""
    if not reservation_ids:
        return {}
    rows = await session.exec(
        select(JourneyRecord.reservation_id, JourneyRecord.view)
        .where(col(JourneyRecord.reservation_id).in_(sorted(set(reservation_ids))))
    )
    names = {}
    for reservation_id, view in rows.all():
        guest = (view or {}).get("guest") or {}
        if isinstance(guest.get("name"), str):
            names[reservation_id] = guest["name"]
    return names


def _aware(moment: Any) -> datetime:
    if isinstance(moment, str):  # SQLite answers an aggregate of a date as text
        moment = datetime.fromisoformat(moment)
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _stamp(moment: Any) -> str:
    return "" if moment is None else _aware(moment).isoformat()
