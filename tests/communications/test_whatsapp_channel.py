from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from communications.channels.base import (
    ChannelSender,
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from communications.channels.whatsapp import WhatsAppSender
from communications.rendered import RenderedMessage
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel
from tests.fake_whatsapp import FakeWhatsAppApi

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-test-token-0123456789"
GUEST_PHONE = "+5511999990000"


@pytest.fixture
async def api() -> AsyncIterator[FakeWhatsAppApi]:
    async with FakeWhatsAppApi(access_token=TOKEN) as server:
        yield server


@pytest.fixture
async def sender(api: FakeWhatsAppApi) -> AsyncIterator[WhatsAppSender]:
    async with WhatsAppSender(PHONE_NUMBER_ID, TOKEN, api.base_url, timeout=5.0) as channel:
        yield channel


def outgoing(**overrides: Any) -> Outgoing:
    fields: dict[str, Any] = {
        "message_id": "5b0c6f1e-2d1a-5c39-9f51-0c1f2b3a4d5e",
        "reservation_id": "R-1001",
        "channel": Channel.whatsapp,
        "recipient": GUEST_PHONE,
        "guest_name": "Maria Oliveira",
        "rendered": RenderedMessage(
            template="checkin_invitation",
            language="pt-BR",
            text="Olá, Maria! Faça o seu check-in: https://stay.example/guest/tok/check-in",
        ),
    }
    fields.update(overrides)
    return Outgoing(**fields)


def template_body(name: str, language: str, parameters: list[str]) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511999990000",
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": language},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": value} for value in parameters],
                }
            ],
        },
        "biz_opaque_callback_data": outgoing().message_id,
    }


def test_is_a_channel_sender() -> None:
    channel: ChannelSender = WhatsAppSender(PHONE_NUMBER_ID, TOKEN, "https://graph.example/v21.0")
    assert channel.channel is Channel.whatsapp


async def test_free_text_inside_the_customer_service_window(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    message = outgoing()

    delivery = await sender.send(message, window_open=True)

    assert delivery.status is MessageStatus.sent
    assert delivery.provider_message_id == api.sent_ids[0]
    assert delivery.provider_message_id.startswith("wamid.")
    [request] = api.requests
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511999990000",
        "type": "text",
        "text": {"preview_url": True, "body": message.rendered.text},
        "biz_opaque_callback_data": message.message_id,
    }


async def test_template_outside_the_window(api: FakeWhatsAppApi, sender: WhatsAppSender) -> None:
    delivery = await sender.send(
        outgoing(), template_parameters=["Hotel Copa Mar", "https://stay.example/g/tok"]
    )

    assert delivery.status is MessageStatus.sent
    assert delivery.provider_message_id == api.sent_ids[0]
    [request] = api.requests
    assert request.json == template_body(
        "checkin_invitation",
        "pt_BR",
        ["Maria Oliveira", "Hotel Copa Mar", "https://stay.example/g/tok"],
    )


async def test_template_is_the_default_and_parameters_are_one_line(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    await sender.send(
        outgoing(
            guest_name="Maria\tOliveira",
            rendered=RenderedMessage(template="upsell_offer", language="en", text="Hi"),
        ),
        template_parameters=["Room\nupgrade"],
    )

    [request] = api.requests
    assert request.json == template_body("upsell_offer", "en", ["Maria Oliveira", "Room upgrade"])


@pytest.mark.parametrize("window_open", [True, False])
async def test_rate_limit_is_transient(
    api: FakeWhatsAppApi, sender: WhatsAppSender, window_open: bool
) -> None:
    api.fail_next(status=429, code=130429, times=2)

    for _ in range(2):
        with pytest.raises(TransientDeliveryError, match="130429"):
            await sender.send(outgoing(), window_open=window_open)
    delivery = await sender.send(outgoing(), window_open=window_open)

    assert delivery.provider_message_id == api.sent_ids[0]
    assert len(api.requests) == 3


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, 131056), (500, 131000), (503, 131016), (500, 1), (400, 4)],
)
async def test_retryable_codes_are_transient(
    api: FakeWhatsAppApi, sender: WhatsAppSender, status: int, code: int
) -> None:
    api.fail_next(status=status, code=code)

    with pytest.raises(TransientDeliveryError, match=f"code {code}"):
        await sender.send(outgoing())


