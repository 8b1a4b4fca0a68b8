"""The operations panel's view of one journey: what `panel.html` shows.

The journey comes from `services.journey_service.read_journey` (the workflow
while it runs, the read model once it has finished), the messages from the
message store, both directions, oldest first. A message staff asked for
whose delivery has not started yet (its `manual:` step is planned) is shown
as queued, so it is in the timeline as soon as the journey took it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from api.staff import labels
from communications.message_store import MessageRecord
from communications.templates import TemplateInfo
from guest_journey.journeys import JourneyView, Step, StepKind, StepStatus
from guest_journey.messages import MessageDirection, MessageStatus
from guest_journey.policy import HotelPolicy
from guest_journey.reservations import Channel
from guest_journey.settings import Settings

OFFER_TEMPLATES = frozenset({"upsell_offer", "upsell_follow_up"})
EXCERPT = 240
OPEN_STEPS = (StepStatus.planned, StepStatus.due)
HANDING_OVER = frozenset({MessageStatus.queued, MessageStatus.sending})


@dataclass(frozen=True)
class Resend:
    template: str
    channel: str
    offer: str | None = None


@dataclass
class TimelineEntry:
    id: str
    direction: str
    channel: str
    template: str | None
    status: str
    created_at: datetime
    when: str
    text: str = ""
    subject: str | None = None
    reason: str | None = None
    in_reply_to: str | None = None
    in_reply_to_label: str | None = None
    response_minutes: float | None = None  # a staff reply's response time (communications.response_times)
    step_key: str | None = None
    pending: bool = False
    handed_over: bool = True
    resend: Resend | None = None

    @property
    def direction_label(self) -> str:
        return labels.label(labels.DIRECTIONS, self.direction)

    @property
    def channel_label(self) -> str:
        return labels.label(labels.CHANNELS, self.channel)

    @property
    def template_label(self) -> str:
        if self.template is None:
            return "Mensagem do hóspede" if self.direction == MessageDirection.inbound else "—"
        return labels.label(labels.TEMPLATES, self.template)

    @property
    def status_label(self) -> str:
        return labels.label(labels.MESSAGE_STATUSES, self.status)

    @property
    def in_doubt(self) -> bool:
        """Its channel may or may not have it: staff may send it again (same id, once)."""
        return self.status == MessageStatus.in_doubt and self.step_key is not None

    @property
    def excerpt(self) -> str:
        return self.text if len(self.text) <= EXCERPT else self.text[: EXCERPT - 1] + "…"

    @property
    def long(self) -> bool:
        return len(self.text) > EXCERPT


@dataclass(frozen=True)
class StepRow:
    key: str
    label: str
    status: str
    status_label: str
    due: str
    done: str
    channel: str
    reason: str | None


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass
class PanelJourney:
    view: JourneyView
    zone: ZoneInfo
    timeline: list[TimelineEntry]
    steps: list[StepRow]
    temporal_url: str
    templates: list[TemplateInfo]
    offers: list[Choice]
    send_channels: list[Choice]
    guest_messages: list[Choice]
    our_messages: list[Choice]
    sender: str

    @property
    def pending(self) -> bool:
        """A message is still on its way to its channel (the page refreshes its timeline)."""
        return any(entry.pending or not entry.handed_over for entry in self.timeline)

    @property
    def stage_label(self) -> str:
        return labels.label(labels.STAGES, self.view.stage.value)

    def when(self, moment: datetime | None) -> str:
        return labels.when(moment, self.zone)

    @property
    def last_webchat_message(self) -> str | None:
        found = [entry.id for entry in self.timeline
                 if entry.direction == MessageDirection.inbound and entry.channel == Channel.webchat]
        return found[-1] if found else None


def temporal_url(settings: Settings, workflow_id: str) -> str:
    """The journey's workflow in the Temporal Web UI."""
    return (
        f"{settings.resolved_temporal_ui_url}"
        f"/namespaces/{quote(settings.temporal_namespace, safe='')}/workflows/{quote(workflow_id, safe='')}"
    )


