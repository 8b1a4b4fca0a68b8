"""Journeys that need someone to look at them (the panel's "Precisam de atenção").

Each kind is one query on the journey read model and the message table, the
same on SQLite and PostgreSQL, newest first and at most `LIMIT` rows:

- `in_doubt`: an outbound message in the last `RECENT` whose provider may or may
  not have it (status `in_doubt`: a timeout or a dropped connection after the
  message was handed over), unless a later message with the same template
  reached the same reservation; staff send it again with one click (the
  journey sends its step once more, same channel, same message id), or not,
  when its journey has finished;
- `failed_message`: an outbound message that failed in the last `RECENT`,
  unless a later message with the same template reached the same
  reservation (a fallback channel or a resend took care of it);
- `checkin_pending`: a journey still `pre_arrival` whose arrival is within
  the next `CHECKIN_NOTICE` (24 h) and whose digital check-in is not done;
- `unanswered`: a conversation (a reservation on a channel) whose first guest
  message no staff reply followed is older than the hotel's response target
  (10 min by default, `KpiTargets.response_time_max_minutes`): the moment the
  response time runs from (`communications.response_times`, as the inbox
  counts it); messages older than `RECENT` are not listed;
- `unmatched`: a guest's message no reservation was found for
  (`communications.inbound.list_unmatched`), in the last `RECENT`;
- `detractor`: feedback 0-6 received in the last `DETRACTOR_RECENT` with no
  staff message to the guest since;
- `stuck`: a running journey whose worker has made no progress: a step
  planned (or being sent) more than `STUCK_AFTER` ago is still not settled,
  or the arrival or departure passed more than `STUCK_AFTER` ago and the
  stage did not move. Either means no worker is running the journey (or a
  channel keeps failing: the message's reason says which).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import exists, func
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.staff import labels
from communications.inbound import list_unmatched
from communications.mail_in_store import (
    UNMATCHED_REASON_TEXTS,
    UnmatchedReason,
    list_unmatched_mail,
)
from communications.message_store import MessageRecord
from communications.response_times import waiting_since
from guest_journey import read_model_queries
from guest_journey.journeys import FINAL_STAGES, Stage
from guest_journey.messages import SENT_STATUSES, MessageDirection, MessageStatus
from guest_journey.read_model import JourneyRecord

RECENT = timedelta(days=7)
DETRACTOR_RECENT = timedelta(days=30)
CHECKIN_NOTICE = timedelta(hours=24)
STUCK_AFTER = timedelta(minutes=15)
DEFAULT_SLA = timedelta(minutes=10)
LIMIT = 50
MANUAL_STEP = "manual:%"
OPEN_STEP_STATUSES = ("planned", "due")


class AttentionKind(StrEnum):
    in_doubt = "in_doubt"
    failed_message = "failed_message"
    checkin_pending = "checkin_pending"
    unanswered = "unanswered"
    unmatched = "unmatched"
    unmatched_mail = "unmatched_mail"
    detractor = "detractor"
    stuck = "stuck"


TITLES = {
    AttentionKind.in_doubt: "Mensagens em dúvida (o hóspede pode não ter recebido)",
    AttentionKind.failed_message: "Mensagens com falha",
    AttentionKind.checkin_pending: "Check-in não feito a 24 h da chegada",
    AttentionKind.unanswered: "Mensagens de hóspedes sem resposta (SLA)",
    AttentionKind.unmatched: "Mensagens sem reserva",
    AttentionKind.unmatched_mail: "E-mails sem reserva (mail-in)",
    AttentionKind.detractor: "Detratores sem follow-up",
    AttentionKind.stuck: "Jornadas sem progresso",
}


@dataclass(frozen=True)
class AttentionItem:
    kind: AttentionKind
    reservation_id: str | None
    hotel_id: str | None
    since: datetime
    detail: str
    message_id: str | None = None
    can_send_again: bool = False


@dataclass(frozen=True)
class AttentionGroup:
    kind: AttentionKind
    items: list[AttentionItem]

    @property
    def title(self) -> str:
        return TITLES[self.kind]


SlaOf = Callable[[str | None], timedelta]


def _sla_default(_: str | None) -> timedelta:
    return DEFAULT_SLA


async def needs_attention(
    *, session: AsyncSession, now: datetime, sla_of: SlaOf = _sla_default, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionGroup]:
    """Every kind, in the order staff should look at them; of one hotel (`hotel_id`),
    of the caller's (`hotels`: `api.access`), or of all."""
    scope: dict[str, Any] = {"session": session, "now": now, "hotel_id": hotel_id, "hotels": hotels}
    return [
        AttentionGroup(AttentionKind.stuck, await stuck_journeys(**scope)),
        AttentionGroup(AttentionKind.in_doubt, await messages_in_doubt(**scope)),
        AttentionGroup(AttentionKind.failed_message, await failed_messages(**scope)),
        AttentionGroup(AttentionKind.unanswered, await unanswered_messages(**scope, sla_of=sla_of)),
        AttentionGroup(AttentionKind.checkin_pending, await checkin_pending(**scope)),
        AttentionGroup(AttentionKind.detractor, await detractors_without_follow_up(**scope)),
        # messages matched to no reservation belong to no hotel: only a caller of every hotel sees them
        AttentionGroup(AttentionKind.unmatched,
                       await unmatched_messages(session=session, now=now) if hotels is None else []),
        AttentionGroup(AttentionKind.unmatched_mail,
                       await unmatched_mail(session=session, now=now) if hotels is None else []),
    ]


