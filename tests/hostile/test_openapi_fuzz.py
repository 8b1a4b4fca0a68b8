"""Every route of `/openapi.json`, fuzzed by schemathesis with valid and invalid
input: never a 5xx, and every answer is one the schema declares (status code,
content type, body).

How it is set up, and why:

- The app runs in schemathesis's ASGI client (its own event loop, in a thread),
  with API keys configured; each operation is called with the key of the role
  it needs (`tests/api/test_auth_matrix.py` says which), so fuzzed input gets
  past the 401 to the handlers.
- A real worker runs the journeys, on this module's own time-skipping server
  (`env` is per module: nothing here shares a clock with other tests).
  Hypothesis runs in a thread while the test's event loop runs the worker.
- Random input rarely names a reservation that exists, so a share of the valid
  examples is aimed: at journeys started afresh for each operation, at stay
  dates near today, at a known template, at a signed unsubscribe link.
- At the end every journey the run started is cancelled (`DELETE`), then the
  worker stops and the module's test server goes with it.

`GUEST_JOURNEY_FUZZ_EXAMPLES` sets the examples per operation and generation
mode (default 50: about 20 s in all); see docs/hostile-input.md.
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
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from communications.templates import TemplateCatalogue
from guest_journey.guest_links import Purpose, make_token
from guest_journey.settings import Settings
from tests.api.test_auth_matrix import API_KEYS, KEYS, role_for

EXAMPLES = int(os.environ.get("GUEST_JOURNEY_FUZZ_EXAMPLES", "50"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
SEEDS_PER_OPERATION = 2
TEMPLATES = sorted(info.name for info in TemplateCatalogue.load().describe())
OFFSETS = ("Z", "-03:00", "+09:00", "+05:45")


def key_headers(path: str) -> dict[str, str]:
    role = role_for(path)
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


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
    headers = key_headers(operation.path)

    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            aim(case, data)
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
    })


async def test_every_route_answers_as_its_schema_says(env, worker, fuzz_settings: Settings) -> None:
    app = create_app(fuzz_settings)
    aim = Aim(fuzz_settings.resolved_secret_key())
    reservations = key_headers("/reservations")
    started: set[str] = set()
    failures: list[str] = []

    def run_all() -> None:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config())
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
