"""What staff do from the panel: send (or resend) a message from a template,
send a message in doubt again, record a guest's reply, and answer in the web chat.

Each goes the way the runbook's API goes, through the same service: a
message is checked and sent through the journey
(`services.staff_messages.send_staff_message`: a `manual:` step, delivered
with retries, in the timeline); a guest's reply is received as every inbound
message is (`services.inbound_messages.receive_inbound`: stored, with
`in_reply_to` for the SLA, counted, and signalled to the journey). Every form
carries a `request_id`, so a double submit sends once (the workflow remembers
the request) and records once (the reply's idempotency key).

Bad input raises `FormError`, naming the field and saying, in the panel's
language, what to fix.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from temporalio.client import Client

from api.deps import Services
from api.staff.session import CSRF_FIELD
from communications.inbound import InboundResult
from communications.message_store import MessageRecord
from communications.staff_message import Problem
from guest_journey.database import utcnow
from guest_journey.reservations import Channel
from services.errors import InvalidRequest
from services.inbound_messages import receive_inbound
from services.journey_service import send_message_again
from services.staff_messages import StaffMessageRefused, send_staff_message

TEXT_LIMIT = 4000
SENDER_LIMIT = 320
# The send form's own fields: every other field it carries is a value for the template.
SEND_FORM_FIELDS = frozenset({CSRF_FIELD, "reservation_id", "action", "request_id", "template", "channel",
                              "in_reply_to"})
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
APPEAR_WITHIN = 3.0


class FormError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PanelForm:
    """The submitted form, values stripped; '' when absent."""

    data: FormData

    def get(self, name: str) -> str:
        value = self.data.get(name)
        return value.strip() if isinstance(value, str) else ""

    def request_id(self) -> str:
        sent = self.get("request_id")
        return sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex

    def message_ref(self, name: str) -> str | None:
        value = self.get(name)
        if not value:
            return None
        if not _MESSAGE_ID.match(value):
            raise FormError(name, "escolha uma mensagem da lista")
        return value

    def channel(self, name: str, *, required: bool) -> Channel | None:
        value = self.get(name)
        if not value:
            if required:
                raise FormError(name, "escolha o canal")
            return None
        try:
            return Channel(value)
        except ValueError:
            raise FormError(name, "canal desconhecido") from None

    def text(self, name: str, limit: int = TEXT_LIMIT, *, what: str = "o texto") -> str:
        value = self.get(name)
        if not value:
            raise FormError(name, f"escreva {what}")
        if len(value) > limit:
            raise FormError(name, f"no máximo {limit} caracteres ({len(value)} enviados)")
        return value


def new_request_id() -> str:
    return uuid.uuid4().hex


async def send_message(
    *, services: Services, client: Client, reservation_id: str, form: PanelForm
) -> str:
    """Send (or resend) a message from a template through the journey; its message id.
    The form's fields other than its own (`SEND_FORM_FIELDS`) are the template's
    context, checked as the API checks it (`send_staff_message`)."""
    context = {name: form.get(name) for name in form.data if name not in SEND_FORM_FIELDS}
    return await _send(services=services, client=client, reservation_id=reservation_id,
                       template=form.get("template"), channel=form.channel("channel", required=False),
                       context=context, form=form, fields={"body": "body"})


async def answer_in_chat(
    *, services: Services, client: Client, reservation_id: str, form: PanelForm
) -> str:
    """A free text to the guest's web chat (the guest page shows it without a reload)."""
    return await _send(services=services, client=client, reservation_id=reservation_id,
                       template="free_text", channel=Channel.webchat, context={"body": form.get("chat_body")},
                       form=form, fields={"template": "chat_body", "channel": "chat_body", "body": "chat_body",
                                          "in_reply_to": "chat_in_reply_to"})


