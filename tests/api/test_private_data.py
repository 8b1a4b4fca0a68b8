"""A guest's e-mail address, phone number and ID document never appear in clear
in the log lines or the exported spans of a whole flow: the reservation, a
delivery the SMTP server refuses quoting the address, the WhatsApp fallback,
online check-in with a document, and the guest's replies by API and webhook."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from guest_journey.database import SessionFactory
from guest_journey.logs import JsonFormatter
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from tests.api.conftest import app_client
from tests.api.test_guest_pages import GOOD_CHECKIN, Links, csrf, request_id
from tests.api.test_inbound_and_webhooks import APP_SECRET, signed, whatsapp_payload
from tests.api.test_reservations import reservation_body
from tests.recording_sender import RecordingSender
from tests.spans import recording_exporter
from tests.workflows.journeys import end, now
from worker import build_worker

EMAIL = "ana.souza@example.com"
PHONE = "+5521987654321"
DOCUMENT = "ab 123-4567"
IN_CLEAR = [EMAIL, PHONE, PHONE.removeprefix("+"), DOCUMENT, "AB1234567"]


@pytest.fixture
def private_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={"whatsapp_app_secret": SecretStr(APP_SECRET)})


@pytest.fixture
async def web(private_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(private_settings):
        yield client


async def test_guest_contacts_and_documents_stay_out_of_logs_and_spans(
    env, private_settings: Settings, sessions: SessionFactory, web: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
):
    spans = recording_exporter()
    spans.clear()
    caplog.set_level(logging.INFO)
    email = RecordingSender(Channel.email)
    email.permanent_failure = f"550 5.1.1 <{EMAIL}>: Recipient address rejected"
    whatsapp = RecordingSender(Channel.whatsapp)
    client = await connect_temporal(private_settings)
    rid = f"R-PII-{int(time.time() * 1000)}"

    async with build_worker(client, private_settings, sessions, {Channel.email: email, Channel.whatsapp: whatsapp}):
        arrival = await now(env) + timedelta(days=2)
        body = reservation_body(arrival, email=EMAIL, phone=PHONE)
        assert (await web.put(f"/reservations/{rid}", json=body)).status_code == 201
        await whatsapp.wait_for(1)  # e-mail refused, the invitation went by WhatsApp

        url = Links(private_settings).of(rid, datetime.fromisoformat(body["departure"]))["checkin_url"]
        form = await web.get(url)
        fields = {**GOOD_CHECKIN, "document_number": DOCUMENT, "request_id": request_id(form),
                  "csrf_token": csrf(form)}
        assert (await web.post(url, data=fields)).status_code == 303

        reply = await web.post("/communications/messages/inbound", json={
            "channel": "email", "sender": EMAIL, "body": f"Meu telefone é {PHONE}", "reservation_id": rid})
        assert reply.status_code == 201, reply.text
        raw, headers = signed(whatsapp_payload(messages=[{
            "from": PHONE.removeprefix("+"), "id": f"wamid.{rid}", "timestamp": str(int(time.time())),
            "type": "text", "text": {"body": f"Escrevi de {EMAIL}"}}]))
        assert (await web.post("/webhooks/whatsapp", content=raw, headers=headers)).status_code == 200
        journey = (await web.get(f"/guest-experience/{rid}")).json()
        await end(env, rid)

    assert journey["checkin"]["status"] == "completed"
    assert [m["direction"] for m in journey["messages"]].count("inbound") == 2
    lines = [JsonFormatter().format(record) for record in caplog.records]
    exported = [span.to_json() for span in spans.get_finished_spans()]
    assert any(json.loads(line)["logger"].startswith("temporalio") for line in lines)  # the refusal was logged
    assert any("RunActivity:send_message" in span for span in exported)
    everything = "\n".join(lines + exported)
    assert "a***@example.com" in everything  # what the SMTP server quoted, masked
    for value in IN_CLEAR:
        assert value not in everything
