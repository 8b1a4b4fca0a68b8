"""Guest data in Temporal's history: encrypted per journey, readable by ops through
the codec endpoint (what the Temporal UI calls), and by nobody after an erase.

Through real HTTP to the app (`/reservations`, `/codec/decode`), a real worker
whose client has the codec, the history as the Temporal server holds it, and
`guest-journey gdpr erase` in a process of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from guest_journey.database import SessionFactory
from guest_journey.journey_keys import JourneyKeyErased, JourneyKeys
from guest_journey.journeys import Stage, workflow_id_for
from guest_journey.payload_codec import ENCODING, JourneyPayloadCodec
from guest_journey.read_model import get_journey
from guest_journey.reservations import Channel
from guest_journey.settings import Settings
from guest_journey.temporal import connect_temporal
from tests.api.conftest import app_client
from tests.api.test_reservations import reservation_body
from tests.recording_sender import RecordingSender
from tests.test_gdpr import gdpr_cli, recorded
from tests.workflows.journeys import now
from worker import build_worker

NAME, EMAIL = "Joana Prates", "joana.prates@example.com"
OPS, RESERVATIONS = "k-ops-codec-0123456789", "k-res-codec-0123456789"
OWN_HOTEL_OPS, OTHER_HOTEL_OPS = "k-ops-hotel-1-0123456789", "k-ops-hotel-2-0123456789"
TEMPORAL_UI = "https://temporal.hotel.example"


@pytest.fixture
def codec_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={
        "api_keys": f"{OPS}:ops,{RESERVATIONS}:reservations,{OWN_HOTEL_OPS}:ops:hotel-1,{OTHER_HOTEL_OPS}:ops:hotel-2",
        "payload_encryption": True,
        "data_key_cache_seconds": 0.0,  # every process sees an erase at once
        "temporal_ui_url": TEMPORAL_UI,
    })


@pytest.fixture
async def web(codec_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in app_client(codec_settings):
        yield client


def headers(key: str | None, **more: str) -> dict[str, str]:
    sent = {"content-type": "application/json", "x-namespace": "default", **more}
    return {**sent, "authorization": f"Bearer {key}"} if key else sent


async def test_history_is_encrypted_decodes_for_ops_only_and_not_at_all_after_an_erase(
    env: WorkflowEnvironment, codec_settings: Settings, sessions: SessionFactory, web: httpx.AsyncClient
):
    client = await connect_temporal(codec_settings, sessions=sessions)
    rid = f"R-CODEC-{uuid.uuid4().hex[:8]}"
    handle = env.client.get_workflow_handle(workflow_id_for(rid))
    try:
        async with build_worker(client, codec_settings, sessions, {Channel.email: RecordingSender(Channel.email)}):
            arrival = await now(env) + timedelta(days=10)
            put = await web.put(f"/reservations/{rid}", json=reservation_body(arrival, name=NAME, email=EMAIL),
                                headers=headers(RESERVATIONS))
            assert put.status_code == 201, put.text
            await recorded(sessions, rid)

            history = await handle.fetch_history()
            stored = b"".join(event.SerializeToString() for event in history.events)
            assert ENCODING in stored
            assert NAME.encode() not in stored and EMAIL.encode() not in stored

            started = history.events[0].workflow_execution_started_event_attributes.input
            body = json_format.MessageToJson(started)
            decoded = await web.post("/codec/decode", content=body, headers=headers(OPS, origin=TEMPORAL_UI))
            assert decoded.status_code == 200, decoded.text
            assert decoded.headers["access-control-allow-origin"] == TEMPORAL_UI
            [payload] = json_format.Parse(decoded.text, Payloads()).payloads
            assert EMAIL.encode() in payload.data and NAME.encode() in payload.data
            own_hotel = await web.post("/codec/decode", content=body, headers=headers(OWN_HOTEL_OPS))
            assert own_hotel.status_code == 200 and own_hotel.json() == decoded.json()
            for key, status in ((None, 401), ("k-unknown-0123456789", 401), (RESERVATIONS, 403),
                                (OTHER_HOTEL_OPS, 404)):
                refused = await web.post("/codec/decode", content=body, headers=headers(key))
                assert refused.status_code == status, (key, refused.text)
                assert EMAIL not in refused.text
            other_namespace = await web.post("/codec/decode", content=body,
                                             headers=headers(OPS, **{"x-namespace": "elsewhere"}))
            assert other_namespace.status_code == 404

            erase = await gdpr_cli(codec_settings, "erase", rid, "--reason", "guest's request",
                                   temporal_address=env.client.service_client.config.target_host)
            assert erase.status == 0, erase.stderr
            assert f"cancelled the running journey of reservation {rid!r}" in erase.stdout

        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
        async with sessions() as session:
            view = await get_journey(session=session, reservation_id=rid)
        assert view is not None and view.stage is Stage.cancelled and view.guest.name == "erased"

        after = await web.post("/codec/decode", content=body, headers=headers(OPS))
        assert after.status_code == 410, after.text
        assert f"journey {workflow_id_for(rid)!r}" in after.json()["detail"]
        other_hotel_after = await web.post("/codec/decode", content=body, headers=headers(OTHER_HOTEL_OPS))
        assert other_hotel_after.status_code == 404 and rid not in other_hotel_after.text
        every_run = [
            payload
            for event in (await handle.fetch_history()).events
            for payload in event.workflow_execution_started_event_attributes.input.payloads
            or event.activity_task_scheduled_event_attributes.input.payloads
            or event.activity_task_completed_event_attributes.result.payloads
            if payload.metadata.get("encoding") == ENCODING
        ]
        assert every_run
        for payload in every_run:
            with pytest.raises(JourneyKeyErased):
                await JourneyPayloadCodec(JourneyKeys(sessions)).decode([payload])
    finally:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("test cleanup")


async def test_only_the_temporal_ui_may_call_the_codec_across_origins(web: httpx.AsyncClient):
    ask = {"access-control-request-method": "POST",
           "access-control-request-headers": "authorization,content-type,x-namespace"}

    from_ui = await web.options("/codec/decode", headers={"origin": TEMPORAL_UI, **ask})
    from_elsewhere = await web.options("/codec/decode", headers={"origin": "https://evil.example", **ask})
    other_route = await web.options("/reservations/R1", headers={"origin": TEMPORAL_UI, **ask})

    assert from_ui.status_code == 200
    assert from_ui.headers["access-control-allow-origin"] == TEMPORAL_UI
    assert "x-namespace" in from_ui.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in from_elsewhere.headers
    assert "access-control-allow-origin" not in other_route.headers


async def test_encode_answers_the_payloads_as_given_and_a_bad_body_is_422(web: httpx.AsyncClient):
    body = '{"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "IkFuYSI="}]}'

    encoded = await web.post("/codec/encode", content=body, headers=headers(OPS))
    garbled = await web.post("/codec/decode", content="{not json", headers=headers(OPS))

    assert encoded.status_code == 200, encoded.text
    assert json_format.Parse(encoded.text, Payloads()) == json_format.Parse(body, Payloads())
    assert garbled.status_code == 422
