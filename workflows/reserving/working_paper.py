"""A reserving run's working paper: the triangle and every step from it to the reserves.

Built from the triangle the run read and its result in the stable JSON shape
(``ReserveResult.to_dict()``, the run's output summary), so the page and the Excel file
show what the run computed without running it again:

- the triangle, cumulative and incremental;
- the link ratios, each marked when a choice left it out of its period's average
  (an exclusion, a high/low drop, the medial's drops, or being older than ``n_periods``);
- the candidate averages of each period (all years and the latest 3 and 5: volume and
  simple; all years: medial and regression), with the run's explicit exclusions applied,
  computed by ``fit_development`` as the run's own average was;
- the selected factors as the run recorded them (source, reason, CDF);
- the triangle completed with the selected factors, to the last age and ultimate;
- the development pattern (the share of the ultimate developed at each age, 1 / CDF);
- reserve ranges as percentiles: the bootstrap's simulated ones, or, for Mack's
  standard error, a lognormal with the IBNR as mean and the s.e. as standard deviation
  (never below zero, unlike IBNR ± s.e.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from workflows.reserving.development import (
    LEFT_OUT_OLDER,
    DevelopmentError,
    DevelopmentSelection,
    fit_development,
    period_label,
)
from workflows.reserving.triangles.data import TriangleData

# (key, label, average, latest n origins); the order of the table's rows.
CANDIDATES = (
    ("volume_all", "Volume, all years", "volume", None),
    ("simple_all", "Simple, all years", "simple", None),
    ("volume_5", "Volume, latest 5", "volume", 5),
    ("simple_5", "Simple, latest 5", "simple", 5),
    ("volume_3", "Volume, latest 3", "volume", 3),
    ("simple_3", "Simple, latest 3", "simple", 3),
    ("medial_all", "Medial, all years", "medial", None),
    ("regression_all", "Regression, all years", "regression", None),
)
# The percentile levels of a reserve range drawn from Mack's standard error.
MACK_RANGE_LEVELS = (50.0, 75.0, 90.0, 95.0, 99.5)
RANGE_FROM_MACK = "lognormal with Mack's standard error"
RANGE_FROM_BOOTSTRAP = "ODP bootstrap simulations"


@dataclass(frozen=True)
class LinkRatioCell:
    """One link ratio of the triangle; ``left_out_by`` says why its average left it out."""

    value: float | None
    left_out_by: str | None = None


@dataclass(frozen=True)
class CandidateAverage:
    """One candidate average of every development period (None where none is defined)."""

    key: str
    label: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class ReserveRange:
    """The reserve (IBNR) of an origin or of the total at a few percentile levels."""

    label: str
    best_estimate: float
    percentiles: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class WorkingPaper:
    """Every table of a reserving run's working paper, as plain numbers."""

    origins: tuple[str, ...]
    development_ages: tuple[int | float, ...]
    periods: tuple[str, ...]
    cumulative: tuple[tuple[float | None, ...], ...]
    incremental: tuple[tuple[float | None, ...], ...]
    link_ratios: tuple[tuple[LinkRatioCell, ...], ...]
    candidates: tuple[CandidateAverage, ...]
    # The run's selected factors (its development_factors, the tail last), as recorded.
    selected: tuple[dict[str, Any], ...]
    # The completed triangle: (value, projected?) per cell; ultimate by the selected factors.
    projected: tuple[tuple[tuple[float | None, bool], ...], ...]
    projected_ultimates: tuple[float | None, ...]
    pattern: tuple[tuple[int | float, float], ...]
    ranges: tuple[ReserveRange, ...]
    range_source: str | None


def working_paper(triangle: TriangleData, result: dict[str, Any]) -> WorkingPaper:
    """Return the working paper of ``result`` (``ReserveResult.to_dict()``) on its triangle."""
    ages = triangle.development_ages
    matrix = triangle.as_matrix()
    options = result.get("options") or {}
    exclusions = _exclusions(options)
    return WorkingPaper(
        origins=tuple(triangle.origins),
        development_ages=tuple(ages),
        periods=tuple(period_label(ages[k], ages[k + 1]) for k in range(len(ages) - 1)),
        cumulative=tuple(tuple(row) for row in matrix),
        incremental=tuple(_incremental(row) for row in matrix),
        link_ratios=_link_ratios(triangle, result, options),
        candidates=candidate_averages(triangle, exclude=exclusions),
        selected=tuple(result.get("development_factors") or ()),
        projected=_projected(triangle, result),
        projected_ultimates=_projected_ultimates(triangle, result),
        pattern=development_pattern(result),
        ranges=reserve_ranges(result),
        range_source=_range_source(result),
    )


def candidate_averages(
    triangle: TriangleData, *, exclude: tuple[tuple[str, int | float], ...] = ()
) -> tuple[CandidateAverage, ...]:
    """Return each candidate average of every period, the excluded link ratios left out.

    A period whose exclusions would leave no ratio takes them back for that candidate
    rather than failing: the table shows what the data gives.
    """
    candidates = []
    for key, label, average, n_periods in CANDIDATES:
        selection = DevelopmentSelection(average=average, n_periods=n_periods, exclude=exclude)
        try:
            development = fit_development(triangle, selection)
        except DevelopmentError:
            development = fit_development(
                triangle, DevelopmentSelection(average=average, n_periods=n_periods)
            )
        candidates.append(
            CandidateAverage(
                key=key,
                label=label,
                values=tuple(period.computed for period in development.periods),
            )
        )
    return tuple(candidates)


