"""The WhatsApp channel: the Cloud API's `POST /{phone_number_id}/messages`.

WhatsApp lets a business send free text only inside the 24-hour customer-service
window (the guest wrote to us within the last 24 hours); outside it, only an
approved template. The journey knows when the guest last wrote and says so in
`Outgoing.window_open` (a caller may also pass `window_open=` explicitly):

    await sender.send(outgoing)   # window open: free text; closed: the template

Our template names double as the approved WhatsApp template names; the language
code is the guest's (`pt-BR` -> `pt_BR`), and the body parameters are the guest's
name followed by any `template_parameters`. When WhatsApp answers free text with
131047 (the window has closed after all), the message is sent again at once as
the template.

Failures follow Meta's error codes: rate limits and outages are
`TransientDeliveryError`, everything retrying cannot fix is
`PermanentDeliveryError`. A request that reached Meta but whose answer did not
reach us (a read timeout, a dropped connection, a 5xx without a Graph error, a
success without a message id) is `InDoubtDeliveryError`: Meta may have taken it.
Every message carries our message id in `biz_opaque_callback_data`, which Meta
echoes in its status webhooks, so such a message is recognised when its status
arrives. Neither the access token nor the guest's number ever appears in a
reason or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from typing import Any

import httpx

from communications.channels.base import (
    Delivery,
    DeliveryError,
    InDoubtDeliveryError,
    Outgoing,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from guest_journey.messages import MessageStatus
from guest_journey.reservations import Channel

logger = logging.getLogger(__name__)

WHATSAPP_TIMEOUT_SECONDS = 15.0
ACCESS_TOKEN_SETTING = "GUEST_JOURNEY_WHATSAPP_ACCESS_TOKEN"

# Meta's error codes (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
RATE_LIMIT_HIT = 130429
SPAM_RATE_LIMIT_HIT = 131048
PAIR_RATE_LIMIT_HIT = 131056
SOMETHING_WENT_WRONG = 131000
SERVICE_UNAVAILABLE = 131016
API_TOO_MANY_CALLS = 4
WABA_RATE_LIMIT = 80007
MESSAGE_UNDELIVERABLE = 131026
POLICY_BLOCKED = 368
RE_ENGAGEMENT_REQUIRED = 131047
TEMPLATE_PARAMETERS_INVALID = 132000
TEMPLATE_MISSING = 132001
INVALID_PARAMETER = 100
ACCESS_TOKEN_INVALID = 190

RETRYABLE_CODES = frozenset(
    {
        RATE_LIMIT_HIT,
        SPAM_RATE_LIMIT_HIT,
        PAIR_RATE_LIMIT_HIT,
        SOMETHING_WENT_WRONG,
        SERVICE_UNAVAILABLE,
        API_TOO_MANY_CALLS,
        WABA_RATE_LIMIT,
    }
)
PERMANENT_MEANINGS = {
    MESSAGE_UNDELIVERABLE: "message undeliverable: the number is not a WhatsApp user",
    POLICY_BLOCKED: "the business account is temporarily blocked for policy violations",
    RE_ENGAGEMENT_REQUIRED: "more than 24 hours since the guest last wrote: only a template may be sent",
    TEMPLATE_PARAMETERS_INVALID: "the template's parameters do not match the approved template",
    TEMPLATE_MISSING: "the template is not approved in this language",
    INVALID_PARAMETER: "WhatsApp rejected a parameter of the request",
}

_DEADLINE_MARGIN_SECONDS = 1.0  # httpx's own timeouts fire first and say which phase failed
_NOT_DIGITS = re.compile(r"\D")
_SPACES = re.compile(r"\s+")
_REDACTED = "[redacted]"


class WhatsAppSender:
    channel = Channel.whatsapp
    retry_is_safe = False
    reports_status = True  # status webhooks, matched by wamid or biz_opaque_callback_data

    def __init__(
        self,
        phone_number_id: str,
        access_token: str,
        api_base_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout: float = WHATSAPP_TIMEOUT_SECONDS,
    ) -> None:
        if not phone_number_id or not access_token:
            raise ValueError(
                "the WhatsApp channel needs GUEST_JOURNEY_WHATSAPP_PHONE_NUMBER_ID "
                f"and {ACCESS_TOKEN_SETTING}"
            )
        self.phone_number_id = phone_number_id
        self.api_base_url = api_base_url.rstrip("/")
        self.timeout = timeout
        self._access_token = access_token
        self._client = client
        self._owns_client = client is None

    @property
    def longest_send(self) -> timedelta:
        """Free text refused for the closed window, then the template: two requests."""
        return 2 * timedelta(seconds=self.timeout + _DEADLINE_MARGIN_SECONDS)

    @property
    def messages_url(self) -> str:
        return f"{self.api_base_url}/{self.phone_number_id}/messages"

    async def aclose(self) -> None:
        """Close the HTTP client this sender made for itself (an injected one is the caller's)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> WhatsAppSender:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def send(
        self,
        outgoing: Outgoing,
        *,
        window_open: bool | None = None,
        template_parameters: list[str] | None = None,
    ) -> Delivery:
        """Send free text when the window is open (the guest wrote within 24 h), else the template."""
        if window_open is None:
            window_open = outgoing.window_open
        to = _wa_number(outgoing.recipient)
        template = template_message(outgoing, to, template_parameters)
        if not window_open:
            return await self._post(outgoing, template, to)
        try:
            return await self._post(outgoing, text_message(outgoing, to), to)
        except _Rejected as rejected:
            if rejected.code != RE_ENGAGEMENT_REQUIRED:
                raise
            logger.info(
                "whatsapp %s: the 24-hour window has closed, sending template %s instead",
                outgoing.message_id,
                outgoing.rendered.template,
            )
        delivery = await self._post(outgoing, template, to)
        return delivery.model_copy(
            update={
                "note": "the 24-hour window had closed: sent as template "
                f"{outgoing.rendered.template!r} instead of free text"
            }
        )

    async def _post(self, outgoing: Outgoing, body: dict[str, Any], to: str) -> Delivery:
        kind = body["type"]
        try:
            async with asyncio.timeout(self.timeout + _DEADLINE_MARGIN_SECONDS):
                response = await self._http().post(
                    self.messages_url,
                    json=body,
                    headers={"Authorization": f"Bearer {self._access_token}"},
                    timeout=self.timeout,
                )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
                httpx.WriteTimeout) as error:  # the request never reached Meta whole
            failure: DeliveryError = TransientDeliveryError(
                f"WhatsApp Cloud API unreachable at {self.api_base_url}: "
                f"{self._scrub(str(error), to) or type(error).__name__}"
            )
            self._log_failure(outgoing, kind, failure, None)
            raise failure from error
        except (httpx.TimeoutException, TimeoutError) as error:
            failure = InDoubtDeliveryError(
                f"WhatsApp Cloud API took the request but did not answer within {self.timeout:g}s "
                f"({type(error).__name__}): it may have been sent"
            )
            self._log_failure(outgoing, kind, failure, None)
            raise failure from error
        except (httpx.ReadError, httpx.RemoteProtocolError) as error:
            failure = InDoubtDeliveryError(
                f"WhatsApp Cloud API dropped the connection before answering "
                f"({type(error).__name__}): it may have been sent"
            )
            self._log_failure(outgoing, kind, failure, None)
            raise failure from error
        except httpx.TransportError as error:
            failure = TransientDeliveryError(
                f"WhatsApp Cloud API unreachable at {self.api_base_url}: "
                f"{self._scrub(str(error), to) or type(error).__name__}"
            )
            self._log_failure(outgoing, kind, failure, None)
            raise failure from error

        if response.is_success:
            return self._delivered(outgoing, kind, response)
        failure = self._failure(response, to)
        self._log_failure(outgoing, kind, failure, getattr(failure, "code", None))
        raise failure

    def _delivered(self, outgoing: Outgoing, kind: str, response: httpx.Response) -> Delivery:
        wamid = _message_id(_json(response))
        if wamid is None:
            failure = InDoubtDeliveryError(
                f"WhatsApp Cloud API answered HTTP {response.status_code} without a message id: "
                "it may have been sent"
            )
            self._log_failure(outgoing, kind, failure, None)
            raise failure
        logger.info("whatsapp %s sent as %s (%s)", outgoing.message_id, kind, wamid)
        return Delivery(status=MessageStatus.sent, provider_message_id=wamid)

    def _failure(self, response: httpx.Response, to: str) -> DeliveryError:
        """Meta's `{"error": {...}}` turned into the reason staff see, retryable or not."""
        status = response.status_code
        error = _json(response).get("error")
        error = error if isinstance(error, dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        answer = self._scrub(_describe(error, status), to)

        if code == ACCESS_TOKEN_INVALID:
            return _Rejected(
                f"WhatsApp access token rejected: check {ACCESS_TOKEN_SETTING} ({answer})", code
            )
        if status == 429 or code in RETRYABLE_CODES or (status >= 500 and code is not None):
            return _Deferred(f"WhatsApp Cloud API is busy or unavailable: {answer}", code)
        if status >= 500:  # a gateway's answer, not Meta's: the request may have gone through
            return InDoubtDeliveryError(
                f"WhatsApp Cloud API answered HTTP {status} without a Graph API error: "
                f"it may have been sent ({answer})"
            )
        meaning = PERMANENT_MEANINGS.get(code) if code is not None else None
        if meaning is not None:
            return _Rejected(f"WhatsApp: {meaning} ({answer})", code)
        return _Rejected(f"WhatsApp rejected the message: {answer}", code)

    def _scrub(self, text: str, to: str) -> str:
        """Meta's words, minus anything that is a secret or the guest's number."""
        for secret in (self._access_token, f"+{to}", to):
            if secret:
                text = text.replace(secret, _REDACTED)
        return text

    def _log_failure(
        self, outgoing: Outgoing, kind: str, failure: DeliveryError, code: int | None
    ) -> None:
        logger.warning(
            "whatsapp %s (%s) not sent: %s%s",
            outgoing.message_id,
            kind,
            type(failure).__name__,
            f" code {code}" if code is not None else "",
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client


class _Rejected(PermanentDeliveryError):
    def __init__(self, reason: str, code: int | None) -> None:
        super().__init__(reason)
        self.code = code


class _Deferred(TransientDeliveryError):
    def __init__(self, reason: str, code: int | None) -> None:
        super().__init__(reason)
        self.code = code


def text_message(outgoing: Outgoing, to: str) -> dict[str, Any]:
    """Free text: only valid inside the 24-hour customer-service window."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": True, "body": outgoing.rendered.text},
        "biz_opaque_callback_data": outgoing.message_id,
    }


def template_message(
    outgoing: Outgoing, to: str, extra_parameters: list[str] | None = None
) -> dict[str, Any]:
    """An approved template named like ours; body parameters: the guest's name, then the extras."""
    parameters = [outgoing.guest_name, *(extra_parameters or [])]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": outgoing.rendered.template,
            "language": {"code": whatsapp_language(outgoing.rendered.language)},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": _parameter(value)} for value in parameters
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": outgoing.message_id,
    }


def whatsapp_language(language: str) -> str:
    """BCP 47 (`pt-BR`) to WhatsApp's template language code (`pt_BR`)."""
    return language.replace("-", "_")


def _wa_number(recipient: str) -> str:
    """`+55 11 99999-0000` -> `5511999990000`: the Cloud API's `to`."""
    digits = _NOT_DIGITS.sub("", recipient)
    if not 8 <= len(digits) <= 15:
        raise PermanentDeliveryError(
            "the guest's phone number is not an E.164 number such as +5511999990000"
        )
    return digits


def _parameter(value: str) -> str:
    """Template parameters may not hold new lines, tabs or runs of spaces."""
    return _SPACES.sub(" ", value).strip()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message_id(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        if isinstance(wamid, str) and wamid:
            return wamid
    return None


def _describe(error: dict[str, Any], status: int) -> str:
    """`Message undeliverable: <details> (code 131026, HTTP 400, fbtrace_id A1b2)`."""
    message = error.get("message") if isinstance(error.get("message"), str) else None
    data = error.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    text = message or "no error message"
    if isinstance(details, str) and details and details != message:
        text = f"{text}: {details}"
    facts = []
    if error.get("code") is not None:
        facts.append(f"code {error['code']}")
    if error.get("error_subcode") is not None:
        facts.append(f"subcode {error['error_subcode']}")
    facts.append(f"HTTP {status}")
    if isinstance(error.get("fbtrace_id"), str):
        facts.append(f"fbtrace_id {error['fbtrace_id']}")
    return f"{text} ({', '.join(facts)})"
