"""The result of a reserving method, as frozen data with one stable JSON shape (``to_dict``).

Every method (chain ladder with Mack, Bornhuetter-Ferguson, Benktander, Cape Cod, the
ODP bootstrap) returns a ``ReserveResult``. Its ``to_dict()`` always has the same keys,
whatever the method; a figure a method does not produce is null (the Mack standard
error of a Cape Cod run, the percentiles of a chain ladder run). That shape is what a
reserving run keeps as its ``output_summary`` (the workflow adds the triangle read and
the artefacts written), documented field by field in ``docs/reserving-methods.md``:

- ``method``, ``measure``, ``grain`` (origin grain, development periods per origin,
  months per development period), ``options`` (every choice the result was made with);
- ``origins``: one row per origin (``OriginReserve``): latest, development age, selected
  CDF, ultimate, IBNR; Mack s.e. and CV (chain ladder); exposure, a-priori loss ratio
  and expected ultimate (Bornhuetter-Ferguson, Benktander, Cape Cod); the simulated
  IBNR's mean, standard deviation and percentiles (bootstrap);
- ``totals`` (``ReserveTotals``): the same figures over all origins, plus ``method``;
  the total Mack s.e. includes the correlation between origins;
- ``development_factors`` (``DevelopmentFactor``): the selected factor of each
  development period and where it came from (an average, an override with its reason,
  no data), its CDF, and Mack's sigma and standard error; the tail last;
- ``excluded_points`` (``ExcludedPoint``): each link ratio left out by a judgment;
- ``tail`` (``TailResult``), ``bootstrap`` (``BootstrapSummary``),
  ``actual_vs_expected`` (``ActualVsExpected``): null when not used;
- ``warnings``: plain-language notes about the data and the estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

Percentiles = tuple[tuple[float, float], ...]


def percentile_key(level: float) -> str:
    """Return how a percentile level is written as a key: 50 → "50", 99.5 → "99.5"."""
    return str(int(level)) if float(level).is_integer() else repr(float(level))


def percentiles_dict(percentiles: Percentiles | None) -> dict[str, float] | None:
    """Return ``((50, x), (99.5, y))`` as ``{"50": x, "99.5": y}``; None stays None."""
    if percentiles is None:
        return None
    return {percentile_key(level): value for level, value in percentiles}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, or None when either is missing or the divisor is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    result = numerator / denominator
    return result if math.isfinite(result) else None


@dataclass(frozen=True)
class OriginReserve:
    """The reserve of one origin period."""

    origin: str
    development_age: int | float
    latest: float
    cdf: float
    ultimate: float
    ibnr: float
    mack_se: float | None = None
    cv: float | None = None
    exposure: float | None = None
    apriori_loss_ratio: float | None = None
    expected_ultimate: float | None = None
    ibnr_mean: float | None = None
    ibnr_std: float | None = None
    percentiles: Percentiles | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the origin's figures; percentiles as {"50": x, …} or null."""
        return {
            "origin": self.origin,
            "development_age": self.development_age,
            "latest": self.latest,
            "cdf": self.cdf,
            "ultimate": self.ultimate,
            "ibnr": self.ibnr,
            "mack_se": self.mack_se,
            "cv": self.cv,
            "exposure": self.exposure,
            "apriori_loss_ratio": self.apriori_loss_ratio,
            "expected_ultimate": self.expected_ultimate,
            "ibnr_mean": self.ibnr_mean,
            "ibnr_std": self.ibnr_std,
            "percentiles": percentiles_dict(self.percentiles),
        }


@dataclass(frozen=True)
class ReserveTotals:
    """Totals over all origins; the Mack s.e. includes the correlation between them."""

    latest: float
    ultimate: float
    ibnr: float
    mack_se: float | None = None
    cv: float | None = None
    method: str = "chain_ladder"
    exposure: float | None = None
    expected_ultimate: float | None = None
    ibnr_mean: float | None = None
    ibnr_std: float | None = None
    percentiles: Percentiles | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the totals; percentiles as {"50": x, …} or null."""
        return {
            "method": self.method,
            "latest": self.latest,
            "ultimate": self.ultimate,
            "ibnr": self.ibnr,
            "mack_se": self.mack_se,
            "cv": self.cv,
            "exposure": self.exposure,
            "expected_ultimate": self.expected_ultimate,
            "ibnr_mean": self.ibnr_mean,
            "ibnr_std": self.ibnr_std,
            "percentiles": percentiles_dict(self.percentiles),
        }


@dataclass(frozen=True)
class DevelopmentFactor:
    """The selected factor of one development period, where it came from, and its CDF.

    ``source`` is ``average`` (the ``average`` of the used link ratios), ``override``
    (a judgmental ``selected_factors`` entry: ``reason`` says why; ``computed`` keeps
    the average the data gave), ``no_data`` (no usable link ratio: 1.0), or ``tail``
    (the last entry, from the last age to ultimate; 1.0 without a tail).
    ``sigma`` and ``std_err`` are Mack's sigma of the period and the standard error of
    its factor (for the tail: extrapolated, see ``tails``); null when not estimable.
    """

    period: str
    from_age: int | float
    to_age: int | float | None
    ldf: float
    cdf: float
    source: str = "average"
    average: str | None = None
    reason: str | None = None
    n_ratios: int | None = None
    computed: float | None = None
    sigma: float | None = None
    std_err: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the factor as a JSON object."""
        return {
            "period": self.period,
            "from_age": self.from_age,
            "to_age": self.to_age,
            "ldf": self.ldf,
            "cdf": self.cdf,
            "source": self.source,
            "average": self.average,
            "reason": self.reason,
            "n_ratios": self.n_ratios,
            "computed": self.computed,
            "sigma": self.sigma,
            "std_err": self.std_err,
        }


