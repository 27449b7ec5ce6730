"""The tail: development from the triangle's last age to ultimate, chosen or fitted.

``constant`` takes a factor and its reason; ``exponential`` and ``inverse_power`` fit a
curve to the selected factors from ``fit_from_age`` on and extrapolate it, as
chainladder's ``TailCurve`` does: ln(f − 1) = a + b·x (exponential) or a + b·ln(x)
(inverse power) by least squares over the period numbers x = 1, 2, … of the factors
above 1.00001, and the tail is the product of the fitted 1 + (f − 1) over the next 100
periods. ``bondy`` repeats the last selected factor (Bondy's tail, chainladder's
``TailBondy`` without an earliest age).

The tail's effect on Mack's standard error follows the method chainladder documents
(``TailBase._get_tail_stats``, after Mack 1999): the tail is one more development period
whose sigma and factor standard error are extrapolated log-linearly, ln σ(x) and
ln s.e.(x) fitted over the periods, at the "time" x* where the exponential curve through
the factors reaches the tail: ln(tail − 1) = a + b·x*. Unlike chainladder, factors at or
below 1 and zero sigmas are left out of these fits rather than counted as missing
values in the means (which in chainladder shifts the fit whenever a factor is ≤ 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workflows.reserving.development import Development, DevelopmentError
from workflows.reserving.results import TailResult

TAIL_METHODS = ("constant", "exponential", "inverse_power", "bondy")
CURVES = ("exponential", "inverse_power")
EXTRAPOLATION_PERIODS = 100
# Factors at or below this are left out of a curve fit (chainladder's reg_threshold).
FIT_THRESHOLD = 1.00001
# A tail at or below 1 is placed just above it to find its time (chainladder's rule).
TAIL_TIME_FLOOR = 1.001

MSG_TOO_FEW_POINTS = (
    "tail: the {method} curve needs at least two selected factors above 1 from age "
    "{age} on to fit; there {are} {count}"
)
MSG_NO_DECAY = (
    "tail: the {method} curve fitted to the factors from age {age} on does not decay "
    "(slope {slope:.4f} ≥ 0), so it gives no finite tail; fit from another age or give a "
    "constant tail"
)
MSG_NOT_A_TAIL = "tail: the {method} curve gives no usable tail factor ({factor!r})"
MSG_TAIL_VARIANCE = (
    "Mack's standard errors leave the tail's own variance out: {why}; the tail factor "
    "still scales the reserves and their standard errors"
)
WHY_FEW_FACTORS = "fewer than two development factors above 1 to place the tail in time"
WHY_FEW_SIGMAS = "fewer than two periods with a positive sigma and standard error to extrapolate"
WHY_FLAT = "the development factors do not decay, so the tail cannot be placed in time"
CONSTANT_REASON_LEGACY = "given as tail_factor"


@dataclass(frozen=True)
class TailSelection:
    """How the tail is chosen: a constant with its reason, a fitted curve, or Bondy's."""

    method: str
    factor: float | None = None
    reason: str = ""
    fit_from_age: int | float | None = None

    def to_dict(self) -> dict:
        """Return the selection as it is recorded in a result's options."""
        result: dict = {"method": self.method}
        if self.method == "constant":
            result.update(factor=self.factor, reason=self.reason)
        if self.method in CURVES and self.fit_from_age is not None:
            result["fit_from_age"] = self.fit_from_age
        return result


def fit_tail(
    development: Development, selection: TailSelection | None
) -> tuple[TailResult | None, tuple[str, ...]]:
    """Return the tail the selection gives on this development (None: no tail), and warnings.

    Raise DevelopmentError (parameter ``tail``) when a curve cannot be fitted.
    """
    if selection is None:
        return None, ()
    factors = list(development.factors)
    first_age = development.triangle.development_ages[0]
    if selection.method == "constant":
        tail = TailResult(
            method="constant", factor=float(selection.factor), reason=selection.reason
        )
    elif selection.method == "bondy":
        last = development.periods[-1]
        tail = TailResult(
            method="bondy",
            factor=factors[-1],
            reason=f"Bondy: the last selected factor ({last.label}) repeated",
        )
    else:
        tail = _fit_curve(development, selection, first_age)
    sigma, std_err, why = tail_variance(development, tail.factor)
    result = TailResult(
        method=tail.method,
        factor=tail.factor,
        reason=tail.reason,
        fit_from_age=tail.fit_from_age,
        fit_points=tail.fit_points,
        slope=tail.slope,
        intercept=tail.intercept,
        sigma=sigma,
        std_err=std_err,
    )
    return result, (MSG_TAIL_VARIANCE.format(why=why),) if why else ()


