"""Every route of `/openapi.json`, fuzzed by schemathesis with valid and invalid
input and judged by every check schemathesis has (`schemathesis run -c all`):
never a 5xx; every answer one the schema declares (status code, content type,
headers, body); invalid input refused and valid input accepted; a method the
path does not take answered 405 with `Allow`; a keyed route refusing a missing
or wrong key.

How it is set up, and why:

- The app runs in schemathesis's ASGI client (its own event loop, in a thread),
  with API keys configured; each operation is called with the key of the role
  it needs (`tests/api/test_auth_matrix.py` says which), so fuzzed input gets
  past the 401 to the handlers; a case that leaves out or spoils the key goes
  as generated, and must be refused.
- A real worker runs the journeys, on this module's own time-skipping server
  (`env` is per module: nothing here shares a clock with other tests).
  Hypothesis runs in a thread while the test's event loop runs the worker.
- Two of schemathesis's phases run per operation: coverage (boundary values of
  every parameter and property, each one made invalid in turn, a missing
  required header, methods the path does not take) and generation
  (Hypothesis, valid and invalid). The stateful checks (`use_after_free`,
  `ensure_resource_availability`, `object_level_authorization`) are in the list
  too; they judge sequences of calls that the schema links, and it links none,
  so here they have nothing to find (docs/hostile-input.md).
- Valid input may still break a rule JSON Schema cannot state (departure after
  arrival, `until` after `since`, an unknown template) or meet a state conflict:
  the operations where that is so, and answer 422 for it as their `responses`
  say, are listed in `BUSINESS_RULES`, and only for them does
  `positive_data_acceptance` take a 422. `CONFIG` holds the rest of what the
  checks are told (413 for a body over the limit, 410 for an expired link, 503
  for readiness): docs/hostile-input.md says why, for each.
- Random input rarely names a reservation that exists, so a share of the valid
  examples is aimed: at journeys started afresh for each operation, at stay
  dates near today, at a known template, at a signed unsubscribe link.
- At the end every journey the run started is cancelled (`DELETE`), then the
  worker stops and the module's test server goes with it.

`GUEST_JOURNEY_FUZZ_EXAMPLES` sets the examples per operation and generation
mode (default 50: about 45 s in all, coverage cases included); see docs/hostile-input.md.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks
from schemathesis.generation.meta import negated_parameters
from schemathesis.python import asgi

from api.app import create_app
from communications.templates import TemplateCatalogue
from guest_journey.guest_links import Purpose, make_token
from guest_journey.settings import Settings
from tests.api.test_auth_matrix import API_KEYS, KEYS, role_for

EXAMPLES = int(os.environ.get("GUEST_JOURNEY_FUZZ_EXAMPLES", "50"))
load_all_checks()
# Every check schemathesis has, as `schemathesis run -c all` runs them (class-based checks judge whole runs).
CHECKS = [check for check in REGISTERED_CHECKS.get_all() if not isinstance(check, type)]
# Operations whose schema-valid input may break a rule JSON Schema cannot state, or meet a state the
# request cannot know, answered 422 as their `responses` say: why, for each (docs/hostile-input.md).
BUSINESS_RULES = {
    "PUT /reservations/{reservation_id}": "departure after arrival; a language Babel knows; in hotel scope, "
    "hotel and reservation ids of at most 128 characters together; an Idempotency-Key reused for another body",
    "POST /communications/send": "a template of the catalogue, on a channel it has, given only the context "
    "keys it takes; an Idempotency-Key reused for another body",
    "GET /communications/delivery/summary": "`until` after `since`",
    "POST /reservations/{reservation_id}/events": "an event the journey can take: no no-show once the guest "
    "checked in",
}
# A signed link that has expired is gone (410), as a reservation that does not exist is 404.
EXPIRING_LINKS = ("GET /guest/{token}/unsubscribe", "POST /guest/{token}/unsubscribe")
# Readiness answers 503 while a dependency is missing: here the time-skipping test server cannot list
# the task queue's pollers (DescribeTaskQueue), so the workers check is always "unknown".
READINESS = ("GET /health/ready", "GET /health/otel")
# schemathesis's defaults, and 413: a body over the limit (64 KiB; more on the WhatsApp webhook and the
# codec) is refused whatever it says, and JSON Schema cannot state a size in bytes (20,000 characters of
# `body` may be 80 KB of UTF-8).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx", "413"]
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "415", "422", "428", "429", "5xx", "413"]


def accepting(*statuses: str) -> dict[str, Any]:
    return {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, *statuses]}}


CONFIG = schemathesis.Config.from_dict({
    "checks": {**accepting(), "negative_data_rejection": {"expected-statuses": REJECTED}},
    "operations": [
        *({"include-name": name, "checks": accepting("422")} for name in BUSINESS_RULES),
        *({"include-name": name, "checks": accepting("410")} for name in EXPIRING_LINKS),
        *({"include-name": name, "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503"]}}}
          for name in READINESS),
    ],
})
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SEEDS_PER_OPERATION = 2
TEMPLATES = sorted(info.name for info in TemplateCatalogue.load().describe())
OFFSETS = ("Z", "-03:00", "+09:00", "+05:45")


def key_headers(path: str) -> dict[str, str]:
    role = role_for(path)
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


def case_headers(case: schemathesis.Case) -> dict[str, str]:
    """The key of the operation's role, unless the case is about the key itself (left out or wrong): then
    the case goes as generated, and must be refused."""
    if any(name.lower() == "authorization" for name, _ in negated_parameters(case.meta)):
        return {}
    return key_headers(case.operation.path)


def stay_body(arrive_in: timedelta, nights: int = 2) -> dict[str, Any]:
    arrival = datetime.now(UTC) + arrive_in
    return {
        "hotel_id": "fuzz-hotel",
        "guest": {"name": "Ana Souza", "email": "ana@example.com", "marketing_consent": True},
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=nights)).isoformat(),
    }


class Aim:
    """Points a share of the valid examples at what exists in this run."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.seeded: list[str] = []  # journeys started for the operation under test

    def __call__(self, case: schemathesis.Case, data: st.DataObject) -> None:
        def sometimes() -> bool:
            return data.draw(st.booleans())

        if "reservation_id" in (case.path_parameters or {}) and sometimes():
            case.path_parameters["reservation_id"] = data.draw(st.sampled_from(self.seeded))
        if "token" in (case.path_parameters or {}) and sometimes():
            expires = datetime.now(UTC) + timedelta(days=data.draw(st.integers(-2, 30)))
            case.path_parameters["token"] = make_token(
                self.secret, data.draw(st.sampled_from(self.seeded)), Purpose.unsubscribe, expires)
        body = case.body
        if not isinstance(body, dict):
            return
        if "reservation_id" in body and sometimes():
            body["reservation_id"] = data.draw(st.sampled_from(self.seeded))
        if "template" in body and sometimes():
            body["template"] = data.draw(st.sampled_from(TEMPLATES))
            body["channel"] = None
            # Only what staff may give (any other context key is refused with 422).
            body["context"] = {"body": data.draw(st.text(min_size=1, max_size=300)), "upsell_offer": "room_upgrade"}
        if "arrival" in body and "departure" in body and sometimes():
            arrival = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=data.draw(st.integers(-72, 2000)))
            departure = arrival + timedelta(hours=data.draw(st.integers(1, 24 * 40)))
            offset = data.draw(st.sampled_from(OFFSETS))
            body["arrival"] = arrival.isoformat().replace("+00:00", "") + offset
            body["departure"] = departure.isoformat().replace("+00:00", "") + offset


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, aim: Aim, started: set[str]) -> str | None:
    """Run one operation's examples; its first failure, described, or None."""

    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            aim(case, data)
        headers = case_headers(case)
        response = case.call(headers=headers)
        if operation.method.upper() == "PUT" and response.status_code in (200, 201):
            started.add(response.json()["reservation_id"])
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid: no parameters, no body
        return None
    except (Exception, BaseExceptionGroup) as error:  # the failure, with the smallest example found
        return f"{operation.method.upper()} {operation.path} ({mode.value}): {error}"
    return None


