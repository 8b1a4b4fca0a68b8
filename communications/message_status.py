"""The status history of a message, and its current status derived from it.

Channels report what happened to a message after we handed it over (WhatsApp
status webhooks: sent, delivered, read, failed), and they report it late, out
of order and more than once. Every report is kept once in
`message_status_event`: a report is the same when it carries the same provider
event id, or names the same message, status and time.

The message's current status then moves by the rules of
`communications.message_status_rules`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Column, ForeignKey, String, UniqueConstraint, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.message_status_rules import apply_report
from communications.message_store import MessageRecord, save_message
from guest_journey.database import UTCDateTime, utcnow
from guest_journey.messages import NOT_HANDED_OVER, MessageDirection, MessageStatus


class MessageStatusEvent(SQLModel, table=True):
    __tablename__ = "message_status_event"
    __table_args__ = (
        UniqueConstraint("message_id", "status", "at", name="uq_message_status_event_report"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(
        sa_column=Column(String(64), ForeignKey("message.id"), index=True, nullable=False)
    )
    status: str = Field(max_length=16)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: str | None = None
    event_id: str | None = Field(default=None, unique=True, max_length=300)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )


class MessageStatusEventView(BaseModel):
    """One report in a message's status history."""

    status: MessageStatus
    at: AwareDatetime
    reason: str | None = None
    event_id: str | None = None

    @classmethod
    def of(cls, event: MessageStatusEvent) -> MessageStatusEventView:
        return cls.model_validate(event, from_attributes=True)


async def apply_status_update(
    *,
    session: AsyncSession,
    provider_message_id: str | None = None,
    message_id: str | None = None,
    status: MessageStatus,
    at: datetime,
    reason: str | None = None,
    event_id: str | None = None,
    callback_message_id: str | None = None,
) -> MessageRecord | None:
    """Record a status report for a message (ours by `message_id`, or the channel's
    `provider_message_id`) and move its current status by the rules
    (`communications.message_status_rules`).

    `callback_message_id` is our message id as the provider echoes it (WhatsApp's
    `biz_opaque_callback_data`): when no message has the provider's id yet — the
    answer to the send was lost — it finds the message and gives it that id, and
    a report that it was sent also records when it was handed over.

    A report seen before changes nothing. Answers the message, or None when no
    message has that id (a webhook acknowledges it anyway).
    """
    if message_id is None and provider_message_id is None:
        raise ValueError("give message_id or provider_message_id")
    record = await _message_for_update(
        session, message_id=message_id, provider_message_id=provider_message_id
    )
    if record is None and callback_message_id is not None and provider_message_id is not None:
        record = await _message_for_update(session, message_id=callback_message_id, provider_message_id=None)
        if record is None or record.direction != MessageDirection.outbound.value:
            return None
        if record.provider_message_id not in (None, provider_message_id):
            return None  # the message has another provider id: not this report's message
        record.provider_message_id = provider_message_id
        if status is not MessageStatus.failed and record.sent_at is None:
            record.sent_at = at  # the provider had it: it was handed over
    if record is None:
        return None
    return await _record_report(session, record, status=status, at=at, reason=reason, event_id=event_id)


class StatusReport(BaseModel):
    """One report of a batch (a WhatsApp webhook carries thousands)."""

    provider_message_id: str
    status: MessageStatus
    at: AwareDatetime
    reason: str | None = None
    event_id: str | None = None
    callback_message_id: str | None = None


BATCH_SIZE = 500


async def apply_status_updates(
    *, session: AsyncSession, reports: list[StatusReport]
) -> list[MessageRecord | None]:
    """`apply_status_update` for many reports, in their order, a few queries and one
    commit per `BATCH_SIZE`: the messages are found and locked together and the
    reports seen before are looked up together. Answers each report's message
    (None when unknown). A batch that meets a concurrent writer of the same
    report, or that PostgreSQL chose to undo to break a deadlock with another
    writer (the daily totals' rows, `communications.message_days`, are locked in
    the order the batch's messages are written), is applied again one report at
    a time."""
    found: list[MessageRecord | None] = []
    for start in range(0, len(reports), BATCH_SIZE):
        chunk = reports[start:start + BATCH_SIZE]
        try:
            found += await _apply_batch(session, chunk)
        except (IntegrityError, OperationalError) as error:
            if isinstance(error, OperationalError) and not _deadlock(error):
                raise
            await session.rollback()
            for report in chunk:
                found.append(await apply_status_update(session=session, **report.model_dump()))
    return found


