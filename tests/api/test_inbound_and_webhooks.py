"""Guests' replies: recorded by staff or arriving by WhatsApp webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlmodel import col, select

from api.limits import WHATSAPP_WEBHOOK_MAX_BODY_BYTES
from communications.channels.whatsapp import WhatsAppSender
from communications.message_status import MessageStatusEvent
from communications.message_store import MessageRecord
from guest_journey.messages import MessageDirection, MessageStatus
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.communications.test_message_store import sent_message
from tests.fake_whatsapp import FakeWhatsAppApi
from tests.smtp_server import SmtpTestServer
from tests.workflows.journeys import end, now, recorded
from worker import build_channels
from workflows.journey import GuestJourneyWorkflow

APP_SECRET = "whatsapp-app-secret"


@pytest.fixture
async def webhook_api(api_settings: Settings):
    settings = api_settings.model_copy(update={
        "whatsapp_app_secret": SecretStr(APP_SECRET), "whatsapp_verify_token": SecretStr("verify-me"),
    })
    async for client in app_client(settings):
        yield client


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload).encode()
    signature = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"}


def whatsapp_payload(*, messages=(), statuses=()) -> dict:  # type: ignore[no-untyped-def]
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "1234567890"},
             "contacts": [{"profile": {"name": "Ana"}, "wa_id": "5511999990000"}],
             "messages": list(messages), "statuses": list(statuses)}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": "waba", "changes": [{"field": "messages", "value": value}]}]}


async def handed_over(api, reservation_id: str) -> None:  # type: ignore[no-untyped-def]
    """Until the journey's first outbound message is recorded as handed to its channel."""
    for _ in range(600):
        messages = (await api.get(f"/guest-experience/{reservation_id}")).json()["messages"]
        if any(m["direction"] == "outbound" and m["sent_at"] for m in messages):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no message of {reservation_id} was handed over within 30 s")


async def test_a_reply_to_our_message_is_matched_and_timed(env, worker, email, api, sessions):
    arrival = await now(env) + timedelta(days=2)
    async with worker():
        await api.put("/reservations/R-IN-1", json=reservation_body(arrival))
        await email.wait_for(1)
        invitation_id = email.sent[0].message_id
        reply = await api.post("/communications/messages/inbound", json={
            "channel": "email", "sender": "ana@example.com", "body": "Chego às 22h, tudo bem?",
            "in_reply_to": invitation_id,
        })
        by_sender = await api.post("/communications/messages/inbound", json={
            "channel": "email", "sender": "ANA@example.com", "body": "Outra pergunta"})
        stranger = await api.post("/communications/messages/inbound", json={
            "channel": "whatsapp", "sender": "+4930123456", "body": "Olá?"})
        journey = (await api.get("/guest-experience/R-IN-1")).json()
        await end(env, "R-IN-1")

    assert reply.status_code == 201, reply.text
    assert reply.json()["reservation_id"] == "R-IN-1" and reply.json()["matched_by"] == "in_reply_to"
    assert reply.json()["response_time_minutes"] >= 0
    assert by_sender.json()["reservation_id"] == "R-IN-1" and by_sender.json()["matched_by"] == "sender"
    assert stranger.status_code == 201 and stranger.json()["reservation_id"] is None  # kept, unmatched
    inbound = [m for m in journey["messages"] if m["direction"] == "inbound"]
    assert [m["status"] for m in inbound] == ["received", "received"]
    assert inbound[0]["in_reply_to"] == invitation_id


async def test_inbound_for_an_unknown_reservation_gets_404(api):
    answer = await api.post("/communications/messages/inbound", json={
        "channel": "email", "sender": "a@b.co", "body": "x", "reservation_id": "NOPE"})
    assert answer.status_code == 404


async def test_whatsapp_verification_challenge(webhook_api):
    good = await webhook_api.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"})
    bad = await webhook_api.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1158201444"})
    assert good.status_code == 200 and good.text == "1158201444"
    assert bad.status_code == 403


