"""The journey policy file (CONTRACT §3): defaults, loading, per-hotel
overrides, and errors that name the bad field."""

from __future__ import annotations

import json
from datetime import time, timedelta
from pathlib import Path

import pytest
import yaml
from temporalio.contrib.pydantic import pydantic_data_converter

from guest_journey.policy import (
    HotelPolicy,
    JourneyPolicy,
    PolicyError,
    QuietHours,
    load_policy,
    parse_policy,
)
from tests.factories import make_journey_policy, make_policy

CONTRACT_EXAMPLE = """\
checkin_invite_before_arrival: PT72H     # sent at once if that moment has passed
checkin_reminders_before_arrival: [PT24H, PT3H]   # only while check-in is not done
upsell_offers:
  - offer: room_upgrade
    send_before_arrival: PT48H
  - offer: late_checkout
    send_before_departure: PT20H
    follow_up_after: PT4H                # once, if no answer
post_stay_feedback_after_departure: PT2H
feedback_reminder_after: P2D
close_after_departure: P7D               # the journey completes then at the latest
quiet_hours: {start: "22:00", end: "08:00"}   # hotel local time; null: none
hotel_timezone: America/Sao_Paulo
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def policy_error(data) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(data, source="policy.yaml")
    return str(caught.value)


# -- defaults ---------------------------------------------------------------------


def test_default_policy_is_the_contract_example():
    default = load_policy(None)

    assert default.checkin_invite_before_arrival == timedelta(hours=72)
    assert default.checkin_reminders_before_arrival == [timedelta(hours=24), timedelta(hours=3)]
    assert [offer.model_dump(exclude_none=True) for offer in default.upsell_offers] == [
        {"offer": "room_upgrade", "send_before_arrival": timedelta(hours=48)},
        {
            "offer": "late_checkout",
            "send_before_departure": timedelta(hours=20),
            "follow_up_after": timedelta(hours=4),
        },
    ]
    assert default.post_stay_feedback_after_departure == timedelta(hours=2)
    assert default.feedback_reminder_after == timedelta(days=2)
    assert default.close_after_departure == timedelta(days=7)
    assert default.quiet_hours == QuietHours(start=time(22, 0), end=time(8, 0))
    assert default.hotel_timezone == "America/Sao_Paulo"
    assert default.hotels == {}


def test_contract_example_file_gives_the_default_policy(tmp_path):
    loaded = load_policy(write(tmp_path, "policy.yaml", CONTRACT_EXAMPLE))

    assert loaded == JourneyPolicy()


def test_empty_file_gives_the_default_policy(tmp_path):
    assert load_policy(write(tmp_path, "policy.yaml", "")) == JourneyPolicy()
    assert load_policy(write(tmp_path, "comments.yaml", "# nothing yet\n")) == JourneyPolicy()


def test_a_file_sets_only_what_it_names(tmp_path):
    loaded = load_policy(write(tmp_path, "policy.yaml", "feedback_reminder_after: P3D\n"))

    assert loaded.feedback_reminder_after == timedelta(days=3)
    assert loaded.model_dump(exclude={"feedback_reminder_after"}) == JourneyPolicy().model_dump(
        exclude={"feedback_reminder_after"}
    )


# -- loading files ----------------------------------------------------------------


def test_yaml_file_loads(tmp_path):
    path = write(
        tmp_path,
        "policy.yaml",
        """\
checkin_invite_before_arrival: P5D
checkin_reminders_before_arrival: [P2D, PT6H, PT90M]
upsell_offers:
  - offer: breakfast
    send_before_arrival: PT12H
    price: "45.00"
    currency: BRL
