"""The card **Jornada digital** of the executive dashboard: each figure against its
target, with its trend, in the staff pages' words (`services.dashboard` holds the data)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from api.staff import labels
from guest_journey.kpis import RULES, Kpi
from services.dashboard import Dashboard

# -- the card's figures -------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """The last measured window against the one before it."""

    previous: float
    latest: float
    higher_is_better: bool

    @property
    def direction(self) -> str:
        if self.latest == self.previous:
            return "flat"
        return "up" if self.latest > self.previous else "down"

    @property
    def better(self) -> bool | None:
        if self.direction == "flat":
            return None
        return (self.direction == "up") == self.higher_is_better


@dataclass(frozen=True)
class KpiFigure:
    key: str
    kpi: Kpi
    title: str
    value: float | None
    shown: str
    unit: str
    detail: str
    target: float | None  # None: followed beside the others, with no target of its own (NPS)
    target_shown: str
    higher_is_better: bool
    trend: Trend | None
    trend_shown: str
    declining: bool

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "Sem dados no período" if self.value is None else "Sem meta"
        return {None: "Sem dados no período", True: "Meta atingida", False: "Fora da meta"}[self.met]

    @property
    def state(self) -> str:
        return {None: "none", True: "met", False: "missed"}[self.met]


def headline(board: Dashboard) -> list[KpiFigure]:
    """The card's figures: satisfaction against its target with NPS beside it, upsell
    conversion and average response time against theirs; each with its trend."""
    targets = board.targets

    def figure(key: str, kpi: Kpi, title: str, value: float | None, shown: str, unit: str, detail: str,
               target: float | None, target_shown: str, delta: Callable[[float], str]) -> KpiFigure:
        higher = RULES[kpi].higher_is_better
        pair = board.trend(kpi)
        trend = Trend(pair[0], pair[1], higher) if pair else None
        trend_shown = "sem janelas suficientes para a tendência"
        if trend is not None:
            arrow = {"up": "▲", "down": "▼", "flat": "■"}[trend.direction]
            trend_shown = f"{arrow} {delta(trend.latest - trend.previous)} na última janela"
        return KpiFigure(key, kpi, title, value, shown, unit, detail, target, target_shown, higher, trend,
                         trend_shown, board.declining(kpi))

    return [
        figure(
            "satisfaction", Kpi.satisfaction, "Satisfação", board.satisfaction,
            labels.decimal(board.satisfaction, 2), "/ 10",
            f"{board.satisfaction_responses} respostas a “quão satisfeito você ficou?”",
            targets.satisfaction_min, f"≥ {labels.decimal(targets.satisfaction_min)}",
            lambda change: _signed_decimal(change, 2),
        ),
        figure(
            "nps", Kpi.nps, "NPS", board.nps, labels.signed(board.nps), "",
            f"{board.responses} respostas a “recomendaria?” (promotores − detratores)",
            None, "", lambda change: _signed_decimal(change, 0),
        ),
        figure(
            "upsell", Kpi.upsell_conversion, "Conversão de upsell", board.upsell_conversion,
            labels.percent(board.upsell_conversion), "",
            f"{board.upsell_accepted} aceitas de {board.upsell_offered} ofertadas",
            targets.upsell_conversion_min, f"≥ {labels.percent(targets.upsell_conversion_min, 0)}",
            lambda change: _signed_decimal(change * 100, 1) + " p.p.",
        ),
        figure(
            "response", Kpi.avg_response_time, "Tempo médio de resposta", board.response_minutes,
            labels.decimal(board.response_minutes), "min",
            "respostas da equipe a mensagens de hóspedes",
            targets.response_time_max_minutes, f"≤ {labels.decimal(targets.response_time_max_minutes, 0)} min",
            lambda change: _signed_decimal(change, 1) + " min",
        ),
    ]


def _signed_decimal(value: float, digits: int) -> str:
    text = labels.decimal(abs(value), digits)
    return f"+{text}" if value > 0 else (f"−{text}" if value < 0 else text)
