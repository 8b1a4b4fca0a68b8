from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from communications.whatsapp_webhook import (
    InboundWhatsApp,
    StatusUpdate,
    WebhookForbidden,
    WebhookInvalid,
    WebhookUnauthorized,
    parse_webhook,
    verify_challenge,
    verify_signature,
)
from guest_journey.messages import MessageStatus

VERIFY_TOKEN = "meu-token-de-verificacao"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
WAMID_OUT = "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABEYEjQ2QjdGQjRBNEE5RUI4RTYxQQA="
WAMID_IN = "wamid.HBgNNTUxMTk5OTk5MDAwMBUCABIYFDNBMDQ3RjE0QjU2RjJBRTc5NzY0AA=="
TS = "1700000000"
AT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


def signed(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(*values: dict[str, Any], field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": field,
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            **value,
                        },
                    }
                    for value in values
                ],
            }
        ],
    }


def status(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": WAMID_OUT,
        "status": state,
        "timestamp": TS,
        "recipient_id": "5511999990000",
        **extra,
    }


def inbound(kind: str, content: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "from": "5511999990000",
        "id": WAMID_IN,
        "timestamp": TS,
        "type": kind,
    }
    if content is not None:
        message[kind] = content
    message.update(extra)
    return message


CONTACTS = [{"profile": {"name": "Maria Oliveira"}, "wa_id": "5511999990000"}]


# -- verification challenge --------------------------------------------------------------


def test_challenge_with_our_token_is_echoed() -> None:
    assert verify_challenge("subscribe", VERIFY_TOKEN, "1158201444", VERIFY_TOKEN) == "1158201444"


@pytest.mark.parametrize(
    ("mode", "token"),
    [
        ("subscribe", "not-our-token"),
        ("subscribe", None),
        ("subscribe", ""),
        ("unsubscribe", VERIFY_TOKEN),
        (None, VERIFY_TOKEN),
        ("subscribe", "tökén"),
    ],
)
def test_challenge_with_a_wrong_mode_or_token_is_forbidden(
    mode: str | None, token: str | None
) -> None:
    with pytest.raises(WebhookForbidden) as raised:
        verify_challenge(mode, token, "1158201444", VERIFY_TOKEN)
    assert raised.value.status_code == 403


def test_challenge_without_a_configured_token_is_forbidden() -> None:
    with pytest.raises(WebhookForbidden):
        verify_challenge("subscribe", "", "1158201444", "")


def test_challenge_missing_is_invalid() -> None:
    with pytest.raises(WebhookInvalid):
        verify_challenge("subscribe", VERIFY_TOKEN, None, VERIFY_TOKEN)


# -- signature ---------------------------------------------------------------------------


BODY = json.dumps(webhook({"statuses": [status("delivered")]})).encode()


def test_good_signature_passes() -> None:
    verify_signature(BODY, signed(BODY), APP_SECRET)
    verify_signature(BODY, signed(BODY).upper().replace("SHA256=", "sha256="), APP_SECRET)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha1=" + hashlib.sha1(BODY).hexdigest(),
        signed(BODY).removeprefix("sha256="),
        "sha256=",
        "sha256=zz" + signed(BODY)[9:],
        signed(BODY)[:-2],
        signed(BODY, secret="another-app-secret"),
    ],
    ids=["missing", "empty", "sha1", "no-prefix", "no-digest", "not-hex", "short", "wrong-secret"],
)
def test_missing_malformed_or_wrong_signature_is_unauthorized(header: str | None) -> None:
    with pytest.raises(WebhookUnauthorized) as raised:
        verify_signature(BODY, header, APP_SECRET)
    assert raised.value.status_code == 401


def test_body_altered_after_signing_is_unauthorized() -> None:
    header = signed(BODY)
    altered = BODY.replace(b"delivered", b"read")

    with pytest.raises(WebhookUnauthorized, match="does not match"):
        verify_signature(altered, header, APP_SECRET)


def test_signature_without_an_app_secret_is_refused() -> None:
    with pytest.raises(WebhookUnauthorized):
        verify_signature(BODY, signed(BODY, secret=""), "")


# -- parsing -----------------------------------------------------------------------------


def test_delivered_and_read_statuses() -> None:
    events = parse_webhook(
        webhook({"statuses": [status("sent"), status("delivered"), status("read")]})
    )

    assert events.messages == []
    assert events.statuses == [
        StatusUpdate(provider_message_id=WAMID_OUT, status=MessageStatus.sent, at=AT),
        StatusUpdate(provider_message_id=WAMID_OUT, status=MessageStatus.delivered, at=AT),
        StatusUpdate(provider_message_id=WAMID_OUT, status=MessageStatus.read, at=AT),
    ]


def test_a_status_names_our_message_by_the_callback_data_it_was_sent_with() -> None:
    """How a message whose send answer was lost (in doubt) is still recognised."""
    events = parse_webhook(webhook({"statuses": [status("sent", biz_opaque_callback_data="our-id-1")]}))

    assert events.statuses == [
        StatusUpdate(provider_message_id=WAMID_OUT, status=MessageStatus.sent, at=AT, callback_data="our-id-1")
    ]


