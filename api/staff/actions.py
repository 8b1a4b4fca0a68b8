"""What staff do from the panel: send (or resend) a message from a template,
record a guest's reply, and answer in the web chat.

Each goes the way the runbook's API goes: a message is sent through the
journey (`GuestJourneyWorkflow.send_message`: a `manual:` step, delivered
with retries, in the timeline); a guest's reply is stored as an inbound
message (`communications.inbound.store_inbound`, with `in_reply_to` for the
SLA) and signalled to the journey. Every form carries a `request_id`, so a
double submit sends once (the workflow remembers the request) and records
once (the reply's idempotency key).

Bad input raises `FormError`, naming the field and saying, in the panel's
language, what to fix.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from temporalio.client import Client

from api.deps import Services
from api.errors import journey_not_found
from api.journey_service import update_journey
from api.routes.inbound import notify_journey
from communications.inbound import InboundResult, UnknownReservation, store_inbound
from communications.message_store import MessageRecord
from communications.templates import TemplateInfo
from guest_journey.database import utcnow
from guest_journey.reservations import Channel
from workflows.journey import GuestJourneyWorkflow
from workflows.journey_inputs import ManualMessage

TEXT_LIMIT = 4000
SENDER_LIMIT = 320
OFFER_TEMPLATES = frozenset({"upsell_offer", "upsell_follow_up"})
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
    """Send (or resend) a message from a template through the journey; its message id."""
    template = form.get("template")
    known = {info.name: info for info in services.templates.describe()}
    info = known.get(template)
    if info is None:
        raise FormError("template", "escolha um modelo da lista")
    channel = form.channel("channel", required=False)
    if channel is not None and channel.value not in info.channels:
        raise FormError("channel", f"o modelo {template} não tem versão para {channel.value}")
    return await _send(services=services, client=client, reservation_id=reservation_id, info=info,
                       channel=channel, form=form, body_field="body")


async def answer_in_chat(
    *, services: Services, client: Client, reservation_id: str, form: PanelForm
) -> str:
    """A free text to the guest's web chat (the guest page shows it without a reload)."""
    info = next((info for info in services.templates.describe() if info.name == "free_text"), None)
    if info is None or Channel.webchat.value not in info.channels:
        raise FormError("chat_body", "não há modelo de texto livre para o chat")
    return await _send(services=services, client=client, reservation_id=reservation_id, info=info,
                       channel=Channel.webchat, form=form, body_field="chat_body", reply_field="chat_in_reply_to")


async def _send(
    *,
    services: Services,
    client: Client,
    reservation_id: str,
    info: TemplateInfo,
    channel: Channel | None,
    form: PanelForm,
    body_field: str,
    reply_field: str = "in_reply_to",
) -> str:
    context: dict[str, Any] = {}
    if info.name == "free_text":
        context["body"] = form.text(body_field, what="a mensagem")
    if info.name in OFFER_TEMPLATES:
        offer = form.get("upsell_offer")
        if not offer:
            raise FormError("upsell_offer", "escolha a oferta que a mensagem apresenta")
        context["upsell_offer"] = offer
    message = ManualMessage(
        request_id=form.request_id(), template=info.name, channel=channel,
        in_reply_to=form.message_ref(reply_field), context=context,
    )
    async with services.sessions() as session:
        ack = await update_journey(client=client, session=session, reservation_id=reservation_id,
                                   update=GuestJourneyWorkflow.send_message, argument=message)
    assert ack.message_id is not None
    await wait_until_stored(services, ack.message_id)
    return ack.message_id


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
    *, services: Services, client: Client, reservation_id: str, form: PanelForm
) -> InboundResult:
    """Store what the guest wrote (told by phone, at the desk, in another inbox) as an
    inbound message of the reservation; with `in_reply_to`, its response time counts."""
    channel = form.channel("reply_channel", required=True)
    assert channel is not None
    sender = form.text("sender", SENDER_LIMIT, what="o contato do hóspede")
    body = form.text("reply_body", what="o que o hóspede escreveu")
    in_reply_to = form.message_ref("reply_in_reply_to")
    async with services.sessions() as session:
        try:
            result = await store_inbound(
                session=session, channel=channel, sender=sender, body=body, received_at=utcnow(),
                in_reply_to=in_reply_to, reservation_id=reservation_id,
                provider_message_id=f"panel:{form.request_id()}",
            )
        except UnknownReservation as error:
            raise journey_not_found(error.reservation_id) from error
    await notify_journey(client, result)
    return result