def _fit_curve(development: Development, selection: TailSelection, first_age) -> TailResult:
    method = selection.method
    start = selection.fit_from_age if selection.fit_from_age is not None else first_age
    points = [
        (number, math.log(period.factor - 1.0))
        for number, period in enumerate(development.periods, start=1)
        if period.from_age >= start and period.factor > FIT_THRESHOLD
    ]
    if len(points) < 2:
        raise DevelopmentError(
            "tail",
            MSG_TOO_FEW_POINTS.format(
                method=method,
                age=_age_text(start),
                are="is" if len(points) == 1 else "are",
                count=len(points),
            ),
        )
    xs = [float(x) if method == "exponential" else math.log(x) for x, _ in points]
    intercept, slope = _least_squares(xs, [y for _, y in points])
    if slope >= 0:
        raise DevelopmentError(
            "tail", MSG_NO_DECAY.format(method=method, age=_age_text(start), slope=slope)
        )
    n_periods = len(development.periods)
    factor = 1.0
    for x in range(n_periods + 1, n_periods + EXTRAPOLATION_PERIODS + 1):
        position = x if method == "exponential" else math.log(x)
        factor *= 1.0 + math.exp(intercept + slope * position)
    if not math.isfinite(factor):
        raise DevelopmentError("tail", MSG_NOT_A_TAIL.format(method=method, factor=factor))
    name = "exponential decay" if method == "exponential" else "inverse power"
    return TailResult(
        method=method,
        factor=factor,
        reason=(
            f"{name} curve fitted to {len(points)} selected factors from age "
            f"{_age_text(start)}, extrapolated over {EXTRAPOLATION_PERIODS} periods"
        ),
        fit_from_age=start,
        fit_points=len(points),
        slope=slope,
        intercept=intercept,
    )


def tail_variance(
    development: Development, factor: float
) -> tuple[float | None, float | None, str]:
    """Return the tail period's sigma and factor standard error for Mack, or why not.

    A tail of exactly 1 has no variance. Otherwise: the time x* where the exponential
    curve through the factors above 1 reaches the tail, and ln σ and ln s.e. fitted
    log-linearly over the periods and read at x* (chainladder's ``_get_tail_stats``).
    """
    if factor == 1.0:
        return 0.0, 0.0, ""
    development_points = [
        (number, math.log(period.factor - 1.0))
        for number, period in enumerate(development.periods, start=1)
        if period.factor > 1.0
    ]
    if len(development_points) < 2:
        return None, None, WHY_FEW_FACTORS
    intercept, slope = _least_squares(
        [float(x) for x, _ in development_points], [y for _, y in development_points]
    )
    if slope == 0:
        return None, None, WHY_FLAT
    time = (math.log(max(factor, TAIL_TIME_FLOOR) - 1.0) - intercept) / slope
    sigma_points = [
        (float(number), math.log(period.sigma), math.log(period.std_err))
        for number, period in enumerate(development.periods, start=1)
        if period.sigma and period.std_err
    ]
    if len(sigma_points) < 2:
        return None, None, WHY_FEW_SIGMAS
    xs = [x for x, _, _ in sigma_points]
    sigma_intercept, sigma_slope = _least_squares(xs, [s for _, s, _ in sigma_points])
    error_intercept, error_slope = _least_squares(xs, [e for _, _, e in sigma_points])
    sigma = math.exp(sigma_intercept + sigma_slope * time)
    std_err = math.exp(error_intercept + error_slope * time)
    return sigma, std_err, ""


def _least_squares(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Return the (intercept, slope) of the ordinary least-squares line through the points."""
    n = len(xs)
    mean_x = math.fsum(xs) / n
    mean_y = math.fsum(ys) / n
    sxx = math.fsum((x - mean_x) ** 2 for x in xs)
    sxy = math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else 0.0
    return mean_y - slope * mean_x, slope


def _age_text(age: int | float) -> str:
    if isinstance(age, float) and age.is_integer():
        return str(int(age))
    return str(age)