post_stay_feedback_after_departure: PT30M
feedback_reminder_after: null
close_after_departure: P14D
quiet_hours: {start: "21:30", end: "09:15"}
hotel_timezone: Europe/Lisbon
""",
    )
    loaded = load_policy(path)

    assert loaded.checkin_invite_before_arrival == timedelta(days=5)
    assert loaded.checkin_reminders_before_arrival == [
        timedelta(days=2),
        timedelta(hours=6),
        timedelta(minutes=90),
    ]
    breakfast = loaded.offer("breakfast")
    assert breakfast is not None
    assert (breakfast.send_before_arrival, breakfast.price, breakfast.currency) == (
        timedelta(hours=12),
        "45.00",
        "BRL",
    )
    assert breakfast.before_arrival
    assert loaded.offer("room_upgrade") is None
    assert loaded.post_stay_feedback_after_departure == timedelta(minutes=30)
    assert loaded.feedback_reminder_after is None
    assert loaded.close_after_departure == timedelta(days=14)
    assert loaded.quiet_hours == QuietHours(start=time(21, 30), end=time(9, 15))
    assert loaded.timezone.key == "Europe/Lisbon"


def test_yml_suffix_is_yaml_too(tmp_path):
    loaded = load_policy(write(tmp_path, "policy.yml", "hotel_timezone: Asia/Tokyo\n"))

    assert loaded.hotel_timezone == "Asia/Tokyo"


def test_json_file_loads(tmp_path):
    data = {
        "checkin_invite_before_arrival": "PT48H",
        "upsell_offers": [
            {"offer": "late_checkout", "send_before_departure": "PT20H", "follow_up_after": "PT4H"}
        ],
        "quiet_hours": None,
        "hotel_timezone": "America/New_York",
        "hotels": {"nyc-2": {"quiet_hours": {"start": "23:00", "end": "07:00"}}},
    }
    loaded = load_policy(write(tmp_path, "policy.json", json.dumps(data)))

    assert loaded.checkin_invite_before_arrival == timedelta(hours=48)
    assert [offer.offer for offer in loaded.upsell_offers] == ["late_checkout"]
    assert loaded.quiet_hours is None
    assert loaded.for_hotel("nyc-2").quiet_hours == QuietHours(start=time(23), end=time(7))


def test_policy_travels_through_temporal_unchanged():
    policy = make_journey_policy(hotels={"h1": {"quiet_hours": None}}).for_hotel("h1")
    converter = pydantic_data_converter.payload_converter

    (payload,) = converter.to_payloads([policy])
    (back,) = converter.from_payloads([payload], [HotelPolicy])

    assert back == policy
    default = HotelPolicy()
    (payload,) = converter.to_payloads([default])
    assert converter.from_payloads([payload], [HotelPolicy]) == [default]


# -- per-hotel overrides ----------------------------------------------------------


def test_hotel_override_applies_only_to_that_hotel():
    policy = parse_policy(
        {"hotels": {"h1": {"quiet_hours": None, "hotel_timezone": "Europe/Lisbon"}}}
    )

    h1 = policy.for_hotel("h1")
    assert h1.quiet_hours is None
    assert h1.hotel_timezone == "Europe/Lisbon"
    assert h1.checkin_invite_before_arrival == timedelta(hours=72)

    other = policy.for_hotel("h2")
    assert other.quiet_hours == QuietHours(start=time(22), end=time(8))
    assert other.hotel_timezone == "America/Sao_Paulo"
    assert other == HotelPolicy()


def test_hotel_policy_is_the_file_defaults_plus_the_override(tmp_path):
    path = write(
        tmp_path,
        "policy.yaml",
        """\
checkin_invite_before_arrival: P4D
hotel_timezone: America/New_York
hotels:
  h1:
    checkin_reminders_before_arrival: [PT12H]
""",
    )
    policy = load_policy(path)

    h1 = policy.for_hotel("h1")
    assert h1.checkin_invite_before_arrival == timedelta(days=4)
    assert h1.hotel_timezone == "America/New_York"
    assert h1.checkin_reminders_before_arrival == [timedelta(hours=12)]
    assert policy.for_hotel("h2").checkin_reminders_before_arrival == [
        timedelta(hours=24),
        timedelta(hours=3),
    ]
    assert isinstance(h1, HotelPolicy)
    assert not isinstance(h1, JourneyPolicy)


def test_hotel_override_changes_part_of_a_setting_and_keeps_the_rest(tmp_path):
    path = write(
        tmp_path,
        "policy.yaml",
        """\
delivery: {give_up_on_channel_after: PT30M, attempt_timeout: PT20S}
hotels:
  h1:
    quiet_hours: {end: "07:00"}
    delivery: {attempt_timeout: PT10S}
