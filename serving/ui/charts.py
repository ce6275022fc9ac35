"""Inline SVG charts rendered on the server (no chart library, no script): the asset trend line."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import pandas as pd

WIDTH, HEIGHT, PAD_X, PAD_Y = 640, 200, 64, 28


def trend_summary(points: Sequence[tuple[pd.Timestamp, float]]) -> str:
    """One sentence a reader (or a screen reader) gets instead of the picture."""
    if not points:
        return "No month-end balances before the cut-off."
    (first_at, first), (last_at, last) = points[0], points[-1]
    change = "" if first == 0 else f" ({(last - first) / abs(first):+.0%})"
    return (
        f"Total assets {last:,.0f} at {last_at:%Y-%m-%d}, from {first:,.0f} at "
        f"{first_at:%Y-%m-%d}{change}, over {len(points)} month-ends."
    )


def asset_trend_svg(points: Sequence[tuple[pd.Timestamp, float]]) -> str:
    """An accessible SVG line of month-end total assets, oldest left; empty string without data."""
    if not points:
        return ""
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span = high - low or max(abs(high), 1.0)
    step = (WIDTH - 2 * PAD_X) / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return PAD_X + i * step, HEIGHT - PAD_Y - (v - low) / span * (HEIGHT - 2 * PAD_Y)

    coords = [xy(i, v) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(f"{at:%Y-%m-%d}: {v:,.0f}")}</title></circle>'
        for (x, y), (at, v) in zip(coords, points, strict=True)
    )
    bottom, top = HEIGHT - PAD_Y, PAD_Y
    labels = (
        f'<text x="{PAD_X - 6}" y="{top + 4}" text-anchor="end">{high:,.0f}</text>'
        f'<text x="{PAD_X - 6}" y="{bottom + 4}" text-anchor="end">{low:,.0f}</text>'
        f'<text x="{PAD_X}" y="{HEIGHT - 6}">{points[0][0]:%Y-%m}</text>'
        f'<text x="{WIDTH - PAD_X}" y="{HEIGHT - 6}" text-anchor="end">{points[-1][0]:%Y-%m}</text>'
    )
    summary = escape(trend_summary(points))
    return (
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="trend-title">'
        f'<title id="trend-title">{summary}</title>'
        f'<line class="axis" x1="{PAD_X}" y1="{bottom}" x2="{WIDTH - PAD_X}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PAD_X}" y1="{top}" x2="{PAD_X}" y2="{bottom}"/>'
        f'<polyline points="{line}"/>{dots}{labels}</svg>'
    )
