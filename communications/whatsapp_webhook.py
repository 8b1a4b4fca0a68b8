"""WhatsApp Cloud API webhooks, as pure functions for the `/webhooks/whatsapp` routes.

    GET  -> verify_challenge(hub.mode, hub.verify_token, hub.challenge, verify_token)
    POST -> verify_signature(raw_body, X-Hub-Signature-256, app_secret)
            parse_webhook(json.loads(raw_body)) -> WebhookEvents(statuses, messages)

Each failure is a `WebhookError` whose `status_code` is the HTTP answer to give.
Parsing follows Meta's payload (`object` / `entry[]` / `changes[]` / `value`) and
skips whatever it does not recognise: Meta adds fields and types over time, and a
webhook that answers an error is retried and eventually disabled.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from guest_journey.messages import MessageStatus

SIGNATURE_HEADER = "X-Hub-Signature-256"
SUBSCRIBE_MODE = "subscribe"
WHATSAPP_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"

_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_STATUSES = {
    "sent": MessageStatus.sent,
    "delivered": MessageStatus.delivered,
    "read": MessageStatus.read,
    "failed": MessageStatus.failed,
}
_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
_IGNORED_MESSAGE_TYPES = frozenset({"system", "ephemeral"})


class WebhookError(Exception):
    """A webhook request to refuse; `status_code` is the answer, `str(error)` the detail."""

    status_code = 400


class WebhookUnauthorized(WebhookError):
    status_code = 401


class WebhookForbidden(WebhookError):
    status_code = 403


class WebhookInvalid(WebhookError):
    status_code = 422


class StatusUpdate(BaseModel):
    """What happened to a message we sent; `provider_message_id` is its `wamid`."""

    provider_message_id: str
    status: MessageStatus
    at: AwareDatetime
    reason: str | None = None
    error_code: int | None = None
    callback_data: str | None = None  # `biz_opaque_callback_data`: our message id, as we sent it


class InboundWhatsApp(BaseModel):
    """A guest's message; `in_reply_to_provider_id` is the `wamid` it quotes or answers."""

    provider_message_id: str
    sender: str
    body: str
    at: AwareDatetime
    in_reply_to_provider_id: str | None = None
    name: str | None = None


class WebhookEvents(BaseModel):
    statuses: list[StatusUpdate] = Field(default_factory=list)
    messages: list[InboundWhatsApp] = Field(default_factory=list)


