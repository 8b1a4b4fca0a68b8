"""Providers that take a message and lose their answer: WhatsApp answering after
the worker's client timeout, or 200 without a message id, with or without its
status webhooks afterwards; an SMTP server dropping the connection after DATA.

Every guest can be reached on both channels, the faulty one first, so that a
step sent again on the other channel counts as a duplicate too. For every
(reservation, step): received exactly once, or in doubt for staff (received
or not), never twice, never lost; and "received, in doubt" only where no
status report could tell (docs/chaos.md)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from guest_journey.reservations import Channel
from tests.chaos.databases import migrate, outbound_statuses
from tests.chaos.faults import Clock
from tests.chaos.journeys import journey_problems, start_journeys, step_summary, wait_for_results
from tests.chaos.outcomes import Outcome, broken, count, report, step_outcomes
from tests.chaos.processes import (
    WHATSAPP_ACCESS_TOKEN,
    Processes,
    TemporalServerProcess,
    free_ports,
    service_environment,
    start_worker_and_api,
)
from tests.chaos.short_policy import (
    FAST_DELIVERY,
    SECOND,
    guest_email,
    quick_stay,
    quick_stay_policy,
)
from tests.chaos.size import ChaosSize, chaos_size
from tests.chaos.smtp_stand_in import SmtpAnswer, SmtpStandIn
from tests.chaos.whatsapp_stand_in import Answer, WhatsAppStandIn

TASK_QUEUE = "guest-journey"
APP_SECRET = "chaos-app-secret"
WHATSAPP_TIMEOUT = 1.5  # the worker's client timeout, shortened (GUEST_JOURNEY_WHATSAPP_TIMEOUT_SECONDS)
LATE_BY = WHATSAPP_TIMEOUT + 1.5  # a late answer comes after the worker stopped listening
REPORT_WITHIN = 2.0  # a status webhook follows its message within this many seconds...
WAIT_FOR_STATUS = 3 * SECOND  # ...well within what the worker waits for it (from the timeout on)
DELIVERY = FAST_DELIVERY.model_copy(update={"wait_for_provider_status": WAIT_FOR_STATUS})


@dataclass(frozen=True)
class LostAnswer:
    name: str
    fault: Channel  # the guest's first channel, the one whose answer is lost
    whatsapp: Answer = Answer.at_once
    reports: bool = True  # WhatsApp's status webhooks follow
    smtp: SmtpAnswer = SmtpAnswer.accept

    @property
    def no_report_can_tell(self) -> bool:
        """The provider took it, its answer was lost, and nothing will say so later."""
        return self.smtp is SmtpAnswer.drop_after_data or not self.reports

    @property
    def channels(self) -> list[Channel]:
        """The guest's channels in order: the faulty one, then the other (which answers as it should)."""
        return [self.fault, Channel.email if self.fault is Channel.whatsapp else Channel.whatsapp]

    @property
    def allowed(self) -> frozenset[Outcome]:
        if self.no_report_can_tell:
            return frozenset({Outcome.in_doubt_received, Outcome.in_doubt_none_received, Outcome.not_sent})
        return frozenset({Outcome.received_once, Outcome.in_doubt_none_received, Outcome.not_sent})


SCENARIOS = (
    LostAnswer("WhatsApp answers after the client's timeout, then reports sent, delivered",
               Channel.whatsapp, whatsapp=Answer.late),
    LostAnswer("WhatsApp answers after the client's timeout, never reports", Channel.whatsapp,
               whatsapp=Answer.late, reports=False),
    LostAnswer("WhatsApp answers 200 without a message id, then reports sent, delivered",
               Channel.whatsapp, whatsapp=Answer.without_id),
    LostAnswer("WhatsApp answers 200 without a message id, never reports", Channel.whatsapp,
               whatsapp=Answer.without_id, reports=False),
    LostAnswer("SMTP server drops the connection after DATA", Channel.email, smtp=SmtpAnswer.drop_after_data),
)


def _phone(index: int) -> str:
    return f"+55119{index:08d}"