def test_failed_status_carries_the_reason_and_code() -> None:
    error = {
        "code": 131026,
        "title": "Message undeliverable",
        "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }

    [update] = parse_webhook(webhook({"statuses": [status("failed", errors=[error])]})).statuses

    assert update.status is MessageStatus.failed
    assert update.reason == "Message undeliverable: Message Undeliverable. (code 131026)"
    assert update.error_code == 131026
    assert "5511999990000" not in update.reason


def test_failed_status_without_errors_still_has_a_reason() -> None:
    [update] = parse_webhook(webhook({"statuses": [status("failed")]})).statuses

    assert update.status is MessageStatus.failed
    assert update.reason


def test_inbound_text_with_context_and_contact_name() -> None:
    events = parse_webhook(
        webhook(
            {
                "contacts": CONTACTS,
                "messages": [
                    inbound(
                        "text",
                        {"body": "Chego às 15h, pode ser?"},
                        context={"from": "15550783881", "id": WAMID_OUT},
                    )
                ],
            }
        )
    )

    assert events.statuses == []
    assert events.messages == [
        InboundWhatsApp(
            provider_message_id=WAMID_IN,
            sender="+5511999990000",
            body="Chego às 15h, pode ser?",
            at=AT,
            in_reply_to_provider_id=WAMID_OUT,
            name="Maria Oliveira",
        )
    ]


def test_inbound_without_context_or_contacts() -> None:
    [message] = parse_webhook(webhook({"messages": [inbound("text", {"body": "Olá"})]})).messages

    assert message.in_reply_to_provider_id is None
    assert message.name is None


@pytest.mark.parametrize(
    ("kind", "content", "body"),
    [
        ("image", {"mime_type": "image/jpeg", "sha256": "abc", "id": "1480"}, "[image]"),
        ("image", {"mime_type": "image/jpeg", "id": "1480", "caption": "Meu RG"}, "[image] Meu RG"),
        ("audio", {"mime_type": "audio/ogg; codecs=opus", "id": "1481", "voice": True}, "[audio]"),
        ("document", {"id": "1482", "filename": "passaporte.pdf"}, "[document] passaporte.pdf"),
        ("button", {"text": "Sim, quero", "payload": "ACCEPT_UPGRADE"}, "Sim, quero"),
        (
            "interactive",
            {"type": "button_reply", "button_reply": {"id": "late", "title": "Late checkout"}},
            "Late checkout",
        ),
        (
            "interactive",
            {
                "type": "list_reply",
                "list_reply": {"id": "eta-15", "title": "15h", "description": ""},
            },
            "15h",
        ),
        (
            "location",
            {"latitude": -22.97, "longitude": -43.18, "name": "Copacabana"},
            "[location] Copacabana",
        ),
        ("order", {"catalog_id": "1", "product_items": []}, "[order]"),
    ],
)
def test_non_text_inbound_becomes_a_readable_body(
    kind: str, content: dict[str, Any], body: str
) -> None:
    [message] = parse_webhook(webhook({"messages": [inbound(kind, content)]})).messages

    assert message.body == body


def test_button_reply_to_a_template_keeps_its_context() -> None:
    [message] = parse_webhook(
        webhook(
            {
                "messages": [
                    inbound(
                        "button",
                        {"text": "Sim", "payload": "YES"},
                        context={"from": "15550783881", "id": WAMID_OUT},
                    )
                ]
            }
        )
    ).messages

    assert message.in_reply_to_provider_id == WAMID_OUT


def test_reaction_refers_to_the_message_reacted_to() -> None:
    [message] = parse_webhook(
        webhook({"messages": [inbound("reaction", {"message_id": WAMID_OUT, "emoji": "👍"})]})
    ).messages

    assert message.body == "👍"
    assert message.in_reply_to_provider_id == WAMID_OUT


def test_statuses_and_messages_from_several_entries() -> None:
    payload = webhook(
        {"statuses": [status("read")]}, {"messages": [inbound("text", {"body": "Oi"})]}
    )
    payload["entry"].append(webhook({"statuses": [status("delivered")]})["entry"][0])

    events = parse_webhook(payload)

    assert [update.status for update in events.statuses] == [
        MessageStatus.read,
        MessageStatus.delivered,
    ]
    assert [message.body for message in events.messages] == ["Oi"]


def test_unfamiliar_change_field_is_ignored() -> None:
    payload = webhook(
        {"event": "APPROVED", "message_template_name": "checkin_invitation"},
        field="message_template_status_update",
    )

    events = parse_webhook(payload)

    assert events.statuses == [] and events.messages == []


@pytest.mark.parametrize(
    "value",
    [
        {"statuses": [status("deleted")]},
        {"statuses": [status("delivered", timestamp="soon")]},
        {"statuses": [{"status": "delivered", "timestamp": TS}]},
        {"statuses": "not a list"},
        {"statuses": [42, None]},
        {"messages": [{"id": WAMID_IN, "type": "text", "text": {"body": "no sender"}}]},
        {"messages": [inbound("text", {"body": "   "})]},
        {"messages": [inbound("system", {"body": "Maria changed her number"})]},
        {"messages": [inbound("reaction", {"message_id": WAMID_OUT, "emoji": ""})]},
        {"errors": [{"code": 131000, "title": "Something went wrong"}]},
    ],
)
def test_unfamiliar_items_are_skipped(value: dict[str, Any]) -> None:
    events = parse_webhook(webhook(value))

    assert events.statuses == [] and events.messages == []


def test_other_objects_and_odd_entries_are_ignored() -> None:
    assert parse_webhook({"object": "page", "entry": [{"changes": []}]}).statuses == []
    assert parse_webhook(
        {"entry": [None, {"changes": None}, {"changes": [{"field": "messages"}]}]}
    ) == (parse_webhook({"entry": []}))


@pytest.mark.parametrize(
    "payload",
    [None, [], "entry", 42, {}, {"object": "whatsapp_business_account"}, {"entry": {}}],
)
def test_invalid_payload_is_refused(payload: Any) -> None:
    with pytest.raises(WebhookInvalid) as raised:
        parse_webhook(payload)
    assert raised.value.status_code == 422
