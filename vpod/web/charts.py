"""The page's charts, drawn server-side as SVG: no charting library, no script.

Input is the rows of ``GET /api/history`` (one per hour, oldest first: ``hour`` epoch
seconds of the hour's start, ``done``, ``failed``, ``skipped``, ``unchanged`` files,
``mean_seconds`` the mean time per file or ``None``). The SVG is inline in the page and
carries no ``style`` attribute (the page's Content-Security-Policy allows only its
stylesheet): colours come from the ``chart-*`` classes of ``static/page.css``, so they
follow dark mode. Every label is escaped (:func:`html.escape`).
"""

from __future__ import annotations

import html
import math
import time
from typing import Any, Sequence

OUTCOMES = ("done", "unchanged", "skipped", "failed")
"""Stacked bottom to top; each has a ``chart-NAME`` class in the stylesheet."""

WIDTH = 600
HEIGHT = 170
LEFT = 48  # room for the y labels
BOTTOM = 22  # room for the x labels
TOP = 10


def files_per_hour(rows: Sequence[dict[str, Any]]) -> str:
    """Stacked bars: files finished in each hour, by outcome (:data:`OUTCOMES`).

    Returns:
        An ``<svg>`` element (text); each bar has a ``<title>`` with its numbers.
    """
    totals = [sum(int(r.get(k) or 0) for k in OUTCOMES) for r in rows]
    top = _nice(max(totals, default=0))
    parts = _frame("Files finished per hour, by outcome", top, rows)
    step = _step(rows)
    for i, row in enumerate(rows):
        x = LEFT + i * step
        y = float(HEIGHT - BOTTOM)
        tip = [f"{_hour(row)}"] + [f"{k}: {int(row.get(k) or 0)}" for k in OUTCOMES]
        parts.append(f"<g><title>{html.escape(', '.join(tip))}</title>")
        for k in OUTCOMES:
            n = int(row.get(k) or 0)
            if n <= 0:
                continue
            h = n / top * (HEIGHT - BOTTOM - TOP)
            y -= h
            parts.append(
                f'<rect class="chart-{k}" x="{x + 1:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}"/>'
            )
        parts.append("</g>")
    parts += _legend([(k, k) for k in OUTCOMES]) + ["</svg>"]
    return "".join(parts)


def seconds_per_file(rows: Sequence[dict[str, Any]]) -> str:
    """Dots joined by a line: the mean time per file (seconds) in each hour; hours with
    no file are gaps.

    Returns:
        An ``<svg>`` element (text).
    """
    values = [r.get("mean_seconds") for r in rows]
    top = _nice(max((float(v) for v in values if v is not None), default=0.0), smallest=0.1)
    parts = _frame("Mean time per file, seconds", top, rows)
    step = _step(rows)
    points: list[tuple[float, float, dict[str, Any]]] = []
    for i, (row, value) in enumerate(zip(rows, values)):
        if value is None:
            continue
        x = LEFT + i * step + step / 2
        y = HEIGHT - BOTTOM - float(value) / top * (HEIGHT - BOTTOM - TOP)
        points.append((x, y, row))
    if len(points) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline class="chart-line" points="{path}"/>')
    for x, y, row in points:
        tip = f"{_hour(row)}: {float(row['mean_seconds']):.1f} s per file"
        parts.append(f'<circle class="chart-dot" cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{html.escape(tip)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def _frame(title: str, top: float, rows: Sequence[dict[str, Any]]) -> list[str]:
    """The ``<svg>`` opening, its title, the axes, y labels (0, half, top) and x labels
    (every sixth hour, UTC)."""
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{html.escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{html.escape(title)}</title>'
    ]
    base = HEIGHT - BOTTOM
    for value in (0.0, top / 2, top):
        y = base - value / top * (base - TOP)
        out.append(f'<line class="chart-grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}"/>')
        out.append(f'<text class="chart-label" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_num(value)}</text>')
    step = _step(rows)
    for i, row in enumerate(rows):
        if int(row.get("hour", 0)) % (6 * 3600) == 0:
            x = min(LEFT + i * step + step / 2, WIDTH - 18.0)
            out.append(f'<text class="chart-label" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                       f'{html.escape(time.strftime("%H:00", time.gmtime(int(row["hour"]))))}</text>')
    if not any(sum(int(r.get(k) or 0) for k in OUTCOMES) for r in rows):
        out.append(f'<text class="chart-label" x="{(LEFT + WIDTH) / 2:.0f}" y="{(TOP + base) / 2:.0f}"'
                   f' text-anchor="middle">no files in the last {len(rows)} hours</text>')
    return out


def _legend(items: list[tuple[str, str]]) -> list[str]:
    out = []
    x = float(LEFT + 6)
    for cls, label in items:
        out.append(f'<rect class="chart-{cls}" x="{x:.0f}" y="{TOP}" width="10" height="10"/>')
        out.append(f'<text class="chart-label" x="{x + 14:.0f}" y="{TOP + 9}">{html.escape(label)}</text>')
        x += 14 + 8 * len(label) + 12
    return out


def _step(rows: Sequence[dict[str, Any]]) -> float:
    return (WIDTH - LEFT) / max(len(rows), 1)


def _hour(row: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%d %H:00 UTC", time.gmtime(int(row.get("hour", 0))))


def _nice(value: float, smallest: float = 1.0) -> float:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value`` and ``smallest``."""
    if value <= smallest:
        return smallest
    power = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return factor * power
    return 10 * power


def _num(value: float) -> str:
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"