def verify_challenge(
    mode: str | None, token: str | None, challenge: str | None, expected_token: str
) -> str:
    """Meta's subscription check: answer `hub.challenge` when `hub.verify_token` is ours."""
    if not expected_token:
        raise WebhookForbidden("WhatsApp webhook verification is not configured")
    token_matches = hmac.compare_digest(
        (token or "").encode("utf-8"), expected_token.encode("utf-8")
    )
    if mode != SUBSCRIBE_MODE or not token_matches:
        raise WebhookForbidden("hub.mode or hub.verify_token does not match")
    if not challenge:
        raise WebhookInvalid("hub.challenge is missing")
    return challenge


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> None:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`."""
    if not app_secret:
        raise WebhookUnauthorized("WhatsApp webhook signature cannot be checked: no app secret")
    if not header:
        raise WebhookUnauthorized(f"{SIGNATURE_HEADER} header is missing")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise WebhookUnauthorized(f"{SIGNATURE_HEADER} is not 'sha256=<64 hex digits>'")
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(match.group(1).lower().encode("ascii"), expected.encode("ascii")):
        raise WebhookUnauthorized(f"{SIGNATURE_HEADER} does not match the body")


def parse_webhook(payload: Any) -> WebhookEvents:
    """The status updates and inbound messages of one webhook call, in payload order."""
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        raise WebhookInvalid("a WhatsApp webhook is a JSON object with an 'entry' list")
    events = WebhookEvents()
    if payload.get("object", WHATSAPP_OBJECT) != WHATSAPP_OBJECT:
        return events
    for value in _message_values(payload["entry"]):
        contacts = _dicts(value.get("contacts"))
        for raw in _dicts(value.get("statuses")):
            status = _status(raw)
            if status is not None:
                events.statuses.append(status)
        for raw in _dicts(value.get("messages")):
            message = _inbound(raw, contacts)
            if message is not None:
                events.messages.append(message)
    return events


def _message_values(entries: list[Any]) -> list[dict[str, Any]]:
    values = []
    for entry in _dicts(entries):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if change.get("field") == MESSAGES_FIELD and isinstance(value, dict):
                values.append(value)
    return values


def _status(raw: dict[str, Any]) -> StatusUpdate | None:
    wamid = _text(raw.get("id"))
    status = _STATUSES.get(_text(raw.get("status")) or "")
    at = _timestamp(raw.get("timestamp"))
    if wamid is None or status is None or at is None:
        return None
    errors = _dicts(raw.get("errors"))
    reason, code = _error_reason(errors[0]) if errors else (None, None)
    if status is MessageStatus.failed and reason is None:
        reason = "WhatsApp reported the message as failed without a reason"
    return StatusUpdate(
        provider_message_id=wamid,
        status=status,
        at=at,
        reason=reason,
        error_code=code,
        callback_data=_text(raw.get("biz_opaque_callback_data")),
    )


def _error_reason(error: dict[str, Any]) -> tuple[str, int | None]:
    """`Message undeliverable: <details> (code 131026)`, without the recipient's number."""
    code = error.get("code") if isinstance(error.get("code"), int) else None
    title = _text(error.get("title")) or _text(error.get("message"))
    data = error.get("error_data")
    details = _text(data.get("details")) if isinstance(data, dict) else None
    reason = title or "WhatsApp reported an error"
    if details and details != title:
        reason = f"{reason}: {details}"
    if code is not None:
        reason = f"{reason} (code {code})"
    return reason, code


def _inbound(raw: dict[str, Any], contacts: list[dict[str, Any]]) -> InboundWhatsApp | None:
    wamid = _text(raw.get("id"))
    sender = _text(raw.get("from"))
    at = _timestamp(raw.get("timestamp"))
    kind = _text(raw.get("type"))
    if wamid is None or sender is None or at is None or kind is None:
        return None
    if kind in _IGNORED_MESSAGE_TYPES:
        return None
    body = _body(kind, raw)
    if body is None:
        return None
    context = raw.get("context")
    in_reply_to = _text(context.get("id")) if isinstance(context, dict) else None
    if kind == "reaction" and isinstance(raw.get("reaction"), dict):
        in_reply_to = in_reply_to or _text(raw["reaction"].get("message_id"))
    digits = re.sub(r"\D", "", sender)
    if not digits:
        return None
    return InboundWhatsApp(
        provider_message_id=wamid,
        sender=f"+{digits}",
        body=body,
        at=at,
        in_reply_to_provider_id=in_reply_to,
        name=_contact_name(contacts, sender),
    )


def _body(kind: str, raw: dict[str, Any]) -> str | None:
    """The words staff see: the text, a button's label, or `[image] caption` for media."""
    content = raw.get(kind)
    content = content if isinstance(content, dict) else {}
    if kind == "text":
        return _text(content.get("body"))
    if kind in _MEDIA_TYPES:
        caption = _text(content.get("caption")) or _text(content.get("filename"))
        return f"[{kind}] {caption}" if caption else f"[{kind}]"
    if kind == "button":
        return _text(content.get("text")) or _text(content.get("payload")) or "[button]"
    if kind == "interactive":
        for reply in ("button_reply", "list_reply"):
            answer = content.get(reply)
            if isinstance(answer, dict) and _text(answer.get("title")):
                return _text(answer.get("title"))
        return "[interactive]"
    if kind == "reaction":
        return _text(content.get("emoji"))  # an empty emoji: a reaction removed
    if kind == "location":
        place = ", ".join(
            part for part in (_text(content.get("name")), _text(content.get("address"))) if part
        )
        return f"[location] {place}" if place else "[location]"
    return f"[{kind}]"


def _contact_name(contacts: list[dict[str, Any]], sender: str) -> str | None:
    chosen = next((c for c in contacts if c.get("wa_id") == sender), None)
    if chosen is None and contacts:
        chosen = contacts[0]
    profile = chosen.get("profile") if chosen is not None else None
    return _text(profile.get("name")) if isinstance(profile, dict) else None


def _timestamp(value: Any) -> datetime | None:
    """Meta's timestamps are unix seconds, as a string."""
    if isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