def cover(operation: schemathesis.APIOperation, started: set[str]) -> list[str]:
    """Run the operation's coverage cases; each distinct failure, described."""
    schema = operation.schema
    generation = schema.config.generation_for(operation=operation, phase="coverage")
    failures: dict[str, str] = {}
    for case in schema.iter_coverage_cases(operation, generation_modes=list(MODES), generation_config=generation):
        headers = case_headers(case)
        response = case.call(headers=headers)
        if case.method.upper() == "PUT" and response.status_code in (200, 201):
            started.add(response.json()["reservation_id"])
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as error:
            failures.setdefault(str(error).partition("\n\n")[0], f"{operation.label} (coverage): {error}")
    return list(failures.values())


@pytest.fixture
def fuzz_settings(api_settings: Settings) -> Settings:
    return api_settings.model_copy(update={
        "api_keys": API_KEYS,
        "whatsapp_app_secret": SecretStr("fuzz-app-secret"),
        "whatsapp_verify_token": SecretStr("fuzz-verify-token"),
        # Input handling is under test here, not rate limits (tests/api has those): none.
        "rate_limit_guest_per_minute": 0,
        "rate_limit_whatsapp_webhook_per_minute": 0,
        "rate_limit_webhook_per_minute": 0,
        "rate_limit_login_per_minute": 0,
        "rate_limit_api_key_per_minute": 0,
        "rate_limit_failed_key_per_minute": 0,  # ignored_auth sends wrong keys on every keyed route
    })


async def test_every_route_answers_as_its_schema_says(env, worker, fuzz_settings: Settings) -> None:
    app = create_app(fuzz_settings)
    aim = Aim(fuzz_settings.resolved_secret_key())
    reservations = key_headers("/reservations")
    started: set[str] = set()
    failures: list[str] = []

    def run_all() -> None:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
        with asgi.get_client(app) as client:
            try:
                for number, result in enumerate(schema.get_all_operations()):
                    operation = result.ok()
                    aim.seeded = [f"FUZZ-{number}-{seed}" for seed in range(SEEDS_PER_OPERATION)]
                    for rid in aim.seeded:
                        answer = client.put(f"/reservations/{rid}", json=stay_body(timedelta(days=4)),
                                            headers=reservations)
                        assert answer.status_code == 201, answer.text
                        started.add(rid)
                    failures.extend(cover(operation, started))
                    for mode in MODES:
                        failure = fuzz(operation, mode, aim, started)
                        if failure:
                            failures.append(failure)
            finally:
                for rid in sorted(started):
                    client.delete(f"/reservations/{rid}", headers=reservations)
                asgi.shutdown_lifespans()

    async with worker():
        await asyncio.to_thread(run_all)

    assert not failures, "\n\n".join(failures)
