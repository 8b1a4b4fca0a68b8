"""The guest-experience KPIs of the runbook, as pure arithmetic.

Scales: satisfaction is the average feedback score (0-10); NPS runs from -100
to 100; upsell conversion, check-in adoption and failure rate are fractions
(0.18 is 18 %); response times are minutes. Every function answers None when
it has nothing to measure (no scores, no offers, no journeys), so that an
empty window is never mistaken for a zero.

Targets are the policy's (`guest_journey.policy.KpiTargets`, per hotel; by
default the runbook's "KPIs e Alertas": satisfaction >= 4.5, average response
time <= 10 minutes, upsell conversion >= 18 %, failure rate <= 5 %). A trend
alert fires when a KPI got worse in each of the last three consecutive windows
(`declining`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from guest_journey.policy import KpiTargets

PROMOTER_MIN = 9
DETRACTOR_MAX = 6
TREND_WINDOWS = 3
DIGITS = 4


class Kpi(StrEnum):
    satisfaction = "satisfaction_avg"
    nps = "nps"
    upsell_conversion = "upsell_conversion"
    avg_response_time = "avg_response_time_minutes"
    failure_rate = "failure_rate"
    checkin_adoption = "checkin_adoption"


@dataclass(frozen=True)
class KpiRule:
    """Which way is better for a KPI, and which of the policy's targets it is held to (if any)."""

    kpi: Kpi
    higher_is_better: bool
    target_field: str | None = None

    def target(self, targets: KpiTargets) -> float | None:
        return None if self.target_field is None else float(getattr(targets, self.target_field))

    def breached(self, value: float | None, targets: KpiTargets) -> bool:
        """True when a measured value misses its target; an unmeasured one, or a KPI without a target, never does."""
        target = self.target(targets)
        if value is None or target is None:
            return False
        return value < target if self.higher_is_better else value > target


RULES: dict[Kpi, KpiRule] = {
    Kpi.satisfaction: KpiRule(Kpi.satisfaction, higher_is_better=True, target_field="satisfaction_min"),
    Kpi.nps: KpiRule(Kpi.nps, higher_is_better=True),
    Kpi.upsell_conversion: KpiRule(Kpi.upsell_conversion, higher_is_better=True, target_field="upsell_conversion_min"),
    Kpi.avg_response_time: KpiRule(Kpi.avg_response_time, higher_is_better=False,
                                   target_field="response_time_max_minutes"),
    Kpi.failure_rate: KpiRule(Kpi.failure_rate, higher_is_better=False, target_field="failure_rate_max"),
    Kpi.checkin_adoption: KpiRule(Kpi.checkin_adoption, higher_is_better=True),
}


def _check_score(score: int) -> int:
    if not 0 <= score <= 10:
        raise ValueError(f"a score is 0-10, not {score}")
    return score


def net_promoter_score(*, promoters: int, detractors: int, responses: int) -> float | None:
    """% promoters (9-10) minus % detractors (0-6), from counts; None without responses."""
    if responses <= 0:
        return None
    if promoters < 0 or detractors < 0 or promoters + detractors > responses:
        raise ValueError("promoters and detractors must be parts of the responses")
    return round(100.0 * (promoters - detractors) / responses, DIGITS)


def nps(scores: Iterable[int]) -> float | None:
    """The NPS of a set of 0-10 scores."""
    checked = [_check_score(score) for score in scores]
    return net_promoter_score(
        promoters=sum(1 for score in checked if score >= PROMOTER_MIN),
        detractors=sum(1 for score in checked if score <= DETRACTOR_MAX),
        responses=len(checked),
    )


def average_score(scores: Iterable[int]) -> float | None:
    """The satisfaction KPI: the mean of 0-10 scores."""
    checked = [_check_score(score) for score in scores]
    return round(sum(checked) / len(checked), DIGITS) if checked else None


def ratio(part: int, whole: int) -> float | None:
    """`part / whole`, None when there is no whole."""
    if whole <= 0:
        return None
    if not 0 <= part <= whole:
        raise ValueError(f"{part} is not a part of {whole}")
    return round(part / whole, DIGITS)


def upsell_conversion(*, offered: int, accepted: int) -> float | None:
    """Accepted offers over offers sent (an offer answered either way was sent)."""
    return ratio(accepted, offered)


def checkin_adoption(*, completed: int, past_arrival: int) -> float | None:
    """Digital check-ins completed over journeys whose arrival has come."""
    return ratio(completed, past_arrival)


def failure_rate(*, failed: int, total: int) -> float | None:
    return ratio(failed, total)


def average_response_minutes(response_times: Iterable[timedelta]) -> float | None:
    """The mean of response times, in minutes."""
    minutes = [delta.total_seconds() / 60.0 for delta in response_times]
    if any(value < 0 for value in minutes):
        raise ValueError("a reply cannot come before the message it answers")
    return round(sum(minutes) / len(minutes), 2) if minutes else None


def declining(
    values: Sequence[float | None], windows: int = TREND_WINDOWS, *, higher_is_better: bool = True
) -> bool:
    """True when the KPI got worse in each of the last `windows` consecutive windows.

    `values` are oldest first. Each of the last `windows` values must be
    strictly worse than the one before it (lower, or higher when lower is
    better), so `windows + 1` values are needed. A flat window, a rebound or a
    window without a value breaks the trend.
    """
    if windows < 1:
        raise ValueError("windows must be at least 1")
    if len(values) < windows + 1:
        return False
    tail = values[-(windows + 1):]
    for before, after in zip(tail, tail[1:], strict=False):
        if before is None or after is None:
            return False
        if not (after < before if higher_is_better else after > before):
            return False
    return True
