"""A webhook's batch of status reports is applied as one report at a time would be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from communications.message_status import StatusReport, apply_status_updates, status_history
from communications.message_store import MessageRecord
from guest_journey.messages import MessageDirection, MessageStatus

HANDED = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)


async def handed_over(sessions, *ids: str) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        for n, message_id in enumerate(ids):
            session.add(MessageRecord(
                id=message_id, reservation_id=f"R{n}", direction=MessageDirection.outbound.value,
                channel="whatsapp", status=MessageStatus.sent.value, sent_at=HANDED,
                provider_message_id=f"wamid.{message_id}" if not message_id.startswith("lost") else None,
            ))
        await session.commit()


def report(message_id: str, status: str, seconds: int, **fields: object) -> StatusReport:
    at = HANDED + timedelta(seconds=seconds)
    return StatusReport(
        provider_message_id=f"wamid.{message_id}", status=MessageStatus(status), at=at,
        event_id=f"whatsapp:wamid.{message_id}:{status}:{int(at.timestamp())}", **fields,
    )


async def test_out_of_order_repeated_and_unknown_reports_in_one_batch(sessions):
    await handed_over(sessions, "m1", "m2", "lost-1")
    batch = [
        report("m1", "read", 3), report("m1", "delivered", 2), report("m1", "read", 3),  # late, and again
        report("m2", "failed", 1, reason="undeliverable (code 131026)"),
        report("unknown", "delivered", 2),
        report("lost-1", "delivered", 2, callback_message_id="lost-1"),  # its send answer was lost
    ]
    async with sessions() as session:
        found = await apply_status_updates(session=session, reports=batch)

    assert [record.id if record else None for record in found] == ["m1", "m1", "m1", "m2", None, "lost-1"]
    async with sessions() as session:
        m1, m2, lost = [await session.get(MessageRecord, i) for i in ("m1", "m2", "lost-1")]
        history = await status_history(session=session, message_id="m1")
    assert m1.status == "read" and m1.delivered_at == HANDED + timedelta(seconds=2)
    assert [event.status for event in history] == ["delivered", "read"]  # each report kept once
    assert m2.status == "failed" and m2.reason == "undeliverable (code 131026)"
    assert lost.status == "delivered" and lost.provider_message_id == "wamid.lost-1"


async def test_a_batch_delivered_again_changes_nothing(sessions):
    await handed_over(sessions, "m1")
    batch = [report("m1", "delivered", 2), report("m1", "read", 3)]
    async with sessions() as session:
        await apply_status_updates(session=session, reports=batch)
        await apply_status_updates(session=session, reports=batch)
        history = await status_history(session=session, message_id="m1")
    assert [event.status for event in history] == ["delivered", "read"]
