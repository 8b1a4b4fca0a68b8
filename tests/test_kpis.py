"""The runbook's KPI arithmetic on known figures."""

from __future__ import annotations

from datetime import timedelta

import pytest

from guest_journey import kpis
from guest_journey.kpis import RULES, Kpi
from guest_journey.policy import KpiTargets


def test_nps_is_promoters_minus_detractors_in_percent():
    # 4 promoters (9, 10, 9, 10), 3 passives (7, 8, 8), 3 detractors (0, 6, 3)
    scores = [9, 10, 9, 10, 7, 8, 8, 0, 6, 3]
    assert kpis.nps(scores) == pytest.approx(10.0)
    assert kpis.nps([10, 10]) == 100.0
    assert kpis.nps([0, 6]) == -100.0
    assert kpis.nps([7, 8]) == 0.0
    assert kpis.nps([]) is None
    assert kpis.net_promoter_score(promoters=1, detractors=2, responses=3) == pytest.approx(-33.3333)


def test_scores_outside_0_to_10_are_refused():
    with pytest.raises(ValueError, match="0-10"):
        kpis.nps([11])
    with pytest.raises(ValueError, match="0-10"):
        kpis.average_score([-1])


def test_satisfaction_is_the_mean_score():
    assert kpis.average_score([10, 8, 3]) == pytest.approx(7.0)
    assert kpis.average_score([4, 5]) == 4.5
    assert kpis.average_score([]) is None


def test_upsell_conversion_is_accepted_over_offers_sent():
    assert kpis.upsell_conversion(offered=50, accepted=9) == 0.18
    assert kpis.upsell_conversion(offered=3, accepted=1) == pytest.approx(0.3333)
    assert kpis.upsell_conversion(offered=0, accepted=0) is None
    with pytest.raises(ValueError):
        kpis.upsell_conversion(offered=2, accepted=3)


def test_checkin_adoption_and_failure_rate_are_shares():
    assert kpis.checkin_adoption(completed=3, past_arrival=4) == 0.75
    assert kpis.checkin_adoption(completed=0, past_arrival=0) is None
    assert kpis.failure_rate(failed=1, total=20) == 0.05


def test_average_response_time_in_minutes():
    times = [timedelta(minutes=8), timedelta(minutes=20), timedelta(seconds=90)]
    assert kpis.average_response_minutes(times) == pytest.approx(9.83, abs=0.01)
    assert kpis.average_response_minutes([]) is None
    with pytest.raises(ValueError):
        kpis.average_response_minutes([timedelta(minutes=-1)])


def test_targets_of_the_runbook_by_default():
    runbook = KpiTargets()
    assert RULES[Kpi.satisfaction].breached(4.4, runbook) and not RULES[Kpi.satisfaction].breached(4.5, runbook)
    assert RULES[Kpi.avg_response_time].breached(10.5, runbook)
    assert not RULES[Kpi.avg_response_time].breached(10.0, runbook)
    assert RULES[Kpi.upsell_conversion].breached(0.17, runbook)
    assert not RULES[Kpi.upsell_conversion].breached(0.18, runbook)
    assert RULES[Kpi.failure_rate].breached(0.051, runbook) and not RULES[Kpi.failure_rate].breached(0.05, runbook)
    assert not RULES[Kpi.nps].breached(-100.0, runbook)
    assert not RULES[Kpi.satisfaction].breached(None, runbook)


def test_a_hotels_own_targets_decide_a_breach():
    strict = KpiTargets(satisfaction_min=8, response_time_max_minutes=5)
    assert RULES[Kpi.satisfaction].breached(7.9, strict) and not RULES[Kpi.satisfaction].breached(7.9, KpiTargets())
    assert RULES[Kpi.avg_response_time].breached(6, strict) and not RULES[Kpi.avg_response_time].breached(6, KpiTargets())
    assert RULES[Kpi.satisfaction].target(strict) == 8 and RULES[Kpi.nps].target(strict) is None


@pytest.mark.parametrize(
    ("values", "falling"),
    [
        ([9.0, 8.5, 8.0, 7.0], True),                 # three falls in a row
        ([5.0, 9.0, 8.5, 8.0, 7.0], True),            # only the last three windows count
        ([9.0, 8.0, 7.0], False),                     # two falls are not yet a trend
        ([9.0, 8.0, 8.5, 7.0], False),                # up-down-up noise
        ([8.0, 9.0, 8.0, 9.0, 8.0], False),           # noise
        ([9.0, 8.0, 8.0, 7.0], False),                # a flat window
        ([9.0, 9.0, 9.0, 9.0], False),                # flat
        ([9.0, 8.0, None, 7.0, 6.0], False),          # a window without data breaks it
        ([None, 8.0, 7.0, 6.0], False),
        ([7.0, 7.5, 8.0, 9.0], False),                # rising is good
        ([], False),
    ],
)
def test_a_decline_is_three_consecutive_falling_windows(values, falling):
    assert kpis.declining(values) is falling


def test_for_lower_is_better_kpis_a_decline_is_a_rise():
    response_minutes = [6.0, 8.0, 9.5, 12.0]
    assert kpis.declining(response_minutes, higher_is_better=False)
    assert not kpis.declining(response_minutes)
    assert not kpis.declining([6.0, 8.0, 8.0, 12.0], higher_is_better=False)
    assert kpis.declining([0.5, 0.4], windows=1)