async def send_again(
    *, services: Services, client: Client, reservation_id: str, form: PanelForm
) -> str:
    """Send a message in doubt (`message_id`) of the reservation again: its step goes out
    once more, on the same channel, with the same message id; the message id."""
    message_id = form.message_ref("message_id")
    if message_id is None:
        raise FormError("action", "formulário incompleto: recarregue a página e escolha a mensagem em dúvida")
    async with services.sessions() as session:
        try:
            message = await send_message_again(client=client, session=session, message_id=message_id,
                                               request_id=form.request_id(), reservation_id=reservation_id)
        except InvalidRequest as error:  # the step is in doubt no more, or being sent again already
            raise FormError("action", f"nada a enviar novamente: {error.detail}") from error
    return message.id


async def _send(
    *,
    services: Services,
    client: Client,
    reservation_id: str,
    template: str,
    channel: Channel | None,
    context: dict[str, Any],
    form: PanelForm,
    fields: dict[str, str],
) -> str:
    """`fields`: the form's field for a checked one (`template`, `channel`, `in_reply_to`, a context key)."""
    async with services.sessions() as session:
        try:
            message_id = await send_staff_message(
                session=session, client=client, catalogue=services.templates, reservation_id=reservation_id,
                request_id=form.request_id(), template=template, channel=channel, context=context,
                in_reply_to=form.get(fields.get("in_reply_to", "in_reply_to")),
            )
        except StaffMessageRefused as error:
            raise _form_error(error, template, fields) from error
    await wait_until_stored(services, message_id)
    return message_id


def _form_error(error: StaffMessageRefused, template: str, fields: dict[str, str]) -> FormError:
    """The panel's words for what `send_staff_message` refused, on the form's field."""
    field = fields.get(error.key, error.key)
    match error.problem:
        case Problem.unknown_template:
            return FormError(field, "escolha um modelo da lista")
        case Problem.no_channel_version:
            return FormError(field, f"o modelo {template} não tem versão para este canal")
        case Problem.journey_key:
            return FormError(field, f"{error.key}: a jornada preenche este valor a partir da reserva; "
                                    "não pode ser enviado")
        case Problem.unknown_key:
            return FormError(field, f"{error.key}: campo desconhecido neste formulário")
        case Problem.missing_value if error.key == "body":
            return FormError(field, "escreva a mensagem")
        case Problem.missing_value if error.key == "upsell_offer":
            return FormError(field, "escolha a oferta que a mensagem apresenta")
        case Problem.invalid_value if error.field == "in_reply_to":
            return FormError(field, "escolha uma mensagem da lista")
        case Problem.invalid_value if error.key == "body":
            return FormError(field, f"no máximo {TEXT_LIMIT} caracteres")
    return FormError(field, f"valor inválido: {error.reason}")


async def wait_until_stored(services: Services, message_id: str, within: float = APPEAR_WITHIN) -> bool:
    """Wait a moment for the worker to store the message, so the page shows it at once
    (the timeline shows it as queued until then)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        async with services.sessions() as session:
            if await session.get(MessageRecord, message_id) is not None:
                return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.1)


async def record_guest_reply(
    *, services: Services, client: Client, reservation_id: str, form: PanelForm,
    hotels: Collection[str] | None = None,
) -> InboundResult:
    """Store what the guest wrote (told by phone, at the desk, in another inbox) as an
    inbound message of the reservation; with `in_reply_to`, its response time counts."""
    channel = form.channel("reply_channel", required=True)
    assert channel is not None
    sender = form.text("sender", SENDER_LIMIT, what="o contato do hóspede")
    body = form.text("reply_body", what="o que o hóspede escreveu")
    in_reply_to = form.message_ref("reply_in_reply_to")
    async with services.sessions() as session:
        return await receive_inbound(
            session=session, client=client, channel=channel, sender=sender, body=body, received_at=utcnow(),
            in_reply_to=in_reply_to, reservation_id=reservation_id,
            provider_message_id=f"panel:{form.request_id()}", hotels=hotels,
        )