async def test_a_gateway_error_without_a_graph_error_leaves_the_message_in_doubt(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    """A proxy's 502 says nothing of whether Meta took the request behind it."""
    api.reply_next(status=502, body="<html><body>Bad Gateway</body></html>")

    with pytest.raises(InDoubtDeliveryError, match="HTTP 502"):
        await sender.send(outgoing())


async def test_a_server_error_with_a_graph_error_code_is_transient(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.fail_next(status=500, code=131000)

    with pytest.raises(TransientDeliveryError, match="code 131000"):
        await sender.send(outgoing())


async def test_a_refused_connection_is_transient_not_in_doubt() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with WhatsAppSender(PHONE_NUMBER_ID, TOKEN, f"http://127.0.0.1:{port}", timeout=2) as sender:
        with pytest.raises(TransientDeliveryError, match="unreachable") as raised:
            await sender.send(outgoing())
    assert not isinstance(raised.value, InDoubtDeliveryError)


async def test_undeliverable_is_permanent(api: FakeWhatsAppApi, sender: WhatsAppSender) -> None:
    api.fail_next(status=400, code=131026)

    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(outgoing())

    reason = str(raised.value)
    assert "not a WhatsApp user" in reason
    assert "code 131026" in reason
    assert "fbtrace_id" in reason


@pytest.mark.parametrize("code", [368, 132000, 132001, 100])
async def test_rejections_are_permanent(
    api: FakeWhatsAppApi, sender: WhatsAppSender, code: int
) -> None:
    api.fail_next(status=400, code=code)

    with pytest.raises(PermanentDeliveryError, match=f"code {code}"):
        await sender.send(outgoing())
    assert len(api.requests) == 1


async def test_unknown_client_error_is_permanent_with_metas_words(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.fail_next(status=400, code=131009, message="(#131009) Parameter value is not valid")

    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(outgoing())

    assert "(#131009) Parameter value is not valid" in str(raised.value)
    assert "code 131009" in str(raised.value)


async def test_re_engagement_on_free_text_falls_back_to_the_template_once(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.fail_next(status=400, code=131047)

    delivery = await sender.send(outgoing(), window_open=True)

    assert delivery.status is MessageStatus.sent
    assert delivery.provider_message_id == api.sent_ids[0]
    assert delivery.note is not None and "template" in delivery.note
    first, second = api.requests
    assert first.json["type"] == "text"
    assert second.json == template_body("checkin_invitation", "pt_BR", ["Maria Oliveira"])


async def test_re_engagement_fallback_failing_is_reported(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.fail_next(status=400, code=131047)
    api.fail_next(status=404, code=132001)

    with pytest.raises(PermanentDeliveryError, match="code 132001"):
        await sender.send(outgoing(), window_open=True)
    assert [request.json["type"] for request in api.requests] == ["text", "template"]


async def test_re_engagement_on_a_template_is_permanent(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.fail_next(status=400, code=131047)

    with pytest.raises(PermanentDeliveryError, match="24 hours"):
        await sender.send(outgoing())
    assert len(api.requests) == 1


async def test_rejected_access_token_names_the_setting_and_hides_the_token(
    api: FakeWhatsAppApi, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "EAAG-expired-token-9876543210"
    caplog.set_level(logging.DEBUG)

    async with WhatsAppSender(PHONE_NUMBER_ID, wrong, api.base_url) as sender:
        with pytest.raises(PermanentDeliveryError) as raised:
            await sender.send(outgoing())

    reason = str(raised.value)
    assert reason.startswith(
        "WhatsApp access token rejected: check GUEST_JOURNEY_WHATSAPP_ACCESS_TOKEN"
    )
    assert "code 190" in reason
    assert wrong not in reason and wrong not in caplog.text


async def test_token_and_phone_number_never_reach_reasons_or_logs(
    api: FakeWhatsAppApi, sender: WhatsAppSender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    api.fail_next(
        status=400,
        code=131030,
        message=f"Recipient phone number {GUEST_PHONE} not in allowed list",
        details=f"token {TOKEN} cannot message 5511999990000",
    )

    with pytest.raises(PermanentDeliveryError) as raised:
        await sender.send(outgoing())

    reason = str(raised.value)
    assert "not in allowed list" in reason
    for secret in (TOKEN, "5511999990000"):
        assert secret not in reason
        assert secret not in caplog.text


async def test_server_gone_is_transient(api: FakeWhatsAppApi, sender: WhatsAppSender) -> None:
    await sender.send(outgoing())
    await api.stop()

    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await sender.send(outgoing())


async def test_an_answer_slower_than_the_timeout_leaves_the_message_in_doubt(api: FakeWhatsAppApi) -> None:
    """Meta took the request: only its answer is late. Sending again could send twice."""
    api.reply_next(delay=2.0)

    async with WhatsAppSender(PHONE_NUMBER_ID, TOKEN, api.base_url, timeout=0.2) as sender:
        with pytest.raises(InDoubtDeliveryError, match="did not answer within 0.2s"):
            await sender.send(outgoing())
    assert len(api.requests) == 1


async def test_success_without_a_message_id_leaves_the_message_in_doubt(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    api.reply_next(status=200, body={"messaging_product": "whatsapp"})

    with pytest.raises(InDoubtDeliveryError, match="without a message id"):
        await sender.send(outgoing())


async def test_every_message_carries_its_id_for_the_status_webhooks(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    message = outgoing()
    await sender.send(message)
    await sender.send(message, window_open=True)

    assert [request.json["biz_opaque_callback_data"] for request in api.requests] == [
        message.message_id, message.message_id,
    ]


async def test_invalid_phone_number_is_permanent_and_not_sent(
    api: FakeWhatsAppApi, sender: WhatsAppSender
) -> None:
    with pytest.raises(PermanentDeliveryError, match="E.164"):
        await sender.send(outgoing(recipient="maria@example.com"))
    assert api.requests == []


async def test_injected_client_is_used_and_left_open(api: FakeWhatsAppApi) -> None:
    async with httpx.AsyncClient() as client:
        async with WhatsAppSender(PHONE_NUMBER_ID, TOKEN, api.base_url, client=client) as sender:
            await sender.send(outgoing())
        assert not client.is_closed
        await WhatsAppSender(PHONE_NUMBER_ID, TOKEN, api.base_url, client=client).send(outgoing())

    assert len(api.requests) == 2


def test_missing_configuration_fails_at_start() -> None:
    with pytest.raises(ValueError, match="GUEST_JOURNEY_WHATSAPP_ACCESS_TOKEN"):
        WhatsAppSender(PHONE_NUMBER_ID, "", "https://graph.example/v21.0")
