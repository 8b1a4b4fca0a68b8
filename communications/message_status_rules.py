"""How a delivery report moves a message's current status.

The rules:

- Before the channel's answer is known (`queued`, `sending`, `in_doubt`), any
  report takes over: it is the provider's word on what became of the message.
- Along the ladder `queued < sent < delivered < read` (`MessageStatus.rank`) a
  status only moves up: a `sent` or `delivered` that arrives after `read` is
  kept in the history and changes nothing.
- `failed` replaces only `queued` or `sent`, and `sent` only when the failure
  happened at or after the time the message was sent. A delivered or read
  message never becomes failed: the guest has it.
- From `failed`, `delivered` and `read` always win (proof of delivery);
  `sent` wins only when it happened after the failure (a later attempt that
  went through); `queued` never does.
- Providers give times to the second, ours carry microseconds: `sent` and
  `failed` are compared to the second, and within the same second `failed`
  wins (a failure is never hidden by our own record of the hand-over).

`status_at` is the time of the event that set the current status.
`delivered_at` and `read_at` are the earliest times reported for them; a read
message was delivered, so `read` also sets `delivered_at` when none is known.
"""

from __future__ import annotations

from datetime import datetime

from communications.message_store import MessageRecord
from guest_journey.database import utcnow
from guest_journey.messages import NOT_HANDED_OVER, MessageStatus

_LADDER = frozenset(
    {MessageStatus.queued, MessageStatus.sent, MessageStatus.delivered, MessageStatus.read}
)
_PROOF_OF_DELIVERY = frozenset({MessageStatus.delivered, MessageStatus.read})


def takes_over(
    current: MessageStatus, current_at: datetime | None, new: MessageStatus, new_at: datetime
) -> bool:
    """Whether a report of `new` at `new_at` replaces the current status (the rules above)."""
    if current == new:
        return False
    if current in NOT_HANDED_OVER:
        return new not in NOT_HANDED_OVER
    if new is MessageStatus.failed:
        if current is MessageStatus.queued:
            return True
        return current is MessageStatus.sent and (
            current_at is None or _second(new_at) >= _second(current_at)
        )
    if current is MessageStatus.failed:
        if new in _PROOF_OF_DELIVERY:
            return True
        return new is MessageStatus.sent and current_at is not None and _second(new_at) > _second(current_at)
    if new in _LADDER and current in _LADDER:
        return new.rank > current.rank
    return False


def apply_report(record: MessageRecord, status: MessageStatus, at: datetime, reason: str | None) -> None:
    """Move the message's current status, and its delivered and read times, by the rules."""
    if status is MessageStatus.delivered:
        record.delivered_at = _earliest(record.delivered_at, at)
    elif status is MessageStatus.read:
        record.read_at = _earliest(record.read_at, at)
        record.delivered_at = record.delivered_at or at
    current_at = record.status_at or record.sent_at
    current = MessageStatus(record.status)
    if takes_over(current, current_at, status, at):
        if status is MessageStatus.failed:
            record.reason = reason
        elif current is MessageStatus.failed:
            record.reason = None
        record.status = status.value
        record.status_at = at
    record.updated_at = utcnow()


def _second(at: datetime) -> datetime:
    """Providers report times to the second (WhatsApp's `timestamp`): compare at that grain."""
    return at.replace(microsecond=0)


def _earliest(known: datetime | None, at: datetime) -> datetime:
    return at if known is None or at < known else known
