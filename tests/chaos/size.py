"""How big a chaos run is: reduced for CI, full with `GUEST_JOURNEY_CHAOS=full`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

SECOND = timedelta(seconds=1)
SIZE_VARIABLE = "GUEST_JOURNEY_CHAOS"
SEED_VARIABLE = "GUEST_JOURNEY_CHAOS_SEED"


@dataclass(frozen=True)
class ChaosSize:
    name: str
    # worker kills (scenario 1)
    journeys: int
    worker_kills: int
    smtp_outage: timedelta
    # Temporal dev server killed (scenario 2)
    journeys_through_server_kill: int
    # WhatsApp provider failing (scenario 3)
    whatsapp_journeys: int
    whatsapp_outage: timedelta
    # API killed (scenario 4)
    reservations_put: int
    puts_in_flight: int
    # a provider's answer lost (issue 12): journeys per kind of lost answer
    lost_answer_journeys: int
    # the database busy while hand-overs are recorded: journeys, lock episodes, each held so long
    busy_database_journeys: int
    database_busy_episodes: int
    database_busy: timedelta
    # SIGTERM to the worker while the SMTP server answers slowly
    sigterm_journeys: int
    worker_sigterms: int
    slow_smtp_answer: timedelta
    # the stays of those three: booking -> arrival, arrival -> departure, departure -> close
    quick_lead: timedelta
    quick_stay: timedelta
    quick_close_after: timedelta
    # concurrency of the test's own journey starts
    starts_in_flight: int
    # the short stays: booking -> arrival, arrival -> departure, departure -> close
    lead: timedelta
    stay: timedelta
    close_after: timedelta
    # how long a whole scenario may take before the test fails
    deadline: timedelta


REDUCED = ChaosSize(
    name="reduced",
    journeys=30,
    worker_kills=2,
    smtp_outage=4 * SECOND,
    journeys_through_server_kill=20,
    whatsapp_journeys=10,
    whatsapp_outage=4 * SECOND,
    reservations_put=40,
    puts_in_flight=8,
    lost_answer_journeys=4,
    busy_database_journeys=12,
    database_busy_episodes=2,
    database_busy=3 * SECOND,
    sigterm_journeys=12,
    worker_sigterms=1,
    slow_smtp_answer=1 * SECOND,
    quick_lead=6 * SECOND,
    quick_stay=5 * SECOND,
    quick_close_after=3 * SECOND,
    starts_in_flight=10,
    lead=10 * SECOND,
    stay=8 * SECOND,
    close_after=6 * SECOND,
    deadline=120 * SECOND,
)

FULL = ChaosSize(
    name="full",
    journeys=500,
    worker_kills=5,
    smtp_outage=30 * SECOND,
    journeys_through_server_kill=200,
    whatsapp_journeys=100,
    whatsapp_outage=30 * SECOND,
    reservations_put=400,
    puts_in_flight=16,
    lost_answer_journeys=40,
    busy_database_journeys=150,
    database_busy_episodes=8,
    database_busy=5 * SECOND,
    sigterm_journeys=150,
    worker_sigterms=3,
    slow_smtp_answer=5 * SECOND,
    quick_lead=40 * SECOND,
    quick_stay=30 * SECOND,
    quick_close_after=20 * SECOND,
    starts_in_flight=16,
    lead=40 * SECOND,
    stay=30 * SECOND,
    close_after=20 * SECOND,
    deadline=900 * SECOND,
)


def chaos_size() -> ChaosSize:
    """`GUEST_JOURNEY_CHAOS=full` selects the full size; unset, the reduced one."""
    value = os.environ.get(SIZE_VARIABLE, "").strip().lower()
    if value in ("", "reduced"):
        return REDUCED
    if value == "full":
        return FULL
    raise ValueError(f"{SIZE_VARIABLE}={value!r}: use 'full', or leave it unset for the reduced size")


def chaos_seed(default: int) -> int:
    """The seed of the random kill moments: `GUEST_JOURNEY_CHAOS_SEED` replays a run."""
    value = os.environ.get(SEED_VARIABLE)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{SEED_VARIABLE}={value!r} is not an integer") from None
