"""`guest-journey policy check FILE` and `guest-journey policy preview FILE` as an
author runs them: every mistake with its line, and the journey a policy plans
for a reservation, in the hotel's time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TIMEOUT = 60

TWO_HOTELS = """\
hotel_timezone: America/Sao_Paulo
quiet_hours: {start: "22:00", end: "08:00"}
hotels:
  copacabana:
    hotel_name: Copacabana Beach
  lisboa:
    hotel_timezone: Europe/Lisbon
"""


def policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def cli(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    env["GUEST_JOURNEY_DATA_DIR"] = str(tmp_path / "data")
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", "policy", *(str(arg) for arg in args)],
        env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )


def test_a_valid_policy_passes_the_check_with_its_hotels(tmp_path: Path) -> None:
    path = policy(tmp_path, TWO_HOTELS)

    checked = cli(tmp_path, "check", path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == f"{path}: policy valid (2 hotels: copacabana, lisboa)\n"


def test_the_check_names_every_mistake_with_its_line(tmp_path: Path) -> None:
    path = policy(tmp_path, """\
hotel_timezone: America/Sao_Paulo
checkin_invite_before_arrival: 72h
hotels:
  lisboa:
    hotel_timezone: Europe/Lisbon
    quiet_hour: {start: "23:00", end: "07:00"}
