"""`guest-journey policy check FILE` and `guest-journey policy preview FILE`.

`check` prints `FILE: policy valid (…)` and exits 0, or prints every problem
as `FILE:LINE: key.path: what is wrong` and exits 1 (`guest_journey.policy_check`).

`preview` prints the journey that policy would plan for one reservation
(`--reservation JSON`, a `PUT /reservations/{id}` body plus `reservation_id`)
or for a sample one (`--sample`): each step with its moment in the hotel's
time zone, the channel it would go out on first, and why a step is skipped or
moved. The plan is `workflows.plan.plan_steps`, the function the journey
workflow calls, given the reservation as a new journey receives it at `now`
(the current time, or `--now`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from commands.policy_targets import TargetsFileError, policy_block
from guest_journey.journeys import Stage, Step, StepKind, StepStatus
from guest_journey.policy import HotelPolicy, JourneyPolicy
from guest_journey.policy_check import PolicyCheck, check_policy_file
from guest_journey.reservations import Channel, Guest, Reservation
from guest_journey.settings import Settings
from workflows.channels import DEFAULT_ORDER, channels_for, reachable
from workflows.plan import JourneyFacts, plan_steps, stage_by_time

USAGE_ERROR = 2
SAMPLE_RESERVATION_ID = "SAMPLE-1"
SAMPLE_HOTEL_ID = "sample-hotel"
SAMPLE_DAYS_AHEAD = 10
SAMPLE_NIGHTS = 2
SAMPLE_ARRIVAL, SAMPLE_DEPARTURE = time(15, 0), time(12, 0)
NO_CHANNEL = "no channel reaches the guest (no e-mail, phone or chosen web chat)"
_ADDRESS = {Channel.email: "no e-mail", Channel.whatsapp: "no phone"}


def add_parser(commands: Any) -> None:
    """Add `policy check` and `policy preview` to the CLI's subcommands."""
    policy = commands.add_parser(
        "policy", help="check a journey policy file, or preview the journey it plans",
        description="A journey policy file (GUEST_JOURNEY_POLICY_FILE), before it is loaded.",
    )
    actions = policy.add_subparsers(dest="policy_action", required=True, metavar="{check,preview,kpi-targets}")
    check = actions.add_parser(
        "check", help="every mistake in a policy file, with its line",
        description="Exit 0 when the service would load FILE; else print every problem as "
        "FILE:LINE: key.path: message and exit 1.",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="the policy file (YAML, or JSON by its .json suffix)")
    preview = actions.add_parser(
        "preview", help="the journey a policy would plan for a reservation, in the hotel's time",
        description="Print each step the journey would plan for one reservation: its moment in the hotel's "
        "time zone, the channel it would go out on first, and why a step is skipped or moved.",
    )
    preview.add_argument("file", type=Path, metavar="FILE", help="the policy file (YAML, or JSON by its .json suffix)")
    reservation = preview.add_mutually_exclusive_group(required=True)
    reservation.add_argument(
        "--reservation", metavar="JSON", type=_reservation_argument,
        help="a JSON object: the body of PUT /reservations/{id} plus \"reservation_id\"",
    )
    reservation.add_argument(
        "--sample", action="store_true",
        help=f"a sample reservation: booked now, arriving in {SAMPLE_DAYS_AHEAD} days at "
        f"{SAMPLE_ARRIVAL:%H:%M} hotel time for {SAMPLE_NIGHTS} nights, a guest with e-mail, phone "
        "and marketing consent",
    )
    preview.add_argument("--hotel", metavar="ID", help="with --sample: this hotel (default: the policy's first under hotels)")
    preview.add_argument("--now", metavar="ISO", type=_moment_argument,
                         help="plan as at this moment (ISO 8601 with its UTC offset); default: now")
    targets = actions.add_parser(
        "kpi-targets", help="print a retired kpi-targets.yaml as the policy's kpi_targets",
        description="KPI targets now live in the policy (kpi_targets, overridable per hotel). Print FILE, "
        "a kpi-targets.yaml of an earlier release, as the YAML to merge into the policy file.",
    )
    targets.add_argument("file", type=Path, metavar="FILE", help="the kpi-targets.yaml file")
    policy.set_defaults(run_with_args=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.policy_action == "kpi-targets":
        try:
            _write([policy_block(args.file).rstrip("\n")])
        except TargetsFileError as error:
            sys.stderr.write(f"guest-journey policy kpi-targets: {error}\n")
            return 1
        return 0
    checked = check_policy_file(args.file)
    if args.policy_action == "check":
        _write(_check_lines(checked))
        return 0 if checked.valid else 1
    if not checked.valid or checked.policy is None:
        sys.stderr.write("".join(f"{line}\n" for line in _check_lines(checked)))
        return 1
    if args.reservation is not None and args.hotel is not None:
        return _usage("--hotel goes with --sample; a --reservation names its own hotel_id")
    now: datetime = args.now or datetime.now(UTC)
    try:
        reservation = args.reservation or sample_reservation(checked.policy, now, args.hotel)
    except ValidationError as error:
        return _usage(f"--hotel: cannot make a sample reservation: {_problems(error)}")
    _write(preview_lines(checked.policy, reservation, now))
    return 0


# -- check ---------------------------------------------------------------------


def _check_lines(checked: PolicyCheck) -> list[str]:
    if checked.valid and checked.policy is not None:
        hotels = list(checked.policy.hotels)
        names = ", ".join(hotels) if hotels else "every hotel gets the defaults"
        return [f"{checked.source}: policy valid ({len(hotels)} hotel{'s' if len(hotels) != 1 else ''}: {names})"]
    lines = [problem.describe(checked.source) for problem in checked.problems]
    count = len(checked.problems)
    return [*lines, f"{checked.source}: policy invalid ({count} problem{'s' if count != 1 else ''})"]


# -- preview -------------------------------------------------------------------


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


def preview_lines(policy: JourneyPolicy, reservation: Reservation, now: datetime) -> list[str]:
    """The header and one line per step of the journey `policy` plans for `reservation` at `now`."""
    hotel = policy.for_hotel(reservation.hotel_id)
    zone = hotel.timezone
    stage = stage_by_time(Stage.pre_arrival, reservation, now)
    steps = plan_steps(reservation, hotel, JourneyFacts(stage=stage), now)
    channels = channels_for(reservation.guest)
    width = max(len(step.key) for step in steps)
    return [
        *_header(policy, hotel, reservation, now, stage, channels),
        "",
        *(_step_line(step, zone, now, channels, width) for step in steps),
    ]


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
        f"reservation {reservation.reservation_id}: arrival {_local(reservation.arrival, zone)}, "
        f"departure {_local(reservation.departure, zone)}",
        f"planned at {_local(now, zone)}, stage {stage}; channels: {channel_text}; {consent}",
    ]


