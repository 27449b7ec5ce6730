"""The triangle as plain data: a validated cumulative triangle, and what can be wrong with one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Layout = Literal["long", "wide", "auto"]
Measure = Literal["paid", "incurred"]

LAYOUTS = ("long", "wide", "auto")
MEASURES = ("paid", "incurred")

# Calendar grains an origin label can carry, with their length in months.
GRAIN_MONTHS = {"annual": 12, "semi-annual": 6, "quarterly": 3, "monthly": 1}
MONTHS_GRAIN = {months: grain for grain, months in GRAIN_MONTHS.items()}


class TriangleError(ValueError):
    """A triangle file that cannot be used; the message names the row and column."""

    def __init__(self, message: str, issues: tuple[TriangleIssue, ...] = ()):
        super().__init__(message)
        self.issues = issues


@dataclass(frozen=True)
class TriangleIssue:
    """One problem found in a triangle file, attributed to the check that found it."""

    check: str
    message: str


@dataclass(frozen=True)
class TriangleData:
    """A validated cumulative triangle in plain Python.

    ``values[i]`` holds the cumulative amounts of ``origins[i]`` at the first
    ``len(values[i])`` development ages: the observed part of the row, up to the latest
    diagonal. An older origin whose early development was not recorded starts with None
    for those ages; every value after its first is a number.

    Each origin period spans ``periods_per_origin`` development periods: 1 when origins
    and development share a grain, 4 for annual origins developed quarterly, so each
    older origin has that many more observed ages than the next.

    ``origin_grain`` is the calendar grain read from the origin labels (``annual``,
    ``semi-annual``, ``quarterly``, ``monthly``), or None when the labels carry none
    (e.g. ``AY1``); ``development_months`` is then the length of a development period in
    months when it follows from the two, else None.
    """

    origins: tuple[str, ...]
    development_ages: tuple[int | float, ...]
    values: tuple[tuple[float | None, ...], ...]
    measure: str
    input_layout: str
    input_cumulative: bool
    file_name: str = ""
    warnings: tuple[str, ...] = ()
    origin_grain: str | None = None
    periods_per_origin: int = 1

    @property
    def origin_count(self) -> int:
        return len(self.origins)

    @property
    def development_age_count(self) -> int:
        return len(self.development_ages)

    @property
    def cell_count(self) -> int:
        return sum(len(row) for row in self.values)

    @property
    def development_months(self) -> int | None:
        """Return the length of one development period in months, when the grain says it."""
        if self.origin_grain is None:
            return None
        months, remainder = divmod(GRAIN_MONTHS[self.origin_grain], self.periods_per_origin)
        return months if remainder == 0 and months else None

    def latest_index(self, origin_index: int) -> int:
        """Return the index of the development age of an origin's latest value."""
        return len(self.values[origin_index]) - 1

    def latest_diagonal(self) -> list[dict]:
        """Return the latest value of each origin with its development age."""
        return [
            {
                "origin": origin,
                "development_age": self.development_ages[len(row) - 1],
                "value": row[-1],
            }
            for origin, row in zip(self.origins, self.values, strict=True)
        ]

    def as_matrix(self) -> list[list[float | None]]:
        """Return the triangle as origin rows × development age columns, None when unknown."""
        width = len(self.development_ages)
        return [list(row) + [None] * (width - len(row)) for row in self.values]

    def grain(self) -> dict:
        """Return the grain of origins and development as JSON-serialisable data."""
        return {
            "origin": self.origin_grain,
            "periods_per_origin": self.periods_per_origin,
            "development_months": self.development_months,
        }

    def to_dict(self) -> dict:
        """Return a JSON-serialisable description of the triangle."""
        return {
            "file_name": self.file_name,
            "measure": self.measure,
            "input_layout": self.input_layout,
            "input_cumulative": self.input_cumulative,
            "origins": list(self.origins),
            "development_ages": list(self.development_ages),
            "grain": self.grain(),
            "cumulative_values": self.as_matrix(),
            "warnings": list(self.warnings),
        }