""")

    checked = cli(tmp_path, "check", path)

    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        f"{path}:2: checkin_invite_before_arrival: '72h' is not an ISO 8601 duration; "
        "write it like 'PT72H', 'PT30M' or 'P2D'",
        f"{path}:6: hotels.lisboa.quiet_hour: unknown key; did you mean 'quiet_hours'?",
        f"{path}: policy invalid (2 problems)",
    ]


def test_broken_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    path = policy(tmp_path, 'hotel_timezone: America/Sao_Paulo\nquiet_hours: {start: "22:00", end: "08:00"\nhotels: {}\n')

    checked = cli(tmp_path, "check", path)

    assert checked.returncode == 1
    first = checked.stdout.splitlines()[0]
    assert first.startswith(f"{path}:3: not valid YAML: expected ',' or '}}'"), first
    assert "flow mapping at line 2" in first


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    checked = cli(tmp_path, "check", tmp_path / "nowhere.yaml")

    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == f"{tmp_path / 'nowhere.yaml'}: no such file"


def test_the_preview_of_a_sample_is_every_step_of_the_default_journey_in_hotel_time(tmp_path: Path) -> None:
    path = policy(tmp_path, "hotels:\n  copacabana: {hotel_name: Copacabana Beach}\n")

    # 10:00 in São Paulo: the sample arrives ten days later at 15:00 and leaves two nights after at 12:00.
    preview = cli(tmp_path, "preview", path, "--sample", "--now", "2027-01-01T13:00:00Z")

    assert preview.returncode == 0, preview.stderr
    header, steps = preview.stdout.split("\n\n")
    assert header.splitlines()[0] == (
        "hotel copacabana (its overrides under hotels), time zone America/Sao_Paulo, quiet hours 22:00-08:00"
    )
    assert "arrival 2027-01-11 15:00 -03:00, departure 2027-01-13 12:00 -03:00" in header
    assert steps.splitlines() == [
        "2027-01-08 15:00 -03:00 checkin_invitation              email     planned",
        "2027-01-09 15:00 -03:00 upsell:room_upgrade             email     planned",
        "2027-01-10 15:00 -03:00 checkin_reminder:PT24H          email     planned",
        "2027-01-11 12:00 -03:00 checkin_reminder:PT3H           email     planned",
        "2027-01-12 16:00 -03:00 upsell:late_checkout            email     planned",
        "2027-01-12 20:00 -03:00 upsell_follow_up:late_checkout  email     planned",
        "2027-01-13 14:00 -03:00 guest_post_stay_feedback        email     planned",
        "2027-01-15 14:00 -03:00 feedback_reminder               email     planned",
        "2027-01-20 12:00 -03:00 close                           -         planned: the journey completes (at the latest)",
    ]


LATE_BOOKING = {
    "reservation_id": "R-LATE",
    "hotel_id": "copacabana",
    "guest": {"name": "Ana Souza", "phone": "+5521999990000", "preferred_channels": ["email", "whatsapp"]},
    "arrival": "2027-01-08T00:34:00-03:00",
    "departure": "2027-01-10T11:00:00-03:00",
}


def test_a_late_booking_gets_its_invitation_at_once_and_the_preview_says_why(tmp_path: Path) -> None:
    """Booked at 22:34 for an arrival two hours later: waiting for the end of quiet
    hours would be after arrival, so the check-in invitation goes at once, and the line says why."""
    path = policy(tmp_path, TWO_HOTELS)

    preview = cli(tmp_path, "preview", path, "--reservation", json.dumps(LATE_BOOKING),
                  "--now", "2027-01-07T22:34:00-03:00")

    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert "channels: whatsapp; not tried: email (no e-mail); no marketing consent" in lines[2]
    assert lines[3] == (
        "in quiet hours: checkin_invitation, checkin_reminder wait at most until PT2H before arrival; "
        "upsell, upsell_follow_up, guest_post_stay_feedback, feedback_reminder wait for their end"
    )
    invitation = next(line for line in lines if " checkin_invitation " in line)
    assert invitation.split()[:5] == ["2027-01-07", "22:34", "-03:00", "checkin_invitation", "whatsapp"]
    assert invitation.endswith(
        "planned: sent at once; goes in quiet hours 22:00-08:00 (America/Sao_Paulo): their end at "
        "2027-01-08 08:00 is less than PT2H before arrival"
    )
    offer = next(line for line in lines if " upsell:room_upgrade " in line)
    assert offer.endswith("skipped: no marketing consent")

    # A hotel that wants check-in messages to wait too: the invitation would come after arrival.
    waiting = policy(tmp_path, TWO_HOTELS.replace(
        '{start: "22:00", end: "08:00"}', '{start: "22:00", end: "08:00", messages: {checkin_invitation: wait}}'
    ), "wait.yaml")
    preview = cli(tmp_path, "preview", waiting, "--reservation", json.dumps(LATE_BOOKING),
                  "--now", "2027-01-07T22:34:00-03:00")
    invitation = next(line for line in preview.stdout.splitlines() if " checkin_invitation " in line)
    assert invitation.split()[:4] == ["2027-01-08", "08:00", "-03:00", "checkin_invitation"]
    assert invitation.endswith(
        "-         skipped: quiet hours 22:00-08:00 (America/Sao_Paulo) moved it from 2027-01-07 22:34 "
        "to 2027-01-08 08:00; not sent after arrival"
    )


def test_the_preview_refuses_an_invalid_policy_and_bad_arguments(tmp_path: Path) -> None:
    bad = policy(tmp_path, "checkin_invite_before_arrival: 72h\n")
    refused = cli(tmp_path, "preview", bad, "--sample")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"{bad}:1: checkin_invite_before_arrival: '72h' is not an ISO 8601 duration" in refused.stderr

    good = policy(tmp_path, TWO_HOTELS)
    no_offset = cli(tmp_path, "preview", good, "--sample", "--now", "2027-01-07T22:34")
    assert no_offset.returncode == 2
    assert "--now: '2027-01-07T22:34' needs its UTC offset" in no_offset.stderr

    no_id = cli(tmp_path, "preview", good, "--reservation",
                json.dumps({key: value for key, value in LATE_BOOKING.items() if key != "reservation_id"}))
    assert no_id.returncode == 2
    assert "--reservation: reservation_id: Field required" in no_id.stderr

    both = cli(tmp_path, "preview", good, "--reservation", json.dumps(LATE_BOOKING), "--hotel", "lisboa")
    assert both.returncode == 2
    assert "--hotel goes with --sample" in both.stderr


def test_a_what_if_during_the_stay_plans_as_the_running_journey_would(tmp_path: Path) -> None:
    """At a `--now` after arrival the journey is `in_stay` (no PMS event yet), as the
    workflow makes it before it plans: the pre-arrival steps say so."""
    path = policy(tmp_path, TWO_HOTELS)

    preview = cli(tmp_path, "preview", path, "--reservation", json.dumps(LATE_BOOKING),
                  "--now", "2027-01-09T10:00:00-03:00")

    assert preview.returncode == 0, preview.stderr
    lines = preview.stdout.splitlines()
    assert lines[2].startswith("planned at 2027-01-09 10:00 -03:00, stage in_stay;")
    invitation = next(line for line in lines if " checkin_invitation " in line)
    assert invitation.endswith("skipped: stage is in_stay")


def test_a_retired_kpi_targets_file_becomes_the_policys_kpi_targets(tmp_path: Path) -> None:
    old = policy(tmp_path, "response_time_max_minutes: 5\nhotels:\n  rio: {satisfaction_min: 8}\n",
                 "kpi-targets.yaml")
    converted = cli(tmp_path, "kpi-targets", old)
    assert converted.returncode == 0, converted.stderr
    assert converted.stdout.startswith(f"# KPI targets from {old}: merge into the policy file")
    merged = policy(tmp_path, "quiet_hours: null\n" + converted.stdout)
    checked = cli(tmp_path, "check", merged)
    assert checked.returncode == 0, checked.stdout
    from guest_journey.policy import load_policy

    loaded = load_policy(merged)
    assert loaded.kpi_targets.response_time_max_minutes == 5 and loaded.kpi_targets.satisfaction_min == 4.5
    rio = loaded.for_hotel("rio").kpi_targets
    assert (rio.satisfaction_min, rio.response_time_max_minutes) == (8, 5)

    wrong = policy(tmp_path, "hotels:\n  rio: {upsell_conversion_min: 18}\n", "bad-targets.yaml")
    refused = cli(tmp_path, "kpi-targets", wrong)
    assert refused.returncode == 1 and "hotels.rio.upsell_conversion_min" in refused.stderr


def test_the_api_and_the_worker_refuse_to_start_beside_a_retired_kpi_targets_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "kpi-targets.yaml").write_text("satisfaction_min: 8\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GUEST_JOURNEY_", "OTEL_"))}
    env.update(GUEST_JOURNEY_DATA_DIR=str(data), GUEST_JOURNEY_API_PORT="0",
               GUEST_JOURNEY_TEMPORAL_ADDRESS="127.0.0.1:1")
    for command in (["-m", "commands.cli", "api"], ["worker.py"]):
        started = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True,
                                 timeout=TIMEOUT, check=False, cwd=Path(__file__).resolve().parents[1])
        assert started.returncode == 1, started.stderr
        [line] = started.stderr.strip().splitlines()
        assert "kpi-targets.yaml is no longer read" in line and "guest-journey policy kpi-targets" in line


def test_check_names_the_line_of_a_bad_quiet_hours_rule(tmp_path: Path) -> None:
    path = policy(tmp_path, 'quiet_hours:\n  start: "22:00"\n  end: "08:00"\n  messages:\n'
                            "    upsell: arrival_margin\n    checkin_reminder: soon\n")

    checked = cli(tmp_path, "check", path)

    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        f"{path}:5: quiet_hours.messages.upsell: arrival_margin is for the check-in messages "
        "(checkin_invitation, checkin_reminder), which go before arrival; use wait or send",
        f"{path}:6: quiet_hours.messages.checkin_reminder: Input should be 'wait', 'arrival_margin' or 'send'",
        f"{path}: policy invalid (2 problems)",
    ]
