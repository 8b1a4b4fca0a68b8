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
