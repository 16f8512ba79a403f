"""Small SVG charts for the report (line charts and horizontal bars), no plotting library needed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH, HEIGHT = 680, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 160, 34, 46


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 0.5:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float) -> str:
    if abs(value) >= 10000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def line_chart(series: dict[str, Sequence[tuple[float, float]]], *, title: str, x_label: str,
               y_label: str) -> str:
    """A line chart of named (x, y) series; empty series are left out of the legend."""
    points = [p for values in series.values() for p in values]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11" class="chart">',
           f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
           f'{escape(title)}</text>']
    if not points:
        out.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data</text></svg>')
        return "\n".join(out)
    x_ticks = nice_ticks(min(p[0] for p in points), max(p[0] for p in points))
    y_ticks = nice_ticks(min(0.0, min(p[1] for p in points)), max(p[1] for p in points))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / ((x1 - x0) or 1) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (y - y0) / ((y1 - y0) or 1) * plot_h

    for y in y_ticks:
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{_label(y)}</text>')
    for x in x_ticks:
        out.append(f'<text x="{sx(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_label(x)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text x="14" y="{TOP + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 14 {TOP + plot_h / 2})">{escape(y_label)}</text>')
    legend_y = TOP + 8
    for i, (name, values) in enumerate((n, v) for n, v in series.items() if v):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{path}">'
                   f'<title>{escape(name)}</title></polyline>')
        out.append(f'<line x1="{LEFT + plot_w + 10}" x2="{LEFT + plot_w + 26}" y1="{legend_y}" y2="{legend_y}" '
                   f'stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{LEFT + plot_w + 30}" y="{legend_y + 4}" class="legend">{escape(name)}</text>')
        legend_y += 16
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(bars: Sequence[tuple[str, float]], *, title: str, maximum: float = 100.0, unit: str = "%") -> str:
    """Horizontal bars (e.g. pass rate per API area); green at the maximum, amber above 90 %, red below."""
    row = 22
    label_w = 260
    height = TOP + row * max(1, len(bars)) + 16
    plot_w = WIDTH - label_w - 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11" class="chart">',
           f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
           f'{escape(title)}</text>']
    for i, (label, value) in enumerate(bars):
        y = TOP + i * row
        share = 0.0 if not math.isfinite(value) else max(0.0, min(1.0, value / maximum))
        color = "#2ca02c" if share >= 0.999 else "#ff9f1a" if share >= 0.9 else "#d62728"
        out.append(f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{plot_w}" height="{row - 8}" fill="#eee"/>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{plot_w * share:.1f}" height="{row - 8}" '
                   f'fill="{color}" class="bar"/>')
        text = "n/a" if not math.isfinite(value) else f"{value:.0f} {unit}"
        out.append(f'<text x="{label_w + plot_w + 6}" y="{y + 14}">{text}</text>')
    out.append("</svg>")
    return "\n".join(out)


def cdf(values_ms: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """(latency ms, share of readings at or below it in %) for a sorted or unsorted sample."""
    ordered = sorted(values_ms)
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    out = [(ordered[i], 100.0 * (i + 1) / len(ordered)) for i in range(0, len(ordered), step)]
    if out[-1][1] < 100.0:
        out.append((ordered[-1], 100.0))
    return out
