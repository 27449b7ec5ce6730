"""Inline SVG charts of a working paper: the development pattern and the reserve ranges.

Plain text built here (no plotting library), so a page can draw them in the request: they
scale to the width they are given (a viewBox, no fixed size) and use the page's
colours through ``currentColor`` where they can.
"""

from __future__ import annotations

import itertools
from html import escape

from workflows.reserving.working_paper import ReserveRange

WIDTH = 640
# The origins a reserve range chart draws at most (the largest IBNR first), besides the total.
MAX_RANGE_ROWS = 30
BAR_COLOUR = "#417690"
LINE_COLOUR = "#205067"


def development_pattern_svg(pattern: tuple[tuple[int | float, float], ...]) -> str:
    """Return a line chart of the share of the ultimate developed at each age (1 / CDF)."""
    if not pattern:
        return ""
    height, left, right, top, bottom = 260, 48, 16, 16, 40
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    n = len(pattern)

    def x(index: int) -> float:
        return left + (plot_w * index / (n - 1) if n > 1 else plot_w / 2)

    def y(share: float) -> float:
        return top + plot_h * (1 - max(0.0, min(share, 1.0)))

    parts = [_open(height, "Development pattern: share of the ultimate developed by age")]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="currentColor" stroke-opacity="0.15"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.0%}</text>'
        )
    step = max(1, round(n / 12))
    for index, (age, _share) in enumerate(pattern):
        if index % step == 0 or index == n - 1:
            parts.append(
                f'<text x="{x(index):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                f"{escape(_age(age))}</text>"
            )
    points = " ".join(f"{x(i):.1f},{y(share):.1f}" for i, (_age_, share) in enumerate(pattern))
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2"/>'
    )
    for index, (age, share) in enumerate(pattern):
        parts.append(
            f'<circle cx="{x(index):.1f}" cy="{y(share):.1f}" r="3" fill="{LINE_COLOUR}">'
            f"<title>{escape(_age(age))}: {share:.1%} developed</title></circle>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
        "Development age</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def reserve_ranges_svg(ranges: tuple[ReserveRange, ...]) -> str:
    """Return each origin's and the total's IBNR as a band from its lowest to highest percentile.

    The band is shaded darker towards the median; the dot is the best estimate. The axis
    starts at zero unless a percentile is negative: no bar reaches below what the
    percentiles say.
    """
    if not ranges:
        return ""
    total = [r for r in ranges if r.label == "Total"]
    origins = [r for r in ranges if r.label != "Total"]
    if len(origins) > MAX_RANGE_ROWS:
        largest = sorted(origins, key=lambda r: r.best_estimate, reverse=True)[:MAX_RANGE_ROWS]
        keep = {id(r) for r in largest}
        origins = [r for r in origins if id(r) in keep]
    rows = [*origins, *total]
    row_h, left, right, top, bottom = 22, 64, 90, 10, 34
    height = top + bottom + row_h * len(rows)
    low = min(0.0, *(value for r in rows for _, value in r.percentiles))
    high = max(value for r in rows for _, value in r.percentiles) or 1.0
    high = max(high, *(r.best_estimate for r in rows))
    plot_w = WIDTH - left - right

    def x(value: float) -> float:
        return left + plot_w * (value - low) / (high - low)

    parts = [_open(height, "Reserve ranges: IBNR percentiles by origin and in total")]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" '
            f'y2="{height - bottom}" stroke="currentColor" stroke-opacity="0.15"/>'
            f'<text x="{x(tick):.1f}" y="{height - bottom + 14}" text-anchor="middle">'
            f"{_short(tick)}</text>"
        )
    for index, row in enumerate(rows):
        middle = top + row_h * index + row_h / 2
        weight = ' font-weight="bold"' if row.label == "Total" else ""
        parts.append(
            f'<text x="{left - 6}" y="{middle + 4:.1f}" text-anchor="end"{weight}>'
            f"{escape(row.label)}</text>"
        )
        levels = row.percentiles
        for (level_a, value_a), (_, value_b) in itertools.pairwise(levels):
            opacity = 0.85 if level_a < 75 else 0.55 if level_a < 90 else 0.3
            parts.append(
                f'<rect x="{x(value_a):.1f}" y="{middle - 6:.1f}" '
                f'width="{max(x(value_b) - x(value_a), 0.5):.1f}" height="12" '
                f'fill="{BAR_COLOUR}" fill-opacity="{opacity}"/>'
            )
        title = ", ".join(f"P{_level(level)} {value:,.0f}" for level, value in levels)
        parts.append(
            f'<circle cx="{x(row.best_estimate):.1f}" cy="{middle:.1f}" r="3.5" '
            f'fill="#ba2121"><title>{escape(row.label)}: best estimate '
            f"{row.best_estimate:,.0f}; {escape(title)}</title></circle>"
        )
        top_level, top_value = levels[-1]
        parts.append(
            f'<text x="{x(top_value) + 4:.1f}" y="{middle + 4:.1f}">'
            f"P{_level(top_level)} {_short(top_value)}</text>"
        )
    first = _level(rows[-1].percentiles[0][0])
    last = _level(rows[-1].percentiles[-1][0])
    parts.append(
        f'<text x="{left}" y="{height - 6}">IBNR from P{first} to P{last} (darker towards '
        "the median); red dot: best estimate</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _open(height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(title)}" font-size="11" fill="currentColor" '
        f'style="width: 100%; max-width: {WIDTH}px; height: auto;">'
        f"<title>{escape(title)}</title>"
    )


def _ticks(low: float, high: float) -> list[float]:
    span = high - low
    if span <= 0:
        return [low]
    raw = span / 4
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = (low // step) * step
    ticks, value = [], start
    while value <= high + 1e-9:
        if value >= low - 1e-9:
            ticks.append(value)
        value += step
    return ticks


def _short(value: float) -> str:
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:,.1f}bn"
    if size >= 1e6:
        return f"{value / 1e6:,.1f}m"
    if size >= 1e3:
        return f"{value / 1e3:,.0f}k"
    return f"{value:,.0f}"


def _level(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else f"{level:g}"


def _age(age: int | float) -> str:
    return str(int(age)) if isinstance(age, float) and age.is_integer() else str(age)