async def test_webhook_signature_is_checked(webhook_api):
    raw, headers = signed(whatsapp_payload())
    missing = await webhook_api.post("/webhooks/whatsapp", content=raw,
                                      headers={"Content-Type": "application/json"})
    forged = await webhook_api.post("/webhooks/whatsapp", content=raw + b" ", headers=headers)
    good = await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers)
    assert missing.status_code == 401 and forged.status_code == 401
    assert good.status_code == 200


async def test_webhook_statuses_apply_once_in_order_and_inbound_opens_the_window(
    env, worker, email, webhook_api, sessions
):
    arrival = await now(env) + timedelta(days=2)
    async with worker():
        await webhook_api.put("/reservations/R-WH-1", json=reservation_body(arrival, phone="+5511999990000"))
        await email.wait_for(1)
        provider_id = email.sent[0].message_id  # our sender answers with <id@test>
        journey = (await webhook_api.get("/guest-experience/R-WH-1")).json()
        message_id = journey["messages"][0]["id"]
        ts = int(arrival.timestamp()) - 86400
        read_first = whatsapp_payload(statuses=[
            {"id": f"<{provider_id}@test>", "status": "read", "timestamp": str(ts + 60), "recipient_id": "5511999990000"},
        ])
        late_delivered = whatsapp_payload(statuses=[
            {"id": f"<{provider_id}@test>", "status": "delivered", "timestamp": str(ts + 30), "recipient_id": "5511999990000"},
        ])
        for payload in (read_first, late_delivered, read_first):  # out of order, then redelivered
            raw, headers = signed(payload)
            assert (await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers)).status_code == 200
        inbound = whatsapp_payload(messages=[{
            "from": "5511999990000", "id": "wamid.IN1", "timestamp": str(ts + 90), "type": "text",
            "text": {"body": "Posso fazer check-in antes?"}}])
        raw, headers = signed(inbound)
        for _ in range(2):  # Meta redelivers
            answer = await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers)
        journey = (await webhook_api.get("/guest-experience/R-WH-1")).json()
        handle = env.client.get_workflow_handle_for(GuestJourneyWorkflow.run, "journey-R-WH-1")
        await end(env, "R-WH-1")

    assert answer.json() == {"statuses": 0, "messages": 1}
    statuses = {m["id"]: m["status"] for m in journey["messages"]}
    assert statuses[message_id] == "read"  # a late 'delivered' never moves it back
    inbound_messages = [m for m in journey["messages"] if m["direction"] == "inbound"]
    assert len(inbound_messages) == 1 and inbound_messages[0]["channel"] == "whatsapp"
    assert handle is not None


async def test_free_text_reported_failed_for_the_closed_window_is_sent_again_once_as_template(
    env, worker, webhook_api, sessions
):
    arrival = await now(env) + timedelta(days=10)
    body = reservation_body(arrival, phone="+5511999990000", preferred_channels=["whatsapp"])
    async with FakeWhatsAppApi(access_token="token") as cloud_api:
        whatsapp = WhatsAppSender("1234567890", "token", cloud_api.base_url)
        async with worker({Channel.whatsapp: whatsapp}):
            await webhook_api.put("/reservations/R-WH-2", json=body)
            await recorded(sessions, "R-WH-2")  # a guest's message finds its journey through the read model
            wrote = whatsapp_payload(messages=[{  # the guest writes: free text may be sent for 24 hours
                "from": "5511999990000", "id": "wamid.IN2", "timestamp": str(int((await now(env)).timestamp())),
                "type": "text", "text": {"body": "Oi! Vocês têm estacionamento?"}}])
            raw, headers = signed(wrote)
            assert (await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers)).status_code == 200
            sent = await webhook_api.post("/communications/send", json={
                "reservation_id": "R-WH-2", "template": "checkin_invitation", "channel": "whatsapp"})
            [text] = await cloud_api.wait_for(1)
            await handed_over(webhook_api, "R-WH-2")  # Meta reports the failure seconds later
            failed = whatsapp_payload(statuses=[{
                "id": cloud_api.sent_ids[0], "status": "failed", "recipient_id": "5511999990000",
                "timestamp": str(int(datetime.now(UTC).timestamp()) + 1),
                "errors": [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
                            "error_data": {"details": "More than 24 hours have passed since the customer last replied."}}],
            }])
            raw, headers = signed(failed)
            answers = [await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers)]
            await cloud_api.wait_for(2)
            answers.append(await webhook_api.post("/webhooks/whatsapp", content=raw, headers=headers))  # redelivered
            # A second staff message goes out after anything the journey had queued before it.
            await webhook_api.post("/communications/send", json={
                "reservation_id": "R-WH-2", "template": "free_text", "channel": "whatsapp",
                "context": {"body": "Temos, sim."}})
            await cloud_api.wait_for(3)
            journey = (await webhook_api.get("/guest-experience/R-WH-2")).json()
            await end(env, "R-WH-2")
        await whatsapp.aclose()

    assert [answer.status_code for answer in answers] == [200, 200]
    assert text.json["type"] == "text"
    assert [r.json["type"] for r in cloud_api.requests] == ["text", "template", "text"]
    assert cloud_api.requests[1].json["template"]["name"] == "checkin_invitation"
    assert cloud_api.requests[2].json["text"]["body"].startswith("Temos, sim.")  # not the invitation again
    outbound = [m for m in journey["messages"] if m["direction"] == "outbound"]
    first, again = outbound[0], outbound[1]
    assert first["id"] == sent.json()["message_id"]
    assert (first["template"], first["status"]) == ("checkin_invitation", "failed")
    assert "code 131047" in first["reason"]
    assert (again["template"], again["status"]) == ("checkin_invitation", "sent")
    assert again["reason"].startswith("sent again as template 'checkin_invitation'")
    assert first["id"] in again["reason"]
    step = next(s for s in journey["steps"] if s["key"] == first["step_key"])
    assert step["status"] == "done" and "sent again as template" in step["reason"]


