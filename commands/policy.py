"""`guest-journey policy check FILE` and `guest-journey policy preview FILE`.

`check` prints `FILE: policy valid (…)` and exits 0, or prints every problem
as `FILE:LINE: key.path: what is wrong` and exits 1 (`guest_journey.policy_check`).

`preview` prints the journey that policy would plan for one reservation
(`--reservation JSON`, a `PUT /reservations/{id}` body plus `reservation_id`)
or for a sample one (`--sample`): each step with its moment in the hotel's
time zone, the channel it would go out on first, and why a step is skipped or
moved. The plan is `services.policy_preview` (also the staff page `/policy`'s):
`workflows.plan.plan_steps`, the function the journey workflow calls, given the
reservation as a new journey receives it at `now` (the current time, or `--now`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from commands.policy_targets import TargetsFileError, policy_block
from guest_journey.policy_check import PolicyCheck, check_policy_file
from guest_journey.reservations import Reservation
from guest_journey.settings import Settings
from services.policy_preview import (
    SAMPLE_ARRIVAL,
    SAMPLE_DAYS_AHEAD,
    SAMPLE_NIGHTS,
    preview_lines,
    sample_reservation,
)

USAGE_ERROR = 2


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
