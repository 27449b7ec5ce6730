"""The calendar grain of origin labels: years, half-years, quarters, months or dates.

``1995`` is a year; ``1995Q1``, ``1995-Q1`` and ``Q1 1995`` quarters; ``1995H1`` or
``1995S1`` half-years; ``1995-01`` and ``1995M01`` months; ISO dates (``1995-01-01``)
take the grain of their spacing. Any other labels (``AY1``, ``A``) carry no grain: the
triangle is then read by position alone, as it always was.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass

from workflows.reserving.triangles.data import GRAIN_MONTHS, MONTHS_GRAIN

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = (
    re.compile(r"^(?P<year>\d{4})\s*[-/ ]?\s*Q(?P<part>[1-4])$", re.IGNORECASE),
    re.compile(r"^Q(?P<part>[1-4])\s*[-/ ]?\s*(?P<year>\d{4})$", re.IGNORECASE),
)
_HALF = (
    re.compile(r"^(?P<year>\d{4})\s*[-/ ]?\s*[HS](?P<part>[12])$", re.IGNORECASE),
    re.compile(r"^[HS](?P<part>[12])\s*[-/ ]?\s*(?P<year>\d{4})$", re.IGNORECASE),
)
_MONTH = (
    re.compile(r"^(?P<year>\d{4})[-/](?P<part>\d{2})$"),
    re.compile(r"^(?P<year>\d{4})M(?P<part>\d{2})$", re.IGNORECASE),
)


@dataclass(frozen=True)
class OriginGrain:
    """The grain of a set of origin labels and the month each origin starts (year, month)."""

    grain: str
    starts: dict[str, tuple[int, int]]

    @property
    def months(self) -> int:
        return GRAIN_MONTHS[self.grain]


def origin_grain(labels: list[str]) -> OriginGrain | None:
    """Return the grain all ``labels`` share, or None if they carry none (or disagree)."""
    if not labels:
        return None
    for grain, parse in (
        ("annual", _parse_year),
        ("quarterly", _parse_quarter),
        ("semi-annual", _parse_half),
        ("monthly", _parse_month),
    ):
        starts = {label: parse(label) for label in labels}
        if all(start is not None for start in starts.values()):
            return OriginGrain(grain, starts)
    dates = {label: _parse_date(label) for label in labels}
    if all(date is not None for date in dates.values()):
        ordered = sorted(set(dates.values()))
        if len(ordered) < 2:
            return None
        steps = {month_number(b) - month_number(a) for a, b in itertools.pairwise(ordered)}
        # The smallest step is the grain; larger ones are gaps the shape check names.
        step = min(steps)
        if step in MONTHS_GRAIN and all(s % step == 0 for s in steps):
            return OriginGrain(MONTHS_GRAIN[step], dates)
    return None


def month_number(start: tuple[int, int]) -> int:
    """Return a (year, month) as a count of months, for differences between starts."""
    year, month = start
    return year * 12 + month - 1


def period_label(start: tuple[int, int], grain: str) -> str:
    """Return the label of the origin period starting at ``start``, in a canonical form."""
    year, month = start
    if grain == "annual":
        return str(year)
    if grain == "quarterly":
        return f"{year}Q{(month - 1) // 3 + 1}"
    if grain == "semi-annual":
        return f"{year}H{(month - 1) // 6 + 1}"
    return f"{year}-{month:02d}"


def _parse_year(label: str) -> tuple[int, int] | None:
    match = _YEAR.match(label)
    return (int(match.group(1)), 1) if match else None


def _parse_parts(label: str, patterns, months_per_part: int, parts: int):
    for pattern in patterns:
        match = pattern.match(label)
        if match:
            part = int(match.group("part"))
            if 1 <= part <= parts:
                return int(match.group("year")), (part - 1) * months_per_part + 1
    return None


def _parse_quarter(label: str) -> tuple[int, int] | None:
    return _parse_parts(label, _QUARTER, 3, 4)


def _parse_half(label: str) -> tuple[int, int] | None:
    return _parse_parts(label, _HALF, 6, 2)


def _parse_month(label: str) -> tuple[int, int] | None:
    return _parse_parts(label, _MONTH, 1, 12)


def _parse_date(label: str) -> tuple[int, int] | None:
    try:
        date = dt.date.fromisoformat(label)
    except ValueError:
        return None
    return date.year, date.month
