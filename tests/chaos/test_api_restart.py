"""The API killed with SIGKILL while `PUT /reservations/{id}` requests are in
flight, and started again: every PUT answered 2xx has its journey, and a
request cut off by the kill, repeated with its Idempotency-Key, gets one."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from guest_journey.journeys import workflow_id_for
from tests.chaos.faults import Clock
from tests.chaos.processes import (
    WORKER_READY,
    Processes,
    TemporalServerProcess,
    free_ports,
    service_environment,
    wait_until,
)
from tests.chaos.short_policy import HOTEL_ID, new_reservation_id
from tests.chaos.size import ChaosSize, chaos_size


def _reservation_body(index: int) -> dict[str, Any]:
    arrival = (datetime.now(UTC) + timedelta(days=2, minutes=index)).replace(microsecond=0)
    return {
        "hotel_id": HOTEL_ID,
        "guest": {"name": "Ana Souza", "email": f"guest{index}@example.com", "language": "pt-BR"},
        "arrival": arrival.isoformat(),
        "departure": (arrival + timedelta(days=3)).isoformat(),
    }


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_api_killed_mid_requests_answers_2xx_only_with_a_journey(
    temporal: TemporalServerProcess,
    database_url: str,
    processes: Processes,
    size: ChaosSize,
    chaos_random: random.Random,
    tmp_path: Path,
) -> None:
    (api_port,) = free_ports(1)
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text("quiet_hours: null\n")
    env = service_environment(
        data_dir=tmp_path / "data", temporal_address=temporal.address, database_url=database_url,
        api_port=api_port, policy_file=policy_file,
    )
    worker = processes.worker(env)
    worker.start()
    await worker.wait_for_log(WORKER_READY)  # its tables exist before the API opens the database
    api = processes.api(port=api_port, env=env)
    api.start()
    await api.wait_healthy()

    count = size.reservations_put
    reservation_ids = [new_reservation_id("API") for _ in range(count)]
    answers: dict[str, int] = {}  # the first 2xx of each reservation
    cut_off: Counter[str] = Counter()  # requests that got no answer (the API died under them)
    cut_off_claims: Counter[str] = Counter()  # repeats told 409 + Retry-After: a cut-off request held the key
    refused: dict[str, str] = {}  # non-2xx answers
    in_flight: set[str] = set()
    api_up = asyncio.Event()
    api_up.set()
    gate = asyncio.Semaphore(size.puts_in_flight)
    kill_after = chaos_random.randint(count // 5, count // 2)
    clock = Clock()

    async def put_until_answered(http: httpx.AsyncClient, index: int) -> None:
        rid = reservation_ids[index]
        body = _reservation_body(index)
        async with gate:
            while True:
                await api_up.wait()
                in_flight.add(rid)
                try:
                    response = await http.put(
                        f"/reservations/{rid}", json=body, headers={"Idempotency-Key": f"chaos-{rid}"}
                    )
                except httpx.TransportError:
                    cut_off[rid] += 1
                    continue  # once the API is back, the same request again
                finally:
                    in_flight.discard(rid)
                if response.status_code == 409 and "retry-after" in response.headers:
                    # The killed API's claim on the key: free once its lease runs out.
                    cut_off_claims[rid] += 1
                    await asyncio.sleep(float(response.headers["retry-after"]))
                    continue
                if response.is_success:
                    answers[rid] = response.status_code
                else:
                    refused[rid] = f"{response.status_code} {response.text}"
                return

    async def kill_and_restart_api() -> int:
        await wait_until(lambda: len(answers) >= kill_after, timeout=size.deadline.total_seconds(),
                         what=f"{kill_after} PUTs answered", details=processes.logs)
        api_up.clear()
        in_flight_at_kill = len(in_flight)
        api.kill()
        print(f"{clock():7.1f} s  API killed (SIGKILL) after {len(answers)} answers, "
              f"{in_flight_at_kill} requests in flight")
        api.start()
        await api.wait_healthy()
        api_up.set()
        print(f"{clock():7.1f} s  API healthy again")
        return in_flight_at_kill

    async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
        try:
            in_flight_at_kill, *_ = await asyncio.gather(
                kill_and_restart_api(), *(put_until_answered(http, index) for index in range(count))
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{processes.logs()}") from None
        print(f"{clock():7.1f} s  {len(answers)} PUTs answered; {sum(cut_off.values())} requests cut off "
              f"by the kill, on {len(cut_off)} reservations; {sum(cut_off_claims.values())} repeats waited "
              "for a cut-off request's claim on its Idempotency-Key to lapse")

        assert refused == {}
        assert set(cut_off_claims) <= set(cut_off)  # only a request the kill cut off leaves its key claimed
        assert sorted(answers) == sorted(reservation_ids)  # every reservation got its journey in the end
        assert in_flight_at_kill > 0 and cut_off, "the kill cut off no request in flight"
        # A reservation whose one request was answered started its journey then (201);
        # one whose request was cut off may have had it started by the killed API (200).
        assert {rid: status for rid, status in answers.items() if rid not in cut_off} == {
            rid: 201 for rid in reservation_ids if rid not in cut_off
        }
        assert {status for rid, status in answers.items() if rid in cut_off} <= {200, 201}

        client = await temporal.client()
        reads = asyncio.Semaphore(size.puts_in_flight)

        async def journey_problem(rid: str) -> str | None:
            async with reads:
                response = await http.get(f"/guest-experience/{rid}")
                description = await client.get_workflow_handle(workflow_id_for(rid)).describe()
            if response.status_code != 200 or response.json()["reservation_id"] != rid:
                return f"{rid}: GET /guest-experience answered {response.status_code} {response.text}"
            if description.status is not WorkflowExecutionStatus.RUNNING:
                return f"{rid}: journey {description.status}"
            return None

        problems = [p for p in await asyncio.gather(*(journey_problem(rid) for rid in answers)) if p]
    assert not problems, "\n".join(problems)
