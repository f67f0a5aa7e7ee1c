"""Charts for the review report as inline SVG: no script, no CDN (the bank's network is closed).

Each function returns one `<svg>` element with its own labels; colours are
fixed per series position so the control is always grey.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#8c8c8c", "#1f6feb", "#d4380d", "#389e0d", "#722ed1", "#d48806")
FONT = "font-family:'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;font-size:12px"


@dataclass(frozen=True, kw_only=True)
class Interval:
    """One row of a forest plot: an estimate with its confidence interval."""

    label: str
    estimate: float
    low: float
    high: float
    significant: bool


def _text(x: float, y: float, text: str, *, anchor: str = "middle", colour: str = "#333") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}">{escape(text)}</text>'


def grouped_bars(
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    label: Callable[[float], str] = lambda v: f"{v:.1%}",
    width: int = 720,
    height: int = 300,
) -> str:
    """Bars per category, one colour per series (e.g. funnel stages × variants)."""
    top, bottom, left = 36, 48, 16
    plot_h = height - top - bottom
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    peak = max(values, default=0.0) or 1.0
    group_w = (width - 2 * left) / max(len(categories), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [_text(width / 2, 20, title)]
    for c, category in enumerate(categories):
        x0 = left + c * group_w + group_w * 0.1
        parts.append(_text(left + (c + 0.5) * group_w, height - bottom + 16, category))
        for s, (_, values_of) in enumerate(series.items()):
            value = values_of[c] if math.isfinite(values_of[c]) else 0.0
            h = plot_h * value / peak
            x, y = x0 + s * bar_w, top + plot_h - h
            colour = PALETTE[s % len(PALETTE)]
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.92:.1f}" height="{h:.1f}" fill="{colour}"/>')
            if len(series) * len(categories) <= 24:
                parts.append(_text(x + bar_w * 0.46, y - 3, label(value), colour="#555"))
    parts.append(_legend(list(series), left, height - 14))
    return _svg(width, height, title, parts)


def forest(rows: Sequence[Interval], *, title: str, label: Callable[[float], str], width: int = 720) -> str:
    """Estimates with their intervals on one axis, a line at 0 (no effect); significant ones in colour."""
    row_h, top, left, right = 28, 40, 150, 40
    height = top + row_h * max(len(rows), 1) + 30
    finite = [v for r in rows for v in (r.low, r.high, r.estimate) if math.isfinite(v)]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    span = (high - low) or 1.0
    low, high = low - 0.08 * span, high + 0.08 * span

    def x(value: float) -> float:
        return left + (width - left - right) * (value - low) / (high - low)

    parts = [_text(width / 2, 20, title)]
    zero = f'x1="{x(0):.1f}" y1="{top - 8}" x2="{x(0):.1f}" y2="{height - 24}"'
    parts.append(f'<line {zero} stroke="#999" stroke-dasharray="4 3"/>')
    parts.append(_text(x(0), height - 8, "0", colour="#777"))
    for i, row in enumerate(rows):
        y = top + i * row_h + row_h / 2
        colour = PALETTE[1] if row.significant else PALETTE[0]
        parts.append(_text(left - 8, y + 4, row.label, anchor="end"))
        if math.isfinite(row.low) and math.isfinite(row.high):
            span_at = f'x1="{x(row.low):.1f}" y1="{y:.1f}" x2="{x(row.high):.1f}" y2="{y:.1f}"'
            parts.append(f'<line {span_at} stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(row.estimate):.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
        parts.append(_text(width - right + 36, y + 4, label(row.estimate), anchor="end", colour=colour))
    for end, anchor in ((low, "start"), (high, "end")):
        if abs(x(end) - x(0)) > 48:  # the axis ends, unless they would overprint the 0 mark
            parts.append(_text(x(end), height - 8, label(end), anchor=anchor, colour="#777"))
    return _svg(width, height, title, parts)


def lines(
    periods: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    label: Callable[[float], str] = lambda v: f"{v:.1%}",
    width: int = 720,
    height: int = 260,
) -> str:
    """One line per series over the periods (e.g. conversion rate of control and treatment by month)."""
    top, bottom, left, right = 36, 44, 56, 24
    values = [v for vs in series.values() for v in vs if math.isfinite(v)]
    peak = max(values, default=0.0) or 1.0
    step = (width - left - right) / max(len(periods) - 1, 1)

    def point(i: int, value: float) -> tuple[float, float]:
        return left + i * step, top + (height - top - bottom) * (1 - value / peak)

    parts = [_text(width / 2, 20, title), _text(left - 6, top + 4, label(peak), anchor="end", colour="#777")]
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#ccc"/>'
    )
    parts.append(_text(left - 6, height - bottom + 4, label(0.0), anchor="end", colour="#777"))
    for i, period in enumerate(periods):
        anchor = "start" if i == 0 and len(periods) > 1 else "end" if i == len(periods) - 1 and i else "middle"
        parts.append(_text(left + i * step, height - bottom + 16, period, anchor=anchor))
    for s, (_, values_of) in enumerate(series.items()):
        colour = PALETTE[s % len(PALETTE)]
        points = [point(i, v) for i, v in enumerate(values_of) if math.isfinite(v)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points]
    parts.append(_legend(list(series), left, height - 10))
    return _svg(width, height, title, parts)


def _legend(names: list[str], x: float, y: float) -> str:
    items = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        items.append(f'<rect x="{x + i * 120:.1f}" y="{y - 10:.1f}" width="10" height="10" fill="{colour}"/>')
        items.append(_text(x + i * 120 + 14, y, name, anchor="start"))
    return "".join(items)


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" style="{FONT}">' + "".join(parts) + "</svg>"
    )