def build_panel(
    *,
    view: JourneyView,
    messages: list[MessageRecord],
    policy: HotelPolicy,
    settings: Settings,
    templates: list[TemplateInfo],
    response_minutes: dict[str, float] | None = None,
) -> PanelJourney:
    """`response_minutes`: each staff reply's response time (`communications.response_times.reply_minutes`)."""
    zone = policy.timezone
    by_id = {record.id: record for record in messages}
    steps_by_key = {step.key: step for step in view.steps}
    timeline = [_entry(record, by_id, steps_by_key, zone) for record in messages]
    for entry in timeline:
        entry.response_minutes = (response_minutes or {}).get(entry.id)
    sent_steps = {record.step_key for record in messages if record.step_key}
    timeline += [
        TimelineEntry(
            id=f"pending-{step.key}", direction=MessageDirection.outbound.value, channel=step.channel or "",
            template=step.template, status=MessageStatus.queued.value,
            created_at=step.scheduled_for or view.updated_at or view.arrival,
            when=labels.when(step.scheduled_for, zone), step_key=step.key, pending=True, handed_over=False,
        )
        for step in view.steps
        if step.kind is StepKind.manual and step.status in OPEN_STEPS and step.key not in sent_steps
    ]
    guest = view.guest
    return PanelJourney(
        view=view,
        zone=zone,
        timeline=timeline,
        steps=[_step_row(step, zone) for step in sorted(view.steps, key=_step_order)],
        temporal_url=temporal_url(settings, view.workflow_id),
        templates=sorted(templates, key=lambda info: labels.label(labels.TEMPLATES, info.name)),
        offers=[Choice(offer.offer, labels.offer_label(offer.offer)) for offer in policy.upsell_offers],
        send_channels=[
            Choice(channel.value, labels.label(labels.CHANNELS, channel.value))
            for channel in Channel
            if channel is Channel.webchat
            or (channel is Channel.email and guest.email)
            or (channel is Channel.whatsapp and guest.phone)
        ],
        guest_messages=[
            Choice(entry.id, f"{entry.when} · {entry.channel_label}: {_short(entry.text)}")
            for entry in reversed(timeline) if entry.direction == MessageDirection.inbound
        ],
        our_messages=[
            Choice(entry.id, f"{entry.when} · {entry.channel_label}: {entry.template_label}")
            for entry in reversed(timeline) if entry.direction == MessageDirection.outbound and not entry.pending
        ],
        sender=guest.email or guest.phone or "",
    )


def _entry(
    record: MessageRecord, by_id: dict[str, MessageRecord], steps: dict[str, Step], zone: ZoneInfo
) -> TimelineEntry:
    replied = by_id.get(record.in_reply_to) if record.in_reply_to else None
    entry = TimelineEntry(
        id=record.id,
        direction=record.direction,
        channel=record.channel,
        template=record.template,
        status=record.status,
        created_at=record.created_at,
        when=labels.when(record.created_at, zone),
        text=(record.body_text or "").strip(),
        subject=record.subject,
        reason=record.reason,
        in_reply_to=record.in_reply_to,
        step_key=record.step_key,
        handed_over=record.status not in HANDING_OVER or record.sent_at is not None,
        resend=None if record.status == MessageStatus.in_doubt else _resend(record, steps),
    )
    if replied is not None:
        what = labels.label(labels.TEMPLATES, replied.template) if replied.template else f"“{_short(replied.body_text)}”"
        entry.in_reply_to_label = f"{what} de {labels.when(replied.created_at, zone)}"
    elif record.in_reply_to:
        entry.in_reply_to_label = record.in_reply_to
    return entry


def _resend(record: MessageRecord, steps: dict[str, Step]) -> Resend | None:
    """The same template again on the same channel, when everything it needs is known
    (a free text is written again instead; an offer needs its offer)."""
    if record.direction != MessageDirection.outbound or not record.template or record.template == "free_text":
        return None
    offer = None
    if record.template in OFFER_TEMPLATES:
        step = steps.get(record.step_key or "")
        kind, _, named = (record.step_key or "").partition(":")
        offer = (step.offer if step is not None else None) or (named if kind in ("upsell", "upsell_follow_up") else None)
        if not offer:
            return None
    return Resend(template=record.template, channel=record.channel, offer=offer)


def _step_order(step: Step) -> tuple[int, float]:
    return (0, step.scheduled_for.timestamp()) if step.scheduled_for else (1, 0.0)


def _step_row(step: Step, zone: ZoneInfo) -> StepRow:
    return StepRow(
        key=step.key,
        label=labels.step_label(step.key, step.kind.value, step.template),
        status=step.status.value,
        status_label=labels.label(labels.STEP_STATUSES, step.status.value),
        due=labels.when(step.scheduled_for, zone),
        done=labels.when(step.done_at, zone),
        channel=labels.label(labels.CHANNELS, step.channel) if step.channel else "—",
        reason=step.reason,
    )


def _short(text: str | None, limit: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
