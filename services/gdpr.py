"""A guest's personal data in the database: export it, or erase it.

Where it is stored, per table:

- `journey` (the read model): the guest's name, e-mail and phone, the check-in
  details (document, nationality, birth date, address, signature name), the
  feedback comment, the preferences (dietary and accessibility needs, notes),
  and step reasons that may quote an address.
- `message`: recipients and senders, subjects and bodies (rendered messages,
  guest replies, web chat and feedback comments), failure reasons. Besides the
  reservation's own messages, the guest's messages that matched no
  reservation (found by the guest's e-mail or phone) belong here too.
- `message_status_event`: the channel's failure reasons, which may quote an address.
- `staff_text`: what staff wrote to the guest (a free text's body, before it was
  rendered into its message). Erasing deletes these rows: the message keeps its row.
- `unsubscribe`: the address that asked for no more offers.
- `inbound_email`: the guest's e-mails as they came in (`mail-in`): sender,
  subject, Message-ID and attachments' names. Erasing keeps the row, and the
  digest of its Message-ID, so a redelivery of the e-mail stores nothing again.
- `snapshot_pending`: no personal data, exported for completeness.

The KPI tables (`kpi_snapshot`, `kpi_alert`) hold aggregates per hotel only;
`idempotent_request` holds a hash of each request and its answer (ids, a stage),
never the request's data, for 24 h.

Erasing keeps every row (staff texts aside) and replaces the personal fields with a marker, so the
delivery figures, the NPS score, check-in adoption and upsell conversion stay
what they were. An unsubscribe keeps a keyed digest of the address instead, so
the guest's opt-out outlives the erasure. It runs in one transaction,
committed with its audit row.

Temporal's history of the journey (every run, and every backup of it) is
encrypted under the journey's data keys (`journey_data_key`,
`guest_journey.payload_codec`); erasing destroys those keys in the same
transaction, so the history can no longer be read by anyone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlmodel import SQLModel, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from communications.channels.email import remove_from_outbox
from communications.mail_in_store import InboundEmail
from communications.message_status import MessageStatusEvent
from communications.message_store import MessageRecord, normalise_address
from communications.staff_texts import StaffText, staff_texts_of
from communications.unsubscribes import DIGEST_PREFIX, Unsubscribe, address_digest
from guest_journey.database import SessionFactory, utcnow
from guest_journey.gdpr_audit import audit_record
from guest_journey.journey_keys import destroy_journey_keys
from guest_journey.journeys import JourneyView, workflow_id_for
from guest_journey.messages import MessageDirection
from guest_journey.read_model import JourneyRecord
from services.snapshot_pending import SnapshotPending

ERASED_NAME = "erased"
ERASED_TEXT = "[erased]"
# an erased unsubscribe holds a digest; rows erased before digests were kept hold `erased:<random>`
ERASED_ADDRESS_PREFIXES = (DIGEST_PREFIX, "erased:")
# check-in details that say nothing about who the guest is; every other key is removed
CHECKIN_KEPT = frozenset(
    {"estimated_arrival", "estimated_arrival_at", "marketing_consent", "terms_accepted_at", "language"}
)


class UnknownReservation(LookupError):
    """No table holds data of this reservation."""

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"no data stored for reservation {reservation_id!r}")
        self.reservation_id = reservation_id


class _GuestRows:
    """Every row that holds personal data of one reservation's guest."""

    def __init__(
        self,
        journey: JourneyRecord | None,
        messages: list[MessageRecord],
        status_events: list[MessageStatusEvent],
        staff_texts: list[StaffText],
        unsubscribes: list[Unsubscribe],
        snapshots: list[SnapshotPending],
        emails: list[InboundEmail],
    ) -> None:
        self.journey = journey
        self.messages = messages
        self.status_events = status_events
        self.staff_texts = staff_texts
        self.unsubscribes = unsubscribes
        self.snapshots = snapshots
        self.emails = emails

    @property
    def empty(self) -> bool:
        return self.journey is None and not (
            self.messages or self.staff_texts or self.unsubscribes or self.snapshots or self.emails
        )

    def by_table(self) -> dict[str, list[Any]]:
        return {
            "journey": [self.journey] if self.journey is not None else [],
            "message": self.messages,
            "message_status_event": self.status_events,
            "staff_text": self.staff_texts,
            "unsubscribe": self.unsubscribes,
            "snapshot_pending": self.snapshots,
            "inbound_email": self.emails,
        }


async def has_guest_data(sessions: SessionFactory, reservation_id: str) -> bool:
    """Whether any table holds data of the reservation."""
    async with sessions() as session:
        return not (await _guest_rows(session, reservation_id)).empty