def development_pattern(result: dict[str, Any]) -> tuple[tuple[int | float, float], ...]:
    """Return (age, share of the ultimate developed at that age = 1 / CDF) for each age."""
    pattern = []
    for factor in result.get("development_factors") or ():
        cdf = factor.get("cdf")
        if isinstance(cdf, int | float) and cdf > 0:
            pattern.append((factor["from_age"], 1.0 / cdf))
    return tuple(pattern)


def reserve_ranges(result: dict[str, Any]) -> tuple[ReserveRange, ...]:
    """Return the IBNR of each origin and of the total at percentile levels (empty if none).

    The bootstrap's percentiles as simulated; from Mack's standard error, those of a
    lognormal with the IBNR as mean and the s.e. as standard deviation. Origins with no
    spread (fully developed) are left out.
    """
    rows = [*(result.get("origins") or ()), {**(result.get("totals") or {}), "origin": "Total"}]
    ranges = []
    for row in rows:
        ibnr = row.get("ibnr")
        if not isinstance(ibnr, int | float):
            continue
        percentiles = row.get("percentiles")
        if isinstance(percentiles, dict) and percentiles:
            levels = sorted((float(level), float(value)) for level, value in percentiles.items())
            ranges.append(ReserveRange(str(row["origin"]), float(ibnr), tuple(levels)))
            continue
        spread = row.get("mack_se")
        if isinstance(spread, int | float) and spread > 0 and ibnr > 0:
            ranges.append(
                ReserveRange(str(row["origin"]), float(ibnr), lognormal_percentiles(ibnr, spread))
            )
    return tuple(ranges)


def lognormal_percentiles(
    mean: float, std: float, levels: tuple[float, ...] = MACK_RANGE_LEVELS
) -> tuple[tuple[float, float], ...]:
    """Return the percentiles of the lognormal with this mean and standard deviation."""
    sigma2 = math.log1p((std / mean) ** 2)
    mu = math.log(mean) - sigma2 / 2
    normal = NormalDist()
    return tuple(
        (level, math.exp(mu + math.sqrt(sigma2) * normal.inv_cdf(level / 100))) for level in levels
    )


def _range_source(result: dict[str, Any]) -> str | None:
    totals = result.get("totals") or {}
    if totals.get("percentiles"):
        return RANGE_FROM_BOOTSTRAP
    if totals.get("mack_se"):
        return RANGE_FROM_MACK
    return None


def _exclusions(options: dict[str, Any]) -> tuple[tuple[str, int | float], ...]:
    pairs = []
    for item in options.get("exclude") or ():
        if isinstance(item, list | tuple) and len(item) == 2:
            pairs.append((str(item[0]), item[1]))
    return tuple(pairs)


def _incremental(row: list[float | None]) -> tuple[float | None, ...]:
    values: list[float | None] = []
    previous = None
    for value in row:
        if value is None:
            values.append(None)
        else:
            values.append(value if previous is None else value - previous)
        previous = value
    return tuple(values)


def _link_ratios(
    triangle: TriangleData, result: dict[str, Any], options: dict[str, Any]
) -> tuple[tuple[LinkRatioCell, ...], ...]:
    """Return each origin's link ratios, marked with the choice that left one out."""
    ages = triangle.development_ages
    judged = {
        (str(point["origin"]), point["from_age"]): point["reason"]
        for point in result.get("excluded_points") or ()
    }
    n_periods = options.get("n_periods")
    rows: list[list[LinkRatioCell]] = []
    defined_by_period: list[list[int]] = [[] for _ in range(len(ages) - 1)]
    for i, (origin, row) in enumerate(zip(triangle.origins, triangle.values, strict=True)):
        cells = []
        for k in range(len(ages) - 1):
            before = row[k] if k < len(row) else None
            after = row[k + 1] if k + 1 < len(row) else None
            if before in (None, 0) or after in (None, 0):
                cells.append(LinkRatioCell(None))
                continue
            defined_by_period[k].append(i)
            cells.append(LinkRatioCell(after / before, judged.get((origin, ages[k]))))
        rows.append(cells)
    if isinstance(n_periods, int) and n_periods > 0:
        for k, defined in enumerate(defined_by_period):
            for i in defined[:-n_periods]:
                if rows[i][k].left_out_by is None:
                    rows[i][k] = LinkRatioCell(rows[i][k].value, LEFT_OUT_OLDER)
    return tuple(tuple(cells) for cells in rows)


def _factor_by_age(result: dict[str, Any]) -> dict[Any, float]:
    return {
        factor["from_age"]: factor["ldf"]
        for factor in result.get("development_factors") or ()
        if isinstance(factor.get("ldf"), int | float)
    }


def _projected(
    triangle: TriangleData, result: dict[str, Any]
) -> tuple[tuple[tuple[float | None, bool], ...], ...]:
    """Return the triangle completed to the last age with the selected factors."""
    ages = triangle.development_ages
    factors = _factor_by_age(result)
    rows = []
    for row in triangle.values:
        cells: list[tuple[float | None, bool]] = [(value, False) for value in row]
        value = row[-1] if row else None
        for k in range(len(row), len(ages)):
            factor = factors.get(ages[k - 1])
            value = value * factor if value is not None and factor is not None else None
            cells.append((value, True))
        rows.append(tuple(cells))
    return tuple(rows)


def _projected_ultimates(triangle: TriangleData, result: dict[str, Any]) -> tuple:
    """Return each origin's value at the last age times the tail (the chain ladder ultimate)."""
    ages = triangle.development_ages
    factors = _factor_by_age(result)
    tail = factors.get(ages[-1], 1.0) if ages else 1.0
    ultimates = []
    for row in _projected(triangle, result):
        last = row[-1][0] if row else None
        ultimates.append(last * tail if last is not None else None)
    return tuple(ultimates)
