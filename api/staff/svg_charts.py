"""Charts drawn on the server as inline SVG: no script, no external file, no
inline style (the pages' Content-Security-Policy allows neither), colours
from `staff.css` classes. Every text is escaped; every chart has a title and
a description for screen readers, and the page shows its data as a table
beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 30
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None


Format = Callable[[float], str]


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _scale(points: Sequence[Point], target: float | None, y_max: float | None) -> float:
    if y_max is not None:
        return y_max
    values = [point.value for point in points if point.value is not None]
    top = max([*values, target or 0.0, 0.0])
    return top * 1.15 if top > 0 else 1.0


def line_chart(
    *,
    chart_id: str,
    title: str,
    points: Sequence[Point],
    fmt: Format = _number,
    target: float | None = None,
    higher_is_better: bool = True,
    y_min: float = 0.0,
    y_max: float | None = None,
    target_label: str | None = None,
) -> Markup:
    """A line over the windows, a dot per measured value (missing values leave a
    gap), and the target as a dashed line; a dot that misses the target is marked."""
    uid = escape(chart_id)
    top = _scale(points, target, y_max)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + (plot_w / 2 if len(points) == 1 else plot_w * index / (len(points) - 1))

    def y(value: float) -> float:
        span = top - y_min or 1.0
        return TOP + plot_h * (1 - (min(max(value, y_min), top) - y_min) / span)

    parts = [_open(uid, title, _describe(points, fmt, target, target_label))]
    for tick in range(5):
        value = y_min + (top - y_min) * tick / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    every = max(1, -(-len(points) // MAX_X_LABELS))
    for index, point in enumerate(points):
        if index % every == 0 or index == len(points) - 1:
            anchor = "middle"
            if len(points) > 1 and index in (0, len(points) - 1):
                anchor = "start" if index == 0 else "end"
            parts.append(f'<text class="axis" x="{x(index):.1f}" y="{HEIGHT - 10}" text-anchor="{anchor}">'
                         f'{escape(point.label)}</text>')
    if target is not None:
        parts.append(f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(target):.1f}" y2="{y(target):.1f}"/>')
        parts.append(f'<text class="target-label" x="{LEFT + 6}" y="{y(target) - 5:.1f}" text-anchor="start">'
                     f'{escape(target_label or "meta " + fmt(target))}</text>')
    segment: list[str] = []
    for index, point in enumerate(points):
        if point.value is None:
            parts.append(_polyline(segment))
            segment = []
            continue
        segment.append(f"{x(index):.1f},{y(point.value):.1f}")
    parts.append(_polyline(segment))
    for index, point in enumerate(points):
        if point.value is None:
            continue
        missed = target is not None and (point.value < target if higher_is_better else point.value > target)
        parts.append(
            f'<circle class="dot{" missed" if missed else ""}" cx="{x(index):.1f}" cy="{y(point.value):.1f}" r="4">'
            f"<title>{escape(point.label)}: {escape(fmt(point.value))}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(part for part in parts if part))


def bar_chart(
    *,
    chart_id: str,
    title: str,
    bars: Sequence[Point],
    fmt: Format = _number,
    limit: float | None = None,
    limit_label: str | None = None,
    x_max: float | None = None,
) -> Markup:
    """Horizontal bars, one per row; a bar over `limit` (a maximum) is marked."""
    uid = escape(chart_id)
    row, gap = 26, 10
    height = TOP + BOTTOM + max(1, len(bars)) * (row + gap)
    label_w = 110
    plot_w = WIDTH - LEFT - RIGHT - label_w
    top = _scale(bars, limit, x_max)

    def x(value: float) -> float:
        return LEFT + label_w + plot_w * min(max(value, 0.0), top) / top

    parts = [_open(uid, title, _describe(bars, fmt, limit, limit_label), height)]
    for index, bar in enumerate(bars):
        y = TOP + index * (row + gap)
        parts.append(f'<text class="axis" x="{LEFT + label_w - 8}" y="{y + row / 2 + 4:.1f}" text-anchor="end">'
                     f"{escape(bar.label)}</text>")
        if bar.value is None:
            parts.append(f'<text class="axis" x="{LEFT + label_w + 4}" y="{y + row / 2 + 4:.1f}">—</text>')
            continue
        over = limit is not None and bar.value > limit
        width = max(x(bar.value) - x(0.0), 1.0)
        parts.append(f'<rect class="bar{" missed" if over else ""}" x="{x(0.0):.1f}" y="{y}" width="{width:.1f}" '
                     f'height="{row}"><title>{escape(bar.label)}: {escape(fmt(bar.value))}</title></rect>')
        parts.append(f'<text class="value" x="{x(bar.value) + 6:.1f}" y="{y + row / 2 + 4:.1f}">'
                     f"{escape(fmt(bar.value))}</text>")
    if limit is not None:
        bottom = height - BOTTOM + 6
        parts.append(f'<line class="target" x1="{x(limit):.1f}" x2="{x(limit):.1f}" y1="{TOP - 6}" y2="{bottom}"/>')
        parts.append(f'<text class="target-label" x="{x(limit):.1f}" y="{bottom + 14}" text-anchor="middle">'
                     f"{escape(limit_label or 'limite ' + fmt(limit))}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _open(uid: str, title: str, description: str, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-labelledby="chart-{uid}-title chart-{uid}-desc" preserveAspectRatio="xMidYMid meet">'
        f'<title id="chart-{uid}-title">{escape(title)}</title>'
        f'<desc id="chart-{uid}-desc">{escape(description)}</desc>'
    )


def _describe(points: Sequence[Point], fmt: Format, target: float | None, target_label: str | None) -> str:
    values = "; ".join(f"{point.label}: {fmt(point.value) if point.value is not None else 'sem dados'}"
                       for point in points)
    if target is not None:
        values += f". {target_label or 'meta ' + fmt(target)}"
    return values or "sem dados"


def _polyline(segment: list[str]) -> str:
    if len(segment) < 2:
        return ""
    return f'<polyline class="line" points="{" ".join(segment)}"/>'