async def export_guest_data(
    sessions: SessionFactory, reservation_id: str, *, actor: str, reason: str | None = None
) -> dict[str, Any]:
    """Every row of the reservation's guest, grouped by table, as JSON-ready data;
    the export is recorded in the audit trail. Raises `UnknownReservation`."""
    async with sessions() as session:
        rows = await _guest_rows(session, reservation_id)
        if rows.empty:
            raise UnknownReservation(reservation_id)
        tables = {name: [_row(record) for record in records] for name, records in rows.by_table().items()}
        counts = {name: len(records) for name, records in tables.items()}
        session.add(
            audit_record(reservation_id=reservation_id, action="export", actor=actor, reason=reason, counts=counts)
        )
        await session.commit()
    return {"reservation_id": reservation_id, "exported_at": utcnow().isoformat(), "tables": tables}


async def erase_guest_data(
    sessions: SessionFactory,
    reservation_id: str,
    *,
    secret_key: str,
    actor: str,
    reason: str | None = None,
    outbox_dir: Path | None = None,
) -> dict[str, int]:
    """Replace the personal fields of the reservation's guest with a marker, and an
    unsubscribed address with its digest under `secret_key`, in one transaction
    with its audit row, and delete its e-mails from the local outbox
    (`outbox_dir`, where SMTP is not configured: their links still worked), and destroy
    the journey's data keys, so its Temporal history cannot be decoded any more;
    answers the rows (and files) changed per table (0 for everything on a second
    run). Raises `UnknownReservation`."""
    async with sessions() as session:
        rows = await _guest_rows(session, reservation_id)
        if rows.empty:
            raise UnknownReservation(reservation_id)
        scrub = _Scrubber(_personal_words(rows))
        counts = {
            "journey": _erase_journey(rows.journey, scrub) if rows.journey is not None else 0,
            "message": sum(_erase_message(message, scrub) for message in rows.messages),
            "message_status_event": sum(_erase_status_event(event, scrub) for event in rows.status_events),
            "staff_text": await _delete_staff_texts(session, rows.staff_texts),
            "unsubscribe": await _erase_unsubscribes(session, rows.unsubscribes, secret_key),
            "snapshot_pending": 0,
            "inbound_email": sum(_erase_email(email, scrub) for email in rows.emails),
            "outbox_file": remove_from_outbox(outbox_dir, (m.id for m in rows.messages)) if outbox_dir else 0,
            "journey_data_key": await destroy_journey_keys(
                session=session, workflow_id=workflow_id_for(reservation_id)
            ),
        }
        for records in rows.by_table().values():
            session.add_all(records)
        session.add(
            audit_record(reservation_id=reservation_id, action="erase", actor=actor, reason=reason, counts=counts)
        )
        await session.commit()
    return counts


# -- finding the rows ----------------------------------------------------------------------


async def _guest_rows(session: AsyncSession, reservation_id: str) -> _GuestRows:
    journey = await session.get(JourneyRecord, reservation_id)
    addresses = _addresses(journey)
    unmatched_from_guest = (
        (col(MessageRecord.reservation_id).is_(None))
        & (MessageRecord.direction == MessageDirection.inbound.value)
        & col(MessageRecord.sender).in_(addresses)
    )
    messages = list(
        (
            await session.exec(
                select(MessageRecord)
                .where(or_(MessageRecord.reservation_id == reservation_id, unmatched_from_guest))
                .order_by(col(MessageRecord.created_at), col(MessageRecord.id))
            )
        ).all()
    )
    status_events = list(
        (
            await session.exec(
                select(MessageStatusEvent)
                .where(col(MessageStatusEvent.message_id).in_([message.id for message in messages]))
                .order_by(col(MessageStatusEvent.message_id), col(MessageStatusEvent.at), col(MessageStatusEvent.id))
            )
        ).all()
    )
    staff_texts = await staff_texts_of(session=session, reservation_id=reservation_id)
    unsubscribes = list(
        (
            await session.exec(
                select(Unsubscribe)
                .where(
                    or_(
                        Unsubscribe.reservation_id == reservation_id,
                        col(Unsubscribe.reservation_id).is_(None) & col(Unsubscribe.address).in_(addresses),
                    )
                )
                .order_by(col(Unsubscribe.created_at))
            )
        ).all()
    )
    snapshots = list(
        (
            await session.exec(
                select(SnapshotPending)
                .where(SnapshotPending.reservation_id == reservation_id)
                .order_by(col(SnapshotPending.sent_at))
            )
        ).all()
    )
    message_ids = [message.id for message in messages]
    emails = list(
        (
            await session.exec(
                select(InboundEmail)
                .where(or_(
                    InboundEmail.reservation_id == reservation_id,
                    col(InboundEmail.message_ref).in_(message_ids),
                    col(InboundEmail.reservation_id).is_(None) & col(InboundEmail.sender).in_(addresses),
                ))
                .order_by(col(InboundEmail.received_at), col(InboundEmail.id))
            )
        ).all()
    )
    return _GuestRows(journey, messages, status_events, staff_texts, unsubscribes, snapshots, emails)


