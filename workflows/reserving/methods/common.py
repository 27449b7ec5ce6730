"""What every reserving method shares: selected CDFs, the factor table, options, totals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from workflows.reserving.development import (
    ALPHAS,
    AVERAGES,
    Development,
    DevelopmentSelection,
    FactorOverride,
    fit_development,
    period_label,
)
from workflows.reserving.results import (
    DevelopmentFactor,
    ExcludedPoint,
    OriginReserve,
    ReserveTotals,
    TailResult,
    ratio,
)
from workflows.reserving.tails import CONSTANT_REASON_LEGACY, TailSelection, fit_tail
from workflows.reserving.triangles.data import TriangleData

SIGMA_INTERPOLATION = "mack"
ENGINE = "workflows.reserving (Mack 1993/1999, plain Python)"

MSG_BAD_AVERAGE = "average must be one of " + ", ".join(AVERAGES) + ", not {value!r}"
MSG_BAD_TAIL = "tail_factor must be a finite number above 0, not {value!r}"
MSG_MISSING_ORIGINS = "{what} has no value for origin(s) {origins}"


def legacy_selection(
    average: str, tail_factor: float | None, selection: DevelopmentSelection | None, tail
) -> tuple[DevelopmentSelection, TailSelection | None]:
    """Return the selection and tail from the short arguments of the original API."""
    if selection is None:
        if average not in ALPHAS:
            raise ValueError(MSG_BAD_AVERAGE.format(value=average))
        selection = DevelopmentSelection(average=average)
    if tail is None and tail_factor is not None:
        if (
            isinstance(tail_factor, bool)
            or not isinstance(tail_factor, int | float)
            or not math.isfinite(tail_factor)
            or tail_factor <= 0
        ):
            raise ValueError(MSG_BAD_TAIL.format(value=tail_factor))
        tail = TailSelection("constant", float(tail_factor), CONSTANT_REASON_LEGACY)
    return selection, tail


def fit(
    triangle: TriangleData,
    selection: DevelopmentSelection,
    tail_selection: TailSelection | None,
) -> tuple[Development, TailResult | None, list[float], list[str]]:
    """Fit the development and the tail; return them, the CDF at each age, and warnings."""
    development = fit_development(triangle, selection)
    tail, tail_warnings = fit_tail(development, tail_selection)
    cdfs = cumulative_factors(development, tail)
    return development, tail, cdfs, [*triangle.warnings, *development.warnings, *tail_warnings]


def cumulative_factors(development: Development, tail: TailResult | None) -> list[float]:
    """Return the CDF from each development age to ultimate, the tail included."""
    running = tail.factor if tail is not None else 1.0
    cdfs = [running]
    for factor in reversed(development.factors):
        running *= factor
        cdfs.append(running)
    return list(reversed(cdfs))


def factor_table(
    development: Development, tail: TailResult | None, cdfs: list[float]
) -> tuple[DevelopmentFactor, ...]:
    """Return the selected factor of each period with its source, then the tail."""
    rows = [
        DevelopmentFactor(
            period=period.label,
            from_age=period.from_age,
            to_age=period.to_age,
            ldf=period.factor,
            cdf=cdfs[period.index],
            source=period.source,
            average=period.average,
            reason=period.reason,
            n_ratios=period.n_used,
            computed=period.computed,
            sigma=period.sigma,
            std_err=period.std_err,
        )
        for period in development.periods
    ]
    last_age = development.triangle.development_ages[-1]
    rows.append(
        DevelopmentFactor(
            period=period_label(last_age, None),
            from_age=last_age,
            to_age=None,
            ldf=tail.factor if tail else 1.0,
            cdf=tail.factor if tail else 1.0,
            source="tail",
            reason=tail.reason if tail else "no tail selected",
            sigma=tail.sigma if tail else None,
            std_err=tail.std_err if tail else None,
        )
    )
    return tuple(rows)


def excluded_points(development: Development) -> tuple[ExcludedPoint, ...]:
    """Return every link ratio left out by a judgment on single points."""
    return tuple(
        ExcludedPoint(
            origin=link.origin,
            period=period.label,
            from_age=period.from_age,
            to_age=period.to_age,
            ratio=link.value,
            reason=link.left_out_by,
        )
        for period, link in development.excluded_points()
    )


def selection_options(
    selection: DevelopmentSelection, tail_selection: TailSelection | None, tail: TailResult | None
) -> dict[str, Any]:
    """Return the choices of a result as JSON-serialisable options (the run's record)."""
    return {
        "average": selection.average,
        "averages": {age_key(age): average for age, average in selection.averages},
        "n_periods": selection.n_periods,
        "drop_high": selection.drop_high,
        "drop_low": selection.drop_low,
        "exclude": [[origin, age] for origin, age in selection.exclude],
        "selected_factors": {
            age_key(item.from_age): {"factor": item.factor, "reason": item.reason}
            for item in selection.selected_factors
        },
        "tail": tail_selection.to_dict() if tail_selection else None,
        "tail_factor": tail.factor if tail else None,
        "sigma_interpolation": SIGMA_INTERPOLATION,
        "engine": ENGINE,
    }


def origin_rows(
    triangle: TriangleData, cdfs: list[float]
) -> list[tuple[str, int | float, float, float]]:
    """Return (origin, age, latest, CDF at that age) of each origin."""
    ages = triangle.development_ages
    return [
        (origin, ages[len(row) - 1], float(row[-1]), cdfs[len(row) - 1])
        for origin, row in zip(triangle.origins, triangle.values, strict=True)
    ]


def per_origin(
    values: float | Mapping[str, float] | None, origins: tuple[str, ...], what: str
) -> dict[str, float] | None:
    """Return a number or a per-origin mapping as {origin: value} over the triangle's origins."""
    if values is None:
        return None
    if isinstance(values, int | float):
        return dict.fromkeys(origins, float(values))
    missing = [origin for origin in origins if origin not in values]
    if missing:
        raise ValueError(MSG_MISSING_ORIGINS.format(what=what, origins=", ".join(missing)))
    return {origin: float(values[origin]) for origin in origins}


def totals(
    method: str,
    origins: list[OriginReserve],
    *,
    mack_se: float | None = None,
    with_exposure: bool = False,
) -> ReserveTotals:
    """Return the totals of the origins' figures (the Mack s.e. comes from its own formula)."""
    ibnr = math.fsum(origin.ibnr for origin in origins)
    return ReserveTotals(
        method=method,
        latest=math.fsum(origin.latest for origin in origins),
        ultimate=math.fsum(origin.ultimate for origin in origins),
        ibnr=ibnr,
        mack_se=mack_se,
        cv=ratio(mack_se, ibnr),
        exposure=math.fsum(o.exposure for o in origins) if with_exposure else None,
        expected_ultimate=(
            math.fsum(o.expected_ultimate for o in origins) if with_exposure else None
        ),
    )


def overrides(items: Mapping[Any, tuple[float, str]]) -> tuple[FactorOverride, ...]:
    """Return judgmental factors from {from age: (factor, reason)}."""
    return tuple(FactorOverride(age, factor, reason) for age, (factor, reason) in items.items())


def age_key(age: int | float) -> str:
    """Return a development age as a JSON object key: 12 → "12", 1.5 → "1.5"."""
    if isinstance(age, float) and age.is_integer():
        return str(int(age))
    return str(age)