@pytest.mark.timeout(chaos_size().deadline.total_seconds() + 120)
async def test_lost_answers_are_never_sent_twice_and_never_lost(
    temporal: TemporalServerProcess,
    database_url: str,
    processes: Processes,
    size: ChaosSize,
    chaos_random: random.Random,
    tmp_path: Path,
) -> None:
    journey_count = size.lost_answer_journeys * len(SCENARIOS)
    scenario_of = {index: SCENARIOS[index % len(SCENARIOS)] for index in range(journey_count)}
    by_phone = {_phone(index).lstrip("+"): scenario for index, scenario in scenario_of.items()}
    by_email = {guest_email(index): scenario for index, scenario in scenario_of.items()}

    # A scenario's fault is on its own channel only: its other channel answers as it should.
    def whatsapp_answer(to: str) -> Answer:
        return by_phone[to].whatsapp

    def whatsapp_reports(to: str) -> bool:
        return by_phone[to].reports

    def smtp_answer(recipient: str) -> SmtpAnswer:
        return by_email[recipient].smtp

    clock = Clock()
    (api_port,) = free_ports(1)
    whatsapp = WhatsAppStandIn(
        access_token=WHATSAPP_ACCESS_TOKEN, answer=whatsapp_answer, webhooks=whatsapp_reports,
        late_by=LATE_BY, report_within=REPORT_WITHIN, rng=chaos_random,
        api_url=f"http://127.0.0.1:{api_port}", app_secret=APP_SECRET,
    )
    async with SmtpStandIn(answer=smtp_answer) as smtp, whatsapp:
        env = service_environment(
            data_dir=tmp_path / "data", temporal_address=temporal.address, database_url=database_url,
            smtp_port=smtp.port, whatsapp_api_base_url=whatsapp.base_url, api_port=api_port,
            whatsapp_app_secret=APP_SECRET, whatsapp_timeout=WHATSAPP_TIMEOUT,
        )
        await migrate(database_url)
        await start_worker_and_api(processes, env, api_port=api_port)
        print(f"{clock():7.1f} s  worker and API ready")
        client = await temporal.client()
        with processes.logs_on_failure():
            journeys = await start_journeys(
                client, task_queue=TASK_QUEUE, policy=quick_stay_policy(size, delivery=DELIVERY), count=journey_count,
                in_flight=size.starts_in_flight,
                reservation=lambda index: quick_stay(
                    "LOST", size, email=guest_email(index), phone=_phone(index),
                    preferred_channels=scenario_of[index].channels,
                ),
            )
            print(f"{clock():7.1f} s  {len(journeys)} journeys started, {size.lost_answer_journeys} per scenario")
            results = await wait_for_results(journeys, timeout=size.deadline.total_seconds() - clock())
        await whatsapp.wait_for_reports()
        print(f"{clock():7.1f} s  every journey finished\n{step_summary(results)}")
        print(f"WhatsApp took {len(whatsapp.taken)} messages, webhooks {whatsapp.webhook_counts}; "
              f"the SMTP server took {len(smtp.received)}, dropped {smtp.count(SmtpAnswer.drop_after_data)}")

        problems = journey_problems(results)
        assert not problems, "\n".join(problems)
        statuses = await outbound_statuses(database_url)
        received = [*smtp.received, *whatsapp.received]
        outcomes, strays = step_outcomes(results, received, statuses)
        assert not strays, f"received, but of no step: {strays}"
        index_of = {journey.reservation.reservation_id: index for index, journey in enumerate(journeys)}
        rows: dict[str, Counter[Outcome]] = {scenario.name: Counter() for scenario in SCENARIOS}
        wrong: list[str] = []
        for scenario in SCENARIOS:
            mine = [o for o in outcomes if scenario_of[index_of[o.reservation_id]] is scenario]
            rows[scenario.name] = count(mine)
            wrong += [f"{scenario.name}: {line}" for line in broken(mine, allowed=scenario.allowed)]
        print(report(rows))
        assert not wrong, "\n".join(wrong)
        for scenario in SCENARIOS:  # each fault met messages, and its answers were really lost
            met = rows[scenario.name][Outcome.in_doubt_received if scenario.no_report_can_tell
                                      else Outcome.received_once]
            assert met > 0, f"{scenario.name}: no step met the fault"
        assert whatsapp.webhook_counts.given_up == 0
        assert whatsapp.unauthorised == 0