async def messages_in_doubt(
    *, session: AsyncSession, now: datetime, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    finished = exists().where(
        col(JourneyRecord.reservation_id) == col(MessageRecord.reservation_id),
        col(JourneyRecord.stage).in_([stage.value for stage in FINAL_STAGES]),
    )
    query = (
        select(MessageRecord, finished)
        .where(
            MessageRecord.direction == MessageDirection.outbound.value,
            MessageRecord.status == MessageStatus.in_doubt.value,
            col(MessageRecord.created_at) >= now - RECENT,
            ~_reached_later(),
            *_message_of_hotel(hotel_id, hotels),
        )
        .order_by(col(MessageRecord.created_at).desc())
        .limit(LIMIT)
    )
    items = []
    for record, journey_finished in (await session.exec(query)).all():
        what = f"{labels.label(labels.TEMPLATES, record.template)} por {labels.label(labels.CHANNELS, record.channel)}"
        why = record.reason or "o provedor não confirmou o recebimento"
        if journey_finished:
            why += " (jornada encerrada: não é mais enviada)"
        items.append(AttentionItem(
            AttentionKind.in_doubt, record.reservation_id, record.hotel_id, record.created_at, f"{what}: {why}",
            message_id=record.id,
            can_send_again=not journey_finished and record.reservation_id is not None and record.step_key is not None,
        ))
    return items


async def failed_messages(
    *, session: AsyncSession, now: datetime, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    query = (
        select(MessageRecord)
        .where(
            MessageRecord.direction == MessageDirection.outbound.value,
            MessageRecord.status == MessageStatus.failed.value,
            col(MessageRecord.created_at) >= now - RECENT,
            ~_reached_later(),
            *_message_of_hotel(hotel_id, hotels),
        )
        .order_by(col(MessageRecord.created_at).desc())
        .limit(LIMIT)
    )
    return [
        AttentionItem(
            AttentionKind.failed_message, record.reservation_id, record.hotel_id, record.created_at,
            f"{record.template or 'mensagem'} por {record.channel}: {record.reason or 'sem motivo registrado'}",
        )
        for record in (await session.exec(query)).all()
    ]


async def checkin_pending(
    *, session: AsyncSession, now: datetime, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    pending = await read_model_queries.checkin_pending(
        session=session, now=now, until=now + CHECKIN_NOTICE, hotel_id=hotel_id, hotels=hotels, limit=LIMIT)
    return [
        AttentionItem(
            AttentionKind.checkin_pending, record.reservation_id, record.hotel_id, record.arrival,
            f"chegada em {_hours(record.arrival - now)}; check-in online pendente",
        )
        for record in pending
    ]


async def unanswered_messages(
    *, session: AsyncSession, now: datetime, sla_of: SlaOf = _sla_default, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    first_unanswered = waiting_since(col(MessageRecord.reservation_id), col(MessageRecord.channel))
    query = (
        select(MessageRecord)
        .where(
            MessageRecord.direction == MessageDirection.inbound.value,
            col(MessageRecord.reservation_id).is_not(None),
            col(MessageRecord.created_at) >= now - RECENT,
            col(MessageRecord.created_at) <= now - min(DEFAULT_SLA, sla_of(hotel_id)),
            col(MessageRecord.created_at) == first_unanswered,
            *_message_of_hotel(hotel_id, hotels),
        )
        .order_by(col(MessageRecord.created_at))
        .limit(LIMIT * 4)
    )
    items = []
    for record in (await session.exec(query)).all():
        waiting = now - record.created_at
        if waiting <= sla_of(record.hotel_id):
            continue
        items.append(AttentionItem(
            AttentionKind.unanswered, record.reservation_id, record.hotel_id, record.created_at,
            f"{record.channel}: “{_excerpt(record.body_text)}” — aguardando há {_minutes(waiting)}",
        ))
    return items[:LIMIT]


async def unmatched_messages(*, session: AsyncSession, now: datetime) -> list[AttentionItem]:
    return [
        AttentionItem(
            AttentionKind.unmatched, None, record.hotel_id, record.created_at,
            f"{record.channel} de {record.sender or 'remetente desconhecido'}: “{_excerpt(record.body_text)}”",
        )
        for record in await list_unmatched(session=session, limit=LIMIT)
        if record.created_at >= now - RECENT
    ]


async def unmatched_mail(*, session: AsyncSession, now: datetime) -> list[AttentionItem]:
    """Guests' e-mails (`guest-journey mail-in`) no reservation was found for and that were
    kept as no guest message (those kept as one are in `unmatched_messages`), with why."""
    return [
        AttentionItem(
            AttentionKind.unmatched_mail, None, None, _aware(row.received_at),
            f"e-mail de {row.sender or 'remetente desconhecido'}: “{_excerpt(row.subject or '(sem assunto)')}” — "
            f"{_mail_reason(row.reason)}",
        )
        for row in await list_unmatched_mail(session=session, limit=LIMIT)
        if row.message_ref is None and _aware(row.received_at) >= now - RECENT
    ]


async def detractors_without_follow_up(
    *, session: AsyncSession, now: datetime, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    candidates = [
        (reservation_id, hotel, value, _aware(moment))
        for reservation_id, hotel, value, moment in await read_model_queries.recent_detractors(
            session=session, since=now - DETRACTOR_RECENT, hotel_id=hotel_id, hotels=hotels, limit=LIMIT * 20)
    ]
    if not candidates:
        return []
    staff_messages = await session.exec(
        select(MessageRecord.reservation_id, func.max(MessageRecord.created_at))
        .where(
            col(MessageRecord.reservation_id).in_([row[0] for row in candidates]),
            MessageRecord.direction == MessageDirection.outbound.value,
            col(MessageRecord.step_key).like(MANUAL_STEP),
        )
        .group_by(MessageRecord.reservation_id)
    )
    last_staff_message = {reservation_id: _aware(moment) for reservation_id, moment in staff_messages.all()}
    items = [
        AttentionItem(AttentionKind.detractor, reservation_id, hotel, received_at,
                      f"nota {value} sem contato da equipe desde a avaliação")
        for reservation_id, hotel, value, received_at in candidates
        if last_staff_message.get(reservation_id) is None or last_staff_message[reservation_id] < received_at
    ]
    items.sort(key=lambda item: item.since, reverse=True)
    return items[:LIMIT]


async def stuck_journeys(
    *, session: AsyncSession, now: datetime, hotel_id: str | None = None,
    hotels: Collection[str] | None = None,
) -> list[AttentionItem]:
    cutoff = now - STUCK_AFTER
    late = await read_model_queries.late_steps(session=session, before=cutoff, statuses=OPEN_STEP_STATUSES,
                                               hotel_id=hotel_id, hotels=hotels, limit=LIMIT * 20)
    found: dict[str, AttentionItem] = {}
    for reservation_id, hotel, step_key, moment in late:
        due = _aware(moment)
        known = found.get(reservation_id)
        if known is None or due < known.since:
            found[reservation_id] = AttentionItem(
                AttentionKind.stuck, reservation_id, hotel, due,
                f"a etapa {step_key} devia ter saído há {_minutes(now - due)} e não foi concluída",
            )
    past = await read_model_queries.past_their_stage(session=session, before=cutoff, hotel_id=hotel_id,
                                                     hotels=hotels, limit=LIMIT)
    for record in past:
        moment = record.arrival if record.stage == Stage.pre_arrival.value else record.departure
        what = "a chegada" if record.stage == Stage.pre_arrival.value else "a partida"
        found.setdefault(record.reservation_id, AttentionItem(
            AttentionKind.stuck, record.reservation_id, record.hotel_id, moment,
            f"{what} passou há {_minutes(now - moment)} e o estágio continua {labels.label(labels.STAGES, record.stage)}",
        ))
    return sorted(found.values(), key=lambda item: item.since)[:LIMIT]


# -- helpers ------------------------------------------------------------------------


def _reached_later() -> ColumnElement[bool]:
    """A message with the same template reached the message's reservation since (a
    fallback channel or a resend took care of it)."""
    later = aliased(MessageRecord, name="later")
    return exists().where(
        col(later.reservation_id) == col(MessageRecord.reservation_id),
        col(later.template) == col(MessageRecord.template),
        col(later.direction) == MessageDirection.outbound.value,
        col(later.status).in_([status.value for status in SENT_STATUSES]),
        col(later.created_at) >= col(MessageRecord.created_at),
    )


def _of_hotels(column: Any, hotel_id: str | None, hotels: Collection[str] | None) -> list[ColumnElement[bool]]:
    """`hotel_id` (one hotel asked for) and `hotels` (the caller's: `api.access`), when given."""
    conditions = [] if hotel_id is None else [column == hotel_id]
    return conditions if hotels is None else [*conditions, column.in_(sorted(hotels))]


def _message_of_hotel(hotel_id: str | None, hotels: Collection[str] | None = None) -> list[ColumnElement[bool]]:
    return _of_hotels(col(MessageRecord.hotel_id), hotel_id, hotels)


def _mail_reason(reason: str | None) -> str:
    if reason is not None and reason in UnmatchedReason.__members__:
        return UNMATCHED_REASON_TEXTS[UnmatchedReason(reason)]
    return "sem motivo registrado"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _excerpt(text: str | None, limit: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f} min"