def _deadlock(error: OperationalError) -> bool:
    return getattr(error.orig, "sqlstate", None) == "40P01"


async def _apply_batch(session: AsyncSession, reports: list[StatusReport]) -> list[MessageRecord | None]:
    provider_ids = sorted({report.provider_message_id for report in reports})
    rows = await session.exec(
        select(MessageRecord)
        .where(
            col(MessageRecord.provider_message_id).in_(provider_ids),
            MessageRecord.direction == MessageDirection.outbound.value,
        )
        .order_by(col(MessageRecord.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    by_provider_id: dict[str, MessageRecord] = {}
    for record in rows.all():
        assert record.provider_message_id is not None
        known = by_provider_id.get(record.provider_message_id)
        if known is None or record.created_at > known.created_at:  # the newest, as one by one
            by_provider_id[record.provider_message_id] = record
    seen_events, seen_reports = await _reports_seen(session, list(by_provider_id.values()), reports)
    answers: list[MessageRecord | None] = []
    for report in reports:
        found = by_provider_id.get(report.provider_message_id)
        if found is None:
            if report.callback_message_id is None:
                answers.append(None)
                continue
            await session.commit()  # rare (an answer that was lost): the one-by-one path
            answers.append(await apply_status_update(session=session, **report.model_dump()))
            continue
        record = found
        if report.status is MessageStatus.received:
            raise ValueError("received is the status of inbound messages, not a delivery report")
        same = (record.id, report.status.value, report.at)
        if same in seen_reports or (report.event_id is not None and report.event_id in seen_events):
            answers.append(record)
            continue
        session.add(
            MessageStatusEvent(
                message_id=record.id, status=report.status.value, at=report.at,
                reason=report.reason, event_id=report.event_id,
            )
        )
        seen_reports.add(same)
        if report.event_id is not None:
            seen_events.add(report.event_id)
        apply_report(record, report.status, report.at, report.reason)
        session.add(record)
        answers.append(record)
    await session.commit()
    return answers


async def _reports_seen(
    session: AsyncSession, records: list[MessageRecord], reports: list[StatusReport]
) -> tuple[set[str], set[tuple[str, str, datetime]]]:
    event_ids = [report.event_id for report in reports if report.event_id is not None]
    seen_events: set[str] = set()
    if event_ids:
        events = await session.exec(
            select(MessageStatusEvent.event_id).where(col(MessageStatusEvent.event_id).in_(event_ids))
        )
        seen_events = {event_id for event_id in events.all() if event_id is not None}
    seen_reports: set[tuple[str, str, datetime]] = set()
    if records:
        rows = await session.exec(
            select(MessageStatusEvent.message_id, MessageStatusEvent.status, MessageStatusEvent.at).where(
                col(MessageStatusEvent.message_id).in_([record.id for record in records])
            )
        )
        seen_reports = {(message_id, status, at) for message_id, status, at in rows.all()}
    return seen_events, seen_reports


async def record_hand_over(
    *,
    session: AsyncSession,
    message_id: str,
    provider_message_id: str | None,
    status: MessageStatus,
    at: datetime,
    note: str | None = None,
) -> MessageRecord:
    """The channel took the message: its provider id, `sent_at` and first status,
    in one transaction with the row locked, so a delivery report that arrives in
    the same instant (a fast webhook) is applied after it, never overwritten by it."""
    record = await _message_for_update(session, message_id=message_id, provider_message_id=None)
    if record is None:
        raise LookupError(f"no message {message_id!r}")
    if record.sent_at is not None:
        return record  # recorded before, or a status report said it was handed over
    if MessageStatus(record.status) in (MessageStatus.sending, MessageStatus.in_doubt):
        record.status = MessageStatus.queued.value  # the attempt's outcome is now known
    record.provider_message_id = provider_message_id
    record.reason = note
    record.sent_at = at
    recorded = await _record_report(session, record, status=status, at=at, reason=None, event_id=None)
    assert recorded is not None
    return recorded


async def declare_in_doubt(*, session: AsyncSession, message_id: str, reason: str, at: datetime) -> MessageRecord:
    """An attempt reached the provider but its answer was lost: the message is in
    doubt — unless a status report (a fast webhook) already said what became of it,
    which is kept. One conditional UPDATE, so no report can slip in between."""
    await session.exec(
        update(MessageRecord)
        .where(
            col(MessageRecord.id) == message_id,
            col(MessageRecord.sent_at).is_(None),
            col(MessageRecord.status).in_([status.value for status in NOT_HANDED_OVER]),
        )
        .values(status=MessageStatus.in_doubt.value, reason=reason, status_at=at, updated_at=utcnow())
    )
    await session.commit()
    record = await session.get(MessageRecord, message_id, populate_existing=True)
    if record is None:
        raise LookupError(f"no message {message_id!r}")
    return record


async def claim_send_again(*, session: AsyncSession, record: MessageRecord, request_id: str) -> bool:
    """Staff asked to send a message in doubt again: True the first time this request
    is used (the message is queued again, and the request kept in its status
    history), False when an attempt already used it."""
    event_id = f"send-again:{request_id}"
    used = await session.exec(select(MessageStatusEvent.id).where(MessageStatusEvent.event_id == event_id).limit(1))
    if used.first() is not None:
        return False
    now = utcnow()
    session.add(
        MessageStatusEvent(
            message_id=record.id,
            status=MessageStatus.queued.value,
            at=now,
            reason="sent again at staff's request",
            event_id=event_id,
        )
    )
    record.status = MessageStatus.queued.value
    record.status_at = now
    record.reason = f"sent again at staff's request (it was in doubt: {record.reason})"
    try:
        await save_message(session=session, record=record)
    except IntegrityError:  # the same request, claimed at the same moment
        await session.rollback()
        return False
    return True

async def _record_report(
    session: AsyncSession,
    record: MessageRecord,
    *,
    status: MessageStatus,
    at: datetime,
    reason: str | None,
    event_id: str | None,
) -> MessageRecord:
    if status is MessageStatus.received:
        raise ValueError("received is the status of inbound messages, not a delivery report")
    if at.tzinfo is None:
        raise ValueError("the time of a status report must carry its offset")
    if await _already_recorded(session, record.id, status, at, event_id):
        await session.commit()
        return record
    session.add(
        MessageStatusEvent(
            message_id=record.id, status=status.value, at=at, reason=reason, event_id=event_id
        )
    )
    apply_report(record, status, at, reason)
    session.add(record)
    try:
        await session.commit()
    except IntegrityError:  # the same report, recorded concurrently
        await session.rollback()
        stored = await session.get(MessageRecord, record.id, populate_existing=True)
        assert stored is not None, "a message with status events is never deleted"
        return stored
    return record


async def status_history(*, session: AsyncSession, message_id: str) -> list[MessageStatusEvent]:
    """Every report of a message, in the order the events happened."""
    rows = await session.exec(
        select(MessageStatusEvent)
        .where(MessageStatusEvent.message_id == message_id)
        .order_by(col(MessageStatusEvent.at), col(MessageStatusEvent.id))
    )
    return list(rows.all())


async def _message_for_update(
    session: AsyncSession, *, message_id: str | None, provider_message_id: str | None
) -> MessageRecord | None:
    query = select(MessageRecord)
    if message_id is not None:
        query = query.where(MessageRecord.id == message_id)
    else:
        query = query.where(
            MessageRecord.provider_message_id == provider_message_id,
            MessageRecord.direction == MessageDirection.outbound.value,
        ).order_by(col(MessageRecord.created_at).desc())
    rows = await session.exec(
        query.limit(1).with_for_update().execution_options(populate_existing=True)
    )
    return rows.first()


async def _already_recorded(
    session: AsyncSession,
    message_id: str,
    status: MessageStatus,
    at: datetime,
    event_id: str | None,
) -> bool:
    same_report = (
        (MessageStatusEvent.message_id == message_id)
        & (MessageStatusEvent.status == status.value)
        & (MessageStatusEvent.at == at)
    )
    condition = (
        (same_report | (MessageStatusEvent.event_id == event_id))
        if event_id is not None
        else same_report
    )
    rows = await session.exec(select(MessageStatusEvent.id).where(condition).limit(1))
    return rows.first() is not None
