"""What a policy plans, before it is loaded: one rule in one place for
`guest-journey policy preview` and the staff page `/policy`.

`plan_preview` is the plan of one reservation under a policy, each step with its
moment in the hotel's time zone, the channel it would go out on first, and why a
step is skipped or moved; `preview_lines` is its text. The plan is
`workflows.plan.plan_steps`, the journey workflow's own planner, with the
reservation as a new journey receives it at `now` (or, for a running journey,
with its facts: `facts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from guest_journey.journeys import Stage, Step, StepKind, StepStatus
from guest_journey.policy import HotelPolicy, JourneyPolicy
from guest_journey.reservations import Channel, Guest, Reservation
from workflows.channels import DEFAULT_ORDER, channels_for, reachable
from workflows.plan import JourneyFacts, plan_steps, stage_by_time

SAMPLE_RESERVATION_ID = "SAMPLE-1"
SAMPLE_HOTEL_ID = "sample-hotel"
SAMPLE_DAYS_AHEAD = 10
SAMPLE_NIGHTS = 2
SAMPLE_ARRIVAL, SAMPLE_DEPARTURE = time(15, 0), time(12, 0)
NO_CHANNEL = "no channel reaches the guest (no e-mail, phone or chosen web chat)"
_ADDRESS = {Channel.email: "no e-mail", Channel.whatsapp: "no phone"}


@dataclass(frozen=True)
class PreviewStep:
    """One step as a preview shows it."""

    step: Step
    moment: str  # in the hotel's time zone, "-" when it has none
    channel: str  # the first channel it would go out on, "-" when it sends nothing
    status: str  # "planned: sent at once; quiet hours ..." or "skipped: <reason>"

    @property
    def sends(self) -> bool:
        """Whether the journey would still send it (planned, or due now)."""
        return self.step.status in (StepStatus.planned, StepStatus.due) and self.step.kind is not StepKind.close


@dataclass(frozen=True)
class Preview:
    """The plan a policy makes for one reservation at `now`, with its header lines."""

    header: list[str]
    steps: list[PreviewStep]
    zone: ZoneInfo

    def lines(self) -> list[str]:
        width = max((len(line.step.key) for line in self.steps), default=0)
        return [
            *self.header, "",
            *(f"{line.moment:<23} {line.step.key:<{width}}  {line.channel:<8}  {line.status}" for line in self.steps),
        ]


def plan_preview(
    policy: JourneyPolicy, reservation: Reservation, now: datetime, facts: JourneyFacts | None = None
) -> Preview:
    """The plan `policy` makes for `reservation` at `now`: as a new journey's, or with `facts`
    (a running journey's stage, answers and steps: its settled steps stay as they are)."""
    hotel = policy.for_hotel(reservation.hotel_id)
    zone = hotel.timezone
    if facts is None:
        facts = JourneyFacts(stage=stage_by_time(Stage.pre_arrival, reservation, now))
    else:
        facts = facts.model_copy(update={"stage": stage_by_time(facts.stage, reservation, now)})
    steps = plan_steps(reservation, hotel, facts, now)
    channels = channels_for(reservation.guest)
    return Preview(
        header=_header(policy, hotel, reservation, now, facts.stage, channels),
        steps=[_preview_step(step, zone, now, channels) for step in steps],
        zone=zone,
    )


def preview_lines(policy: JourneyPolicy, reservation: Reservation, now: datetime) -> list[str]:
    """The header and one line per step of the journey `policy` plans for `reservation` at `now`."""
    return plan_preview(policy, reservation, now).lines()


def sample_reservation(policy: JourneyPolicy, now: datetime, hotel_id: str | None = None) -> Reservation:
    """A reservation booked at `now` for the policy's first hotel (or `hotel_id`): arrival
    `SAMPLE_DAYS_AHEAD` days later at 15:00 hotel time, departure 12:00 after two nights."""
    hotel_id = hotel_id or next(iter(policy.hotels), SAMPLE_HOTEL_ID)
    zone = policy.for_hotel(hotel_id).timezone
    arrival_day = now.astimezone(zone).date() + timedelta(days=SAMPLE_DAYS_AHEAD)
    return Reservation(
        reservation_id=SAMPLE_RESERVATION_ID,
        hotel_id=hotel_id,
        guest=Guest(name="Sample Guest", email="guest@example.com", phone="+5511999990000",
                    marketing_consent=True),
        arrival=datetime.combine(arrival_day, SAMPLE_ARRIVAL, tzinfo=zone),
        departure=datetime.combine(arrival_day + timedelta(days=SAMPLE_NIGHTS), SAMPLE_DEPARTURE, tzinfo=zone),
    )


def _header(
    policy: JourneyPolicy, hotel: HotelPolicy, reservation: Reservation, now: datetime, stage: Stage,
    channels: list[Channel],
) -> list[str]:
    zone = hotel.timezone
    overrides = "its overrides under hotels" if reservation.hotel_id in policy.hotels else "no overrides: the defaults"
    quiet = f"quiet hours {hotel.quiet_hours.describe()}" if hotel.quiet_hours else "no quiet hours"
    guest = reservation.guest
    order = list(guest.preferred_channels) or list(DEFAULT_ORDER)
    unreachable = [f"{channel} ({_ADDRESS.get(channel, 'not reachable')})" for channel in order
                   if not reachable(guest, channel)]
    channel_text = ", then ".join(channels) if channels else NO_CHANNEL
    if unreachable:
        channel_text += "; not tried: " + ", ".join(unreachable)
    consent = "marketing consent" if guest.marketing_consent else "no marketing consent"
    return [
        f"hotel {reservation.hotel_id} ({overrides}), time zone {hotel.hotel_timezone}, {quiet}",
        f"reservation {reservation.reservation_id}: arrival {local_time(reservation.arrival, zone)}, "
        f"departure {local_time(reservation.departure, zone)}",
        f"planned at {local_time(now, zone)}, stage {stage}; channels: {channel_text}; {consent}",
        *([f"in quiet hours: {hotel.quiet_hours.describe_rules()}"] if hotel.quiet_hours else []),
    ]


def _preview_step(step: Step, zone: ZoneInfo, now: datetime, channels: list[Channel]) -> PreviewStep:
    moment = local_time(step.scheduled_for, zone) if step.scheduled_for else "-"
    sends = step.kind.sends_message and step.status is StepStatus.planned
    channel = channels[0] if sends and channels else "-"
    return PreviewStep(step=step, moment=moment, channel=str(channel), status=_status(step, now, channels))


def _status(step: Step, now: datetime, channels: list[Channel]) -> str:
    if step.status is not StepStatus.planned:
        return f"{step.status}: {step.reason}" if step.reason else str(step.status)
    notes = []
    if step.kind is StepKind.close:
        notes.append("the journey completes (at the latest)")
    elif step.scheduled_for is not None and step.scheduled_for <= now:
        notes.append("sent at once")
    if step.reason:
        notes.append(step.reason)
    if step.kind.sends_message and not channels:
        notes.append(f"would fail: {NO_CHANNEL}")
    return "planned" + (": " + "; ".join(notes) if notes else "")


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """`2027-01-07 22:34 -03:00`: a moment in a hotel's time zone."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
