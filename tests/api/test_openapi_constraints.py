"""The schema states the rules the server enforces (issue 11, item 7): a value the
schema takes, the server takes; a value the server refuses, the schema refuses
too (the schema may be narrower: it names one spelling of a moment or a phone).
And every answer a route may give is declared, the rate limit's 429 too."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest
from pydantic import TypeAdapter, ValidationError

from guest_journey.reservations import LanguageTag, Moment, Phone
from guest_journey.settings import Settings
from services.journey_snapshots import GuestJourneySnapshot
from tests.api.conftest import app_client


def schema_takes(schema: dict[str, Any], value: object) -> bool:
    return jsonschema_rs.validator_for(schema, validate_formats=True).is_valid(value)


def server_takes(annotation: object, value: object) -> bool:
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("value", "taken"), [
    ("2027-01-10T14:00:00-03:00", True),
    ("2000-01-01T00:00:00Z", True),
    ("2199-12-31T23:59:59.123456+14:00", True),
    ("2027-01-10T14:00:00-12:00", True),
    ("2027-01-10T14:00:00+05:45", True),
    ("1999-12-31T23:59:59Z", False),  # before 2000
    ("2200-01-01T00:00:00Z", False),  # after 2199
    ("2027-01-10T14:00:00-12:30", False),  # an offset no place uses
    ("2027-01-10T14:00:00+14:30", False),
    ("2027-01-10T14:00:00", False),  # no offset
    ("2027-02-30T14:00:00Z", False),  # a day February has not
])
def test_a_moment_the_schema_takes_is_one_the_server_takes(value: str, taken: bool) -> None:
    schema = TypeAdapter(Moment).json_schema()

    assert (schema_takes(schema, value), server_takes(Moment, value)) == (taken, taken)


@pytest.mark.parametrize(("value", "taken"), [
    ("+5511999990000", True),
    ("+55 (21) 99999-0000", True),
    ("+1.415.555.0100", True),
    ("5511999990000", False),  # no +
    ("+0511999990000", False),  # no country code starts with 0
    ("+12345", False),  # too short
    ("+1234567890123456", False),  # too long
])
def test_a_phone_the_schema_takes_is_one_the_server_takes(value: str, taken: bool) -> None:
    assert (schema_takes(TypeAdapter(Phone).json_schema(), value), server_takes(Phone, value)) == (taken, taken)


def test_a_language_the_server_takes_has_the_schema_s_shape() -> None:
    schema = TypeAdapter(LanguageTag).json_schema()

    for tag in ("en", "pt-BR", "pt_br", "zh-Hant-TW"):
        assert schema_takes(schema, tag) and server_takes(LanguageTag, tag), tag
    for tag in ("", "e", "pt BR", "pt-"):
        assert not schema_takes(schema, tag) and not server_takes(LanguageTag, tag), tag


@pytest.mark.parametrize(("snapshot", "taken"), [
    ({"reservation_id": "R1", "nps": 9}, True),
    ({"reservation_id": "R1", "stage": "in_stay"}, True),
    ({"reservation_id": "R1", "preferences": {"pillow": "firm"}}, True),
    ({"reservation_id": "R1"}, False),  # says nothing
    ({"reservation_id": "R1", "preferences": None, "stage": None, "nps": None}, False),
    ({"reservation_id": "R1", "nps": False}, False),  # false is not a score
    ({"reservation_id": "R1", "nps": 7.0}, True),  # JSON Schema's integer
    ({"reservation_id": "R1", "nps": 7.5}, False),
    ({"reservation_id": "R1", "nps": "7"}, False),
    ({"reservation_id": "R1", "preferences": {f"p{n}": n for n in range(101)}}, False),  # too many
])
def test_a_snapshot_the_schema_takes_is_one_the_server_takes(snapshot: dict[str, Any], taken: bool) -> None:
    schema = GuestJourneySnapshot.model_json_schema()

    assert (schema_takes(schema, snapshot), server_takes(GuestJourneySnapshot, snapshot)) == (taken, taken)


async def test_a_wrong_key_is_answered_as_every_route_declares(api_settings: Settings) -> None:
    settings = api_settings.model_copy(update={
        "api_keys": "k-ops-constraints-0123456789:ops", "rate_limit_failed_key_per_minute": 2,
    })
    wrong = {"Authorization": "Bearer k-not-ours-0123456789"}
    async for client in app_client(settings):
        document = (await client.get("/openapi.json")).json()
        metrics = await client.get("/metrics", headers=wrong)
        health = [await client.get("/health/live", headers=wrong) for _ in range(2)]

    assert metrics.status_code == 401
    assert "401" in document["paths"]["/metrics"]["get"]["responses"]
    assert [answer.status_code for answer in health] == [200, 429]
    assert health[-1].headers["retry-after"].isdigit()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = operation["responses"].get("429")
            assert declared and "Retry-After" in declared["headers"], f"{method.upper()} {path}"