async def test_a_failure_the_journey_cannot_be_told_of_gets_503_so_that_meta_redelivers(settings, sessions):
    await sent_message(sessions, provider_message_id="wamid.OUT1", reservation_id="R-WH-3")
    unreachable = settings.model_copy(update={
        "temporal_address": "127.0.0.1:1", "whatsapp_app_secret": SecretStr(APP_SECRET)})
    ts = str(int(datetime.now(UTC).timestamp()))
    delivered = whatsapp_payload(statuses=[{"id": "wamid.OUT1", "status": "delivered", "timestamp": ts}])
    failed = whatsapp_payload(statuses=[{"id": "wamid.OUT1", "status": "failed", "timestamp": ts,
                                         "errors": [{"code": 131047, "title": "Re-engagement message"}]}])
    async for client in app_client(unreachable):
        answers = [await client.post("/webhooks/whatsapp", content=raw, headers=headers)
                   for raw, headers in (signed(failed), signed(delivered), signed(failed))]
    # Once delivered, the guest has it: a failure redelivered after that is not the journey's business.
    assert [answer.status_code for answer in answers] == [503, 200, 200]


async def test_a_body_over_64_kib_gets_413(api):
    answer = await api.post("/communications/messages/inbound", content=b"x" * (65 * 1024),
                            headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


async def test_an_email_reply_is_matched_by_the_token_in_its_reply_address(env, worker, api, api_settings):
    arrival = await now(env) + timedelta(days=2)
    async with SmtpTestServer() as smtp:
        smtp_settings = api_settings.model_copy(update={"smtp_host": smtp.host, "smtp_port": smtp.port})
        async with worker(build_channels(smtp_settings)):
            await api.put("/reservations/R-TOKEN-1", json=reservation_body(arrival, email="guest@example.org"))
            [invitation] = await smtp.wait_for(1)
            reply_to = invitation["Reply-To"].addresses[0].addr_spec
            answer = await api.post("/communications/messages/inbound", json={
                "channel": "email", "sender": "someone.else@example.net", "body": "Obrigada!",
                "to": reply_to})
            tampered = await api.post("/communications/messages/inbound", json={
                "channel": "email", "sender": "someone.else@example.net", "body": "?",
                "to": reply_to.replace("reply+", "reply+0")})
            await end(env, "R-TOKEN-1")
    assert len(reply_to.split("@")[0]) <= 64
    assert answer.json()["reservation_id"] == "R-TOKEN-1" and answer.json()["matched_by"] == "in_reply_to"
    assert tampered.json()["reservation_id"] is None


def meta_status(wamid: str, status: str, at: datetime) -> dict:
    """One status as Meta reports it, with its conversation and pricing (about 360 bytes)."""
    return {"id": wamid, "status": status, "timestamp": str(int(at.timestamp())), "recipient_id": "5511999990000",
            "conversation": {"id": hashlib.md5(wamid.encode()).hexdigest(),
                             "expiration_timestamp": str(int(at.timestamp()) + 86400),
                             "origin": {"type": "utility"}},
            "pricing": {"billable": True, "pricing_model": "CBP", "category": "utility"}}


async def handed_to_meta(sessions, wamids: list[str], at: datetime) -> None:  # type: ignore[no-untyped-def]
    """A WhatsApp message handed over at `at` per wamid, in one transaction."""
    async with sessions() as session:
        for n, wamid in enumerate(wamids):
            session.add(MessageRecord(
                id=f"msg-batch-{n}", reservation_id=f"R-BATCH-{n}", hotel_id="hotel-sp",
                direction=MessageDirection.outbound.value, channel=Channel.whatsapp.value, template="checkin_invitation",
                step_key="checkin_invitation", status=MessageStatus.sent.value, provider_message_id=wamid,
                recipient="+5511999990000", created_at=at, sent_at=at, status_at=at))
        await session.commit()


async def test_a_batched_webhook_of_2_5_mb_is_accepted_and_every_status_applied(settings, sessions):
    """Meta batches statuses up to 3 MB a request (api/limits.py): about 2.5 MB of them,
    for 2,300 messages, each reported sent, delivered and read, is taken whole."""
    handed = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)
    wamids = [f"wamid.HBgNNTUxMTk5OTk5MDAwMBUCABEYEj{n:020d}AA==" for n in range(2300)]
    await handed_to_meta(sessions, wamids, handed)
    reports = ("sent", "delivered", "read")
    statuses = [meta_status(wamid, status, handed + timedelta(seconds=1 + k))
                for k, status in enumerate(reports) for wamid in wamids]
    raw, headers = signed(whatsapp_payload(statuses=statuses))
    assert 2_400_000 < len(raw) < WHATSAPP_WEBHOOK_MAX_BODY_BYTES  # far over the 64 KiB of other routes

    meta = settings.model_copy(update={"temporal_address": "127.0.0.1:1", "whatsapp_app_secret": SecretStr(APP_SECRET)})
    async for client in app_client(meta):
        answer = await client.post("/webhooks/whatsapp", content=raw, headers=headers)

    assert answer.status_code == 200, answer.text[:300]
    assert answer.json() == {"statuses": len(statuses), "messages": 0}
    async with sessions() as session:
        messages = (await session.exec(
            select(MessageRecord).where(col(MessageRecord.reservation_id).startswith("R-BATCH-")))).all()
        events = (await session.exec(
            select(MessageStatusEvent.message_id, MessageStatusEvent.status)
            .where(col(MessageStatusEvent.message_id).startswith("msg-batch-")))).all()
    assert len(messages) == len(wamids)
    assert {m.status for m in messages} == {"read"}
    assert all(m.delivered_at == handed + timedelta(seconds=2) and m.read_at == handed + timedelta(seconds=3)
               for m in messages)
    assert sorted(events) == sorted((m.id, status) for m in messages for status in reports)  # each report once


async def test_a_webhook_body_over_metas_3_mb_gets_413_declared_or_streamed(settings):
    raw, headers = signed(whatsapp_payload(statuses=[{"padding": "x" * WHATSAPP_WEBHOOK_MAX_BODY_BYTES}]))

    async def in_chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(raw), 256 * 1024):
            yield raw[start:start + 256 * 1024]

    meta = settings.model_copy(update={"temporal_address": "127.0.0.1:1", "whatsapp_app_secret": SecretStr(APP_SECRET)})
    async for client in app_client(meta):
        declared = await client.post("/webhooks/whatsapp", content=raw, headers=headers)
        streamed = await client.post("/webhooks/whatsapp", content=in_chunks(), headers=headers)

    assert declared.status_code == 413 and streamed.status_code == 413
    assert declared.json() == {"detail": "the request body is larger than 3 MiB"}