def _addresses(journey: JourneyRecord | None) -> list[str]:
    """The guest's e-mail and phone, normalised as messages and unsubscribes store them."""
    if journey is None:
        return []
    found = {normalise_address(journey.guest_email), normalise_address(journey.guest_phone)}
    return sorted(address for address in found if address)


def _row(record: SQLModel) -> dict[str, Any]:
    return record.model_dump(mode="json")


# -- erasing -------------------------------------------------------------------------------


class _Scrubber:
    """Replaces the guest's name, e-mail and phone inside free text (failure reasons)."""

    def __init__(self, words: Iterable[str]) -> None:
        unique = sorted({word for word in words if len(word) >= 3}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(word) for word in unique), re.IGNORECASE) if unique else None

    def __call__(self, text: str | None) -> str | None:
        if text is None or self._pattern is None:
            return text
        return self._pattern.sub(ERASED_TEXT, text)


def _personal_words(rows: _GuestRows) -> set[str]:
    words: set[str] = set()
    if rows.journey is not None:
        guest = rows.journey.view.get("guest") or {}
        words.update(str(guest.get(key) or "") for key in ("name", "email", "phone"))
        words.update(rows.journey.guest_email or "", rows.journey.guest_phone or "")
    for message in rows.messages:
        words.update(message.recipient or "", message.sender or "")
    words.update(entry.address for entry in rows.unsubscribes)
    words.update({word.lstrip("+") for word in words if word.startswith("+")})  # phones as channels quote them
    return {
        word for word in words
        if word and word not in (ERASED_NAME, ERASED_TEXT) and not word.startswith(ERASED_ADDRESS_PREFIXES)
    }


def _erase_journey(record: JourneyRecord, scrub: _Scrubber) -> int:
    view = JourneyView.model_validate(record.view)
    view.guest = view.guest.model_copy(update={"name": ERASED_NAME, "email": None, "phone": None})
    view.checkin.details = {key: value for key, value in view.checkin.details.items() if key in CHECKIN_KEPT}
    if view.feedback.comment is not None:
        view.feedback.comment = ERASED_TEXT
    view.preferences = dict.fromkeys(view.preferences)
    view.steps = [step.model_copy(update={"reason": scrub(step.reason)}) for step in view.steps]
    erased = view.model_dump(mode="json")
    changed = erased != record.view or record.guest_email is not None or record.guest_phone is not None
    record.view = erased
    record.guest_email = None
    record.guest_phone = None
    return int(changed)


def _erase_message(record: MessageRecord, scrub: _Scrubber) -> int:
    before = (record.subject, record.body_text, record.body_html, record.recipient, record.sender, record.reason)
    record.subject = _marker(record.subject)
    record.body_text = _marker(record.body_text)
    record.body_html = _marker(record.body_html)
    record.recipient = None
    record.sender = None
    record.reason = scrub(record.reason)
    after = (record.subject, record.body_text, record.body_html, record.recipient, record.sender, record.reason)
    if before == after:
        return 0
    record.updated_at = utcnow()
    return 1


def _erase_email(email: InboundEmail, scrub: _Scrubber) -> int:
    if email.sender is None and email.subject is None and email.message_id_header == ERASED_TEXT:
        return 0
    email.sender, email.subject, email.message_id_header = None, None, ERASED_TEXT
    email.attachments = [{"name": ERASED_TEXT, "size": item.get("size", 0)} for item in email.attachments]
    email.reason = scrub(email.reason)
    return 1


def _erase_status_event(event: MessageStatusEvent, scrub: _Scrubber) -> int:
    reason = scrub(event.reason)
    if reason == event.reason:
        return 0
    event.reason = reason
    return 1


async def _delete_staff_texts(session: AsyncSession, texts: list[StaffText]) -> int:
    """Staff texts are deleted: each went into its rendered message (erased above); a
    message not yet sent then fails, as its text is gone."""
    for text in texts:
        await session.delete(text)
    deleted = len(texts)
    texts.clear()
    return deleted


async def _erase_unsubscribes(session: AsyncSession, entries: list[Unsubscribe], secret_key: str) -> int:
    """Each address becomes its digest; one whose digest is stored already (the same
    guest, erased before) is deleted, the stored digest keeps the opt-out."""
    changed = 0
    for entry in list(entries):
        if entry.address.startswith(ERASED_ADDRESS_PREFIXES):
            continue
        digest = address_digest(entry.address, secret_key)
        if await session.get(Unsubscribe, digest) is not None:
            await session.delete(entry)
            entries.remove(entry)
        else:
            entry.address = digest
        changed += 1
    return changed


def _marker(text: str | None) -> str | None:
    return None if text is None else ERASED_TEXT