""",
    )
    h1 = load_policy(path).for_hotel("h1")

    assert h1.quiet_hours == QuietHours(start=time(22), end=time(7))
    assert h1.delivery.attempt_timeout == timedelta(seconds=10)
    assert h1.delivery.give_up_on_channel_after == timedelta(minutes=30)


def test_hotel_ids_that_yaml_reads_as_numbers_still_match(tmp_path):
    path = write(tmp_path, "policy.yaml", "hotels:\n  1042:\n    quiet_hours: null\n  h2:\n")
    policy = load_policy(path)

    assert policy.for_hotel("1042").quiet_hours is None
    assert policy.for_hotel("h2") == HotelPolicy()


def test_an_override_may_not_nest_hotels():
    message = policy_error({"hotels": {"h1": {"hotels": {}}}})

    assert "hotels.h1.hotels" in message


# -- errors name the bad field ----------------------------------------------------


def test_unknown_time_zone():
    message = policy_error({"hotel_timezone": "America/Atlantis"})

    assert message.startswith("policy.yaml: ")
    assert "hotel_timezone" in message
    assert "America/Atlantis" in message


def test_duration_that_is_not_a_duration():
    message = policy_error({"checkin_invite_before_arrival": "banana"})

    assert "checkin_invite_before_arrival" in message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"checkin_invite_before_arrival": "-PT1H"}, "checkin_invite_before_arrival"),
        (
            {"checkin_reminders_before_arrival": ["PT24H", "-PT3H"]},
            "checkin_reminders_before_arrival.1",
        ),
        ({"post_stay_feedback_after_departure": "-PT2H"}, "post_stay_feedback_after_departure"),
        ({"feedback_reminder_after": "-P2D"}, "feedback_reminder_after"),
        (
            {"upsell_offers": [{"offer": "spa", "send_before_arrival": "-PT1H"}]},
            "upsell_offers.0.send_before_arrival",
        ),
        (
            {
                "upsell_offers": [
                    {"offer": "spa", "send_before_departure": "PT1H", "follow_up_after": "-PT1H"}
                ]
            },
            "upsell_offers.0.follow_up_after",
        ),
        ({"delivery": {"first_retry_after": "-PT5S"}}, "delivery.first_retry_after"),
    ],
)
def test_negative_duration(data, field):
    message = policy_error(data)

    assert f"{field}: must not be negative" in message


def test_journey_that_closes_at_departure_is_refused():
    assert "close_after_departure: must be positive" in policy_error(
        {"close_after_departure": "PT0S"}
    )


@pytest.mark.parametrize("value", [72, 3.5, True])
def test_bare_number_as_duration_is_refused(value):
    # A bare number would silently mean seconds.
    message = policy_error({"close_after_departure": value})

    assert "close_after_departure" in message
    assert "ISO 8601" in message


def test_offer_with_both_moments():
    message = policy_error(
        {
            "upsell_offers": [
                {
                    "offer": "room_upgrade",
                    "send_before_arrival": "PT48H",
                    "send_before_departure": "PT20H",
                }
            ]
        }
    )

    assert "upsell_offers.0" in message
    assert "room_upgrade" in message
    assert "send_before_arrival" in message and "send_before_departure" in message


def test_offer_with_neither_moment():
    message = policy_error({"upsell_offers": [{"offer": "spa"}]})

    assert "upsell_offers.0" in message
    assert "exactly one of" in message


@pytest.mark.parametrize(
    ("offer", "field"),
    [
        ({"offer": "Room Upgrade", "send_before_arrival": "PT1H"}, "upsell_offers.0.offer"),
        (
            {"offer": "spa", "send_before_arrival": "PT1H", "currency": "real"},
            "upsell_offers.0.currency",
        ),
        (
            {"offer": "spa", "send_before_arrival": "PT1H", "discount": 10},
            "upsell_offers.0.discount",
        ),
    ],
)
def test_bad_offer_field(offer, field):
    assert field in policy_error({"upsell_offers": [offer]})


def test_same_offer_twice():
    offer = {"offer": "spa", "send_before_arrival": "PT1H"}
    message = policy_error({"upsell_offers": [offer, offer]})

    assert "upsell_offers" in message
    assert "twice" in message


def test_same_reminder_twice():
    # PT48H and P2D are the same offset: one reminder would silently vanish.
    message = policy_error({"checkin_reminders_before_arrival": ["PT48H", "P2D"]})

    assert "checkin_reminders_before_arrival" in message
    assert "twice" in message


def test_bad_override_names_the_hotel_and_the_field():
    message = policy_error({"hotels": {"h1": {"quiet_hours": {"start": "late", "end": "08:00"}}}})

    assert message.startswith("policy.yaml: ")
    assert "hotels.h1.quiet_hours.start" in message
    assert "Value error" not in message


def test_bad_override_time_zone_names_the_hotel():
    message = policy_error({"hotels": {"h1": {"hotel_timezone": "Mars/Olympus"}}})

    assert "hotels.h1.hotel_timezone" in message
    assert "Mars/Olympus" in message


def test_override_that_is_not_a_mapping():
    assert "hotels.h1" in policy_error({"hotels": {"h1": ["quiet_hours"]}})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"quiet_hour": None}, "quiet_hour"),
        ({"hotels": {"h1": {"timezone": "Europe/Lisbon"}}}, "hotels.h1.timezone"),
        (
            {"quiet_hours": {"start": "22:00", "end": "08:00", "days": "weekdays"}},
            "quiet_hours.days",
        ),
    ],
)
def test_unknown_key_is_refused(data, field):
    message = policy_error(data)

    assert f"{field}: Extra inputs are not permitted" in message


@pytest.mark.parametrize(
    ("quiet_hours", "field"),
    [
        ({"start": "25:00", "end": "08:00"}, "quiet_hours.start"),
        ({"start": "22:00"}, "quiet_hours.end"),
        ({"start": "22:00+01:00", "end": "08:00"}, "quiet_hours.start"),
        ("22:00-08:00", "quiet_hours"),
    ],
)
def test_bad_quiet_hours(quiet_hours, field):
    assert field in policy_error({"quiet_hours": quiet_hours})


def test_unquoted_yaml_times_are_refused_with_a_hint(tmp_path):
    # YAML 1.1 reads 22:00 as the number 1320; taken as seconds it would mean 00:22.
    path = write(tmp_path, "policy.yaml", "quiet_hours: {start: 22:00, end: 08:00}\n")

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert "quiet_hours.start" in str(caught.value)
    assert '"22:00"' in str(caught.value)


def test_several_problems_are_all_named():
    message = policy_error({"hotel_timezone": "Nowhere", "feedback_reminder_after": "soon"})

    assert "hotel_timezone" in message
    assert "feedback_reminder_after" in message


@pytest.mark.parametrize("data", [["PT72H"], "PT72H", 42])
def test_policy_that_is_not_a_mapping(data):
    assert "mapping" in policy_error(data)


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(missing)

    assert str(missing) in str(caught.value)
    assert "cannot read" in str(caught.value)


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path)


def test_file_that_is_not_text(tmp_path):
    path = write(tmp_path, "policy.yaml", b"\xff\xfe\x00binary\x81")

    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(path)


def test_invalid_yaml(tmp_path):
    path = write(tmp_path, "policy.yaml", "quiet_hours: {start: '22:00'\nhotels: [\n")

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert str(path) in str(caught.value)
    assert "not valid YAML" in str(caught.value)


def test_invalid_json(tmp_path):
    path = write(tmp_path, "policy.json", '{"hotel_timezone": "UTC",}')

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert "not valid JSON" in str(caught.value)


def test_file_errors_name_the_file_and_the_field(tmp_path):
    path = write(
        tmp_path, "policy.yaml", "hotels:\n  h1:\n    checkin_invite_before_arrival: banana\n"
    )

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "hotels.h1.checkin_invite_before_arrival" in message


def test_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


# -- helpers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "inside", "outside"),
    [
        (
            time(22),
            time(8),
            [time(22), time(23, 59), time(0), time(7, 59)],
            [time(8), time(12), time(21, 59)],
        ),
        (time(13), time(15), [time(13), time(14, 59)], [time(12, 59), time(15), time(23)]),
        (time(0), time(6), [time(0), time(5, 59)], [time(6), time(23, 59)]),
    ],
)
def test_quiet_hours_contains(start, end, inside, outside):
    quiet = QuietHours(start=start, end=end)

    assert all(quiet.contains(moment) for moment in inside)
    assert not any(quiet.contains(moment) for moment in outside)
    assert quiet.describe() == f"{start:%H:%M}-{end:%H:%M}"


def test_make_policy_overrides_one_field():
    policy = make_policy(hotel_timezone="Asia/Tokyo", checkin_reminders_before_arrival=["PT6H"])

    assert policy.timezone.key == "Asia/Tokyo"
    assert policy.checkin_reminders_before_arrival == [timedelta(hours=6)]
    assert policy.close_after_departure == timedelta(days=7)


def test_contract_example_parses_as_written():
    assert parse_policy(yaml.safe_load(CONTRACT_EXAMPLE)).for_hotel("any") == HotelPolicy()


def test_kpi_targets_are_the_runbooks_by_default_and_overridable_per_hotel(tmp_path):
    assert JourneyPolicy().kpi_targets.satisfaction_min == 4.5
    assert JourneyPolicy().kpi_targets.response_time_max.total_seconds() == 600
    path = write(tmp_path, "policy.yaml", "kpi_targets: {upsell_conversion_min: 0.2}\n"
                                          "hotels:\n  rio: {kpi_targets: {satisfaction_min: 8}}\n")
    rio = load_policy(path).for_hotel("rio").kpi_targets
    assert (rio.satisfaction_min, rio.upsell_conversion_min, rio.response_time_max_minutes) == (8, 0.2, 10)
    with pytest.raises(PolicyError, match=r"hotels\.rio\.kpi_targets\.satisfaction_min"):
        load_policy(write(tmp_path, "bad.yaml", "hotels:\n  rio: {kpi_targets: {satisfaction_min: 11}}\n"))
    with pytest.raises(PolicyError, match=r"kpi_targets\.nps_min"):
        load_policy(write(tmp_path, "unknown.yaml", "kpi_targets: {nps_min: 30}\n"))


# -- quiet hours per kind of message ----------------------------------------------


def test_a_policy_of_an_earlier_release_gets_the_documented_per_kind_default(tmp_path):
    """`quiet_hours: {start, end}` still loads: offers and feedback wait for the end of
    quiet hours as before; check-in messages wait at most until two hours before arrival."""
    quiet = load_policy(write(tmp_path, "policy.yaml", 'quiet_hours: {start: "22:00", end: "08:00"}\n')).quiet_hours
    assert quiet is not None
    assert quiet.arrival_margin == timedelta(hours=2)
    assert {kind: str(quiet.rule(kind)) for kind, _ in quiet.messages} == {
        "checkin_invitation": "arrival_margin",
        "checkin_reminder": "arrival_margin",
        "upsell": "wait",
        "upsell_follow_up": "wait",
        "guest_post_stay_feedback": "wait",
        "feedback_reminder": "wait",
    }
    assert load_policy(write(tmp_path, "none.yaml", "quiet_hours: null\n")).quiet_hours is None


def test_quiet_hours_per_kind_in_yaml_and_per_hotel(tmp_path):
    path = write(tmp_path, "policy.yaml", """\
