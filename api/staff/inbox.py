"""The inbox in the staff pages' words: a conversation's row, its thread, and
what the reply form offers (pt-BR).

The conversations come from `services.conversations`; the response time of
each staff reply and each hotel's average from `communications.response_times`
(the one meaning of response time); the canned replies are the template
catalogue's templates that have a version for the conversation's channel and
need nothing staff must choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from api.staff import labels
from communications.message_store import MessageRecord
from communications.response_times import ResponseTime
from communications.staff_message import STAFF_KEYS
from communications.templates import TemplateInfo
from guest_journey.messages import MessageDirection
from guest_journey.reservations import Channel
from services.conversations import Conversation
from services.staff_messages import FREE_TEXT

EXCERPT = 140
ASSIGNEES = {"": "Qualquer pessoa", "me": "Comigo", "none": "Sem responsável"}
STATUSES = {"open": "Abertas", "done": "Concluídas", "all": "Todas"}


@dataclass(frozen=True)
class Row:
    """A conversation as the inbox lists it."""

    conversation: Conversation
    zone: ZoneInfo
    me: str
    now: datetime

    @property
    def c(self) -> Conversation:
        return self.conversation

    @property
    def href(self) -> str:
        return f"/inbox/{self.c.reservation_id}/{self.c.channel}"

    @property
    def guest(self) -> str:
        return self.c.guest_name or "Hóspede"

    @property
    def channel_label(self) -> str:
        return labels.label(labels.CHANNELS, self.c.channel)

    @property
    def stage_label(self) -> str:
        return labels.label(labels.STAGES, self.c.stage) if self.c.stage else "—"

    @property
    def last_text(self) -> str:
        text = " ".join(self.c.last_text.split())
        return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"

    @property
    def last_from(self) -> str:
        return "Hóspede" if self.c.last_direction == MessageDirection.inbound else "Equipe"

    @property
    def last_when(self) -> str:
        return labels.when(self.c.last_message_at, self.zone)

    @property
    def assignee_label(self) -> str:
        return assignee_label(self.c.assignee, self.me)

    @property
    def waiting(self) -> str:
        return waited(self.now - self.c.waiting_since) if self.c.waiting_since is not None else ""

    @property
    def target_seconds(self) -> int:
        return int(self.c.target.total_seconds())

    @property
    def target_label(self) -> str:
        return f"{labels.decimal(self.c.target.total_seconds() / 60, 0)} min"

    @property
    def overdue(self) -> bool:
        return self.c.overdue(self.now)


@dataclass(frozen=True)
class ThreadEntry:
    id: str
    direction: str
    who: str
    when: str
    at: datetime
    text: str
    status_label: str
    template_label: str | None
    response_minutes: float | None


@dataclass(frozen=True)
class Canned:
    template: str
    label: str


@dataclass(frozen=True)
class HotelResponse:
    hotel_id: str
    average: str
    replies: int
    target: str
    within_target: bool


def assignee_label(assignee: str | None, me: str) -> str:
    if assignee is None:
        return "Sem responsável"
    return "Você" if assignee == me else f"Outra pessoa da equipe ({assignee})"


def waited(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def thread_entries(
    messages: list[MessageRecord], response_minutes: dict[str, float], zone: ZoneInfo
) -> list[ThreadEntry]:
    return [
        ThreadEntry(
            id=record.id, direction=record.direction,
            who="Hóspede" if record.direction == MessageDirection.inbound else (
                "Equipe" if (record.step_key or "").startswith("manual:") else "Jornada (automática)"),
            when=labels.when(record.created_at, zone), at=record.created_at,
            text=(record.body_text or record.subject or "").strip(),
            status_label=labels.label(labels.MESSAGE_STATUSES, record.status),
            template_label=(labels.label(labels.TEMPLATES, record.template)
                            if record.template and record.template != FREE_TEXT else None),
            response_minutes=response_minutes.get(record.id),
        )
        for record in messages
    ]


def canned_replies(templates: list[TemplateInfo], channel: str) -> list[Canned]:
    """The catalogue's templates with a version for `channel` that need nothing from staff
    (free text is the form's own field; an offer needs its offer, chosen in the panel)."""
    staff_chosen = set(STAFF_KEYS) - {"journey_stage"}
    return sorted(
        (Canned(info.name, labels.label(labels.TEMPLATES, info.name)) for info in templates
         if info.name != FREE_TEXT and channel in info.channels and not staff_chosen & set(info.variables)),
        key=lambda canned: canned.label,
    )


def window_note(conversation: Conversation, now: datetime, zone: ZoneInfo) -> str | None:
    """Why free text cannot go on this conversation's channel now; None when it can."""
    if conversation.channel != Channel.whatsapp.value or conversation.window_open(now):
        return None
    if conversation.last_guest_message_at is None:
        return ("O hóspede ainda não escreveu pelo WhatsApp: fora da janela de 24 horas, o WhatsApp só aceita "
                "modelos aprovados. Escolha uma resposta pronta.")
    return (f"A janela de 24 horas do WhatsApp fechou (o hóspede escreveu pela última vez em "
            f"{labels.when(conversation.last_guest_message_at, zone)}): texto livre não pode ser enviado. "
            "Escolha uma resposta pronta; ela vai como modelo aprovado.")


def hotel_responses(figures: dict[str | None, ResponseTime], target_of: dict[str, timedelta]) -> list[HotelResponse]:
    rows = []
    for hotel, figure in sorted(figures.items(), key=lambda item: item[0] or ""):
        if hotel is None or figure.average_minutes is None:
            continue
        target = target_of[hotel]
        rows.append(HotelResponse(
            hotel_id=hotel, average=f"{labels.decimal(figure.average_minutes)} min", replies=figure.replies,
            target=f"≤ {labels.decimal(target.total_seconds() / 60, 0)} min",
            within_target=figure.average_minutes <= target.total_seconds() / 60,
        ))
    return rows