def _step_line(step: Step, zone: ZoneInfo, now: datetime, channels: list[Channel], width: int) -> str:
    moment = _local(step.scheduled_for, zone) if step.scheduled_for else "-"
    sends = step.kind.sends_message and step.status is StepStatus.planned
    channel = channels[0] if sends and channels else "-"
    return f"{moment:<23} {step.key:<{width}}  {channel:<8}  {_status(step, now, channels)}"


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


def _local(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


# -- arguments -----------------------------------------------------------------


def _reservation_argument(text: str) -> Reservation:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not a JSON object: {error}") from error
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError("give a JSON object (a PUT /reservations body plus reservation_id)")
    try:
        return Reservation.model_validate(data)
    except ValidationError as error:
        raise argparse.ArgumentTypeError(_problems(error)) from error


def _moment_argument(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 moment such as 2027-01-07T22:34-03:00") from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs its UTC offset, such as 2027-01-07T22:34-03:00")
    return moment


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'reservation'}: {item['msg'].removeprefix('Value error, ')}"
        for item in error.errors()
    )


def _usage(message: str) -> int:
    sys.stderr.write(f"guest-journey policy preview: {message}\n")
    return USAGE_ERROR


def _write(lines: list[str]) -> None:
    sys.stdout.write("".join(f"{line}\n" for line in lines))