quiet_hours:
  start: "21:00"
  end: "09:00"
  arrival_margin: PT4H
  messages:
    checkin_reminder: wait
    feedback_reminder: send
hotels:
  rio:
    quiet_hours: {messages: {upsell: send}}
""")
    loaded = load_policy(path)
    rio = loaded.for_hotel("rio").quiet_hours
    assert rio is not None
    assert (rio.start, rio.end, rio.arrival_margin) == (time(21), time(9), timedelta(hours=4))
    assert [str(rio.rule(kind)) for kind in ("checkin_invitation", "checkin_reminder", "upsell", "feedback_reminder")] \
        == ["arrival_margin", "wait", "send", "send"]
    other = loaded.for_hotel("sp").quiet_hours
    assert other is not None and str(other.rule("upsell")) == "wait"


def test_bad_quiet_hours_rules_name_the_kind():
    assert "quiet_hours.messages.upsell: arrival_margin is for the check-in messages" in policy_error(
        {"quiet_hours": {"start": "22:00", "end": "08:00", "messages": {"upsell": "arrival_margin"}}}
    )
    assert "quiet_hours.messages.checkin_invitation: Input should be 'wait', 'arrival_margin' or 'send'" in policy_error(
        {"quiet_hours": {"start": "22:00", "end": "08:00", "messages": {"checkin_invitation": "later"}}}
    )
    assert "quiet_hours.messages.close: Extra inputs are not permitted" in policy_error(
        {"quiet_hours": {"start": "22:00", "end": "08:00", "messages": {"close": "wait"}}}
    )