@dataclass(frozen=True)
class ExcludedPoint:
    """A link ratio left out of its period's average, and which choice left it out.

    ``reason`` is ``exclude`` (named in the exclusions), ``drop_high`` / ``drop_low``
    (among the n highest / lowest of its period), or ``medial_high`` / ``medial_low``
    (the highest / lowest one a medial average leaves out).
    """

    origin: str
    period: str
    from_age: int | float
    to_age: int | float
    ratio: float
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the point as a JSON object."""
        return {
            "origin": self.origin,
            "period": self.period,
            "from_age": self.from_age,
            "to_age": self.to_age,
            "ratio": self.ratio,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TailResult:
    """The tail factor from the last age to ultimate and how it was chosen.

    ``sigma`` and ``std_err`` are what Mack's standard error uses for the tail period
    (extrapolated log-linearly, as chainladder does); null when not estimable.
    """

    method: str
    factor: float
    reason: str
    fit_from_age: int | float | None = None
    fit_points: int | None = None
    slope: float | None = None
    intercept: float | None = None
    sigma: float | None = None
    std_err: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the tail as a JSON object."""
        return {
            "method": self.method,
            "factor": self.factor,
            "reason": self.reason,
            "fit_from_age": self.fit_from_age,
            "fit_points": self.fit_points,
            "slope": self.slope,
            "intercept": self.intercept,
            "sigma": self.sigma,
            "std_err": self.std_err,
        }


@dataclass(frozen=True)
class BootstrapSummary:
    """How the ODP bootstrap simulated (England & Verrall 2002; Shapland 2016).

    ``scale`` is the fitted over-dispersion φ; the histogram of the simulated total
    IBNR is kept as bin edges and counts, so it can be drawn again without the samples.
    """

    n_sims: int
    random_seed: int
    percentile_levels: tuple[float, ...]
    scale: float
    degrees_of_freedom: int
    residuals: int
    histogram_edges: tuple[float, ...] = ()
    histogram_counts: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the simulation settings and fitted scale as a JSON object."""
        return {
            "n_sims": self.n_sims,
            "random_seed": self.random_seed,
            "percentile_levels": list(self.percentile_levels),
            "scale": self.scale,
            "degrees_of_freedom": self.degrees_of_freedom,
            "residuals": self.residuals,
            "process_distribution": "gamma",
            "residual_adjustment": "hat matrix",
            "histogram": {
                "of": "total IBNR",
                "edges": list(self.histogram_edges),
                "counts": list(self.histogram_counts),
            },
        }


@dataclass(frozen=True)
class OriginEmergence:
    """Actual against expected emergence of one origin since the prior valuation.

    ``expected`` is what the prior run's pattern expected to emerge from its age then
    to the age now: prior IBNR × (1/CDF now − 1/CDF then) / (1 − 1/CDF then), which is
    the chain ladder's latest × (LDF − 1) and the Bornhuetter-Ferguson's expected
    ultimate × the change in percentage developed. ``note`` says why a figure is null.
    """

    origin: str
    prior_age: int | float | None
    current_age: int | float
    prior_latest: float | None
    current_latest: float
    actual: float | None
    expected: float | None
    difference: float | None
    actual_to_expected: float | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the origin's comparison as a JSON object."""
        return {
            "origin": self.origin,
            "prior_age": self.prior_age,
            "current_age": self.current_age,
            "prior_latest": self.prior_latest,
            "current_latest": self.current_latest,
            "actual": self.actual,
            "expected": self.expected,
            "difference": self.difference,
            "actual_to_expected": self.actual_to_expected,
            "note": self.note,
        }


@dataclass(frozen=True)
class ActualVsExpected:
    """Emergence since a prior valuation against what the prior run's selections expected."""

    prior: dict[str, Any]
    origins: tuple[OriginEmergence, ...]
    actual: float
    expected: float
    difference: float
    actual_to_expected: float | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as a JSON object."""
        return {
            "prior": dict(self.prior),
            "origins": [origin.to_dict() for origin in self.origins],
            "totals": {
                "actual": self.actual,
                "expected": self.expected,
                "difference": self.difference,
                "actual_to_expected": self.actual_to_expected,
            },
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ReserveResult:
    """The result of one reserving method on one triangle, as plain JSON-serialisable data."""

    measure: str
    origins: tuple[OriginReserve, ...]
    totals: ReserveTotals
    development_factors: tuple[DevelopmentFactor, ...]
    options: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    method: str = "chain_ladder"
    grain: dict[str, Any] = field(default_factory=dict)
    excluded_points: tuple[ExcludedPoint, ...] = ()
    tail: TailResult | None = None
    bootstrap: BootstrapSummary | None = None
    actual_vs_expected: ActualVsExpected | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the whole result in its stable shape (see the module's docstring)."""
        return {
            "method": self.method,
            "measure": self.measure,
            "grain": dict(self.grain),
            "options": dict(self.options),
            "origins": [origin.to_dict() for origin in self.origins],
            "totals": self.totals.to_dict(),
            "development_factors": [factor.to_dict() for factor in self.development_factors],
            "excluded_points": [point.to_dict() for point in self.excluded_points],
            "tail": self.tail.to_dict() if self.tail else None,
            "bootstrap": self.bootstrap.to_dict() if self.bootstrap else None,
            "actual_vs_expected": (
                self.actual_vs_expected.to_dict() if self.actual_vs_expected else None
            ),
            "warnings": list(self.warnings),
        }

    def output_summary(self) -> dict[str, Any]:
        """Return what a reserving run keeps as its output summary: the whole result."""
        return self.to_dict()
