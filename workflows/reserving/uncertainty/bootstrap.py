"""The over-dispersed Poisson (ODP) bootstrap of the chain ladder: a distribution of the IBNR.

After England & Verrall (2002) and Shapland (2016, CAS Monograph 4), as chainladder's
``BootstrapODPSample`` and R's ``BootChainLadder`` do it:

1. Fit: the selected factors (as in the chain ladder) give fitted cumulative values
   backwards from the latest diagonal, and fitted incrementals m.
2. Residuals: unscaled Pearson residuals (q − m) / √|m| of the observed incrementals q;
   the scale φ = Σ r² / (N − p) with N cells and p = origins + ages − 1 parameters.
   Residuals are adjusted by the hat matrix of the ODP GLM (√(1 / (1 − h))); the zero
   ones (the corners) are left out, those of link ratios the selection left out too,
   and the rest centred on their mean.
3. Simulation: each of ``n_sims`` pseudo triangles q* = m + r* √|m| draws residuals
   with replacement; its factors are averaged again over the link ratios the selection
   used (the same average; excluded, older and dropped ratios stay out; judgmental
   factors and the tail stay as selected); the chain ladder then projects its latest
   diagonal, and each future
   incremental gets process variance: sign(m*) · Gamma(shape |m*| / φ, scale φ).
4. Figures: mean, standard deviation (n − 1) and percentiles of each origin's and the
   total's simulated IBNR, and a histogram of the total.

numpy's ``default_rng(random_seed)`` draws in a fixed order, in blocks of ``BLOCK``
simulations (fewer for triangles so large that a block would pass ``BLOCK_CELLS``), so
the same seed, ``n_sims`` and triangle give the same numbers, run after run.
numpy is imported inside ``bootstrap_odp``; importing this module loads nothing heavy.
"""

from __future__ import annotations

import math

from workflows.reserving.development import (
    ALPHAS,
    SOURCE_AVERAGE,
    DevelopmentError,
    DevelopmentSelection,
)
from workflows.reserving.methods.common import (
    excluded_points,
    factor_table,
    fit,
    origin_rows,
    selection_options,
)
from workflows.reserving.results import (
    BootstrapSummary,
    OriginReserve,
    ReserveResult,
    ReserveTotals,
    ratio,
)
from workflows.reserving.tails import TailSelection
from workflows.reserving.triangles.data import TriangleData

METHOD = "bootstrap_odp"
DEFAULT_SIMULATIONS = 1000
MAX_SIMULATIONS = 50_000
DEFAULT_PERCENTILES = (50.0, 75.0, 90.0, 95.0, 99.5)
BLOCK = 1000
# Cells of one block's arrays at most (32 MB of float64): large triangles take smaller blocks.
BLOCK_CELLS = 4_000_000
HISTOGRAM_BINS = 50

MSG_LEFT_TRUNCATED = (
    "the ODP bootstrap needs each origin's incremental values from the first age; origin "
    "{origin} starts at age {age}"
)
MSG_TOO_FEW_CELLS = (
    "the ODP bootstrap needs more observed cells ({cells}) than parameters ({parameters}: "
    "one per origin and per development age but one) to estimate its scale"
)
MSG_NO_RESIDUALS = "the ODP bootstrap has no non-zero residual to resample"
MSG_ZERO_FACTOR = "the ODP bootstrap cannot fit backwards through a factor of 0 (period {period})"
MSG_HAT_FALLBACK = (
    "the hat matrix of the ODP model is singular: residuals were adjusted by degrees of "
    "freedom, √(N / (N − p)), instead"
)
MSG_UNDEFINED_SIMULATIONS = (
    "{count} of {n_sims} simulations gave an undefined factor (a pseudo value of zero) and "
    "were left out of the figures"
)
MSG_SIMULATIONS = "n_sims must be a whole number from 1 to {maximum}, not {value!r}"
MSG_SEED = "random_seed must be a whole number from 0 to 2**63 − 1, not {value!r}"
MSG_PERCENTILES = "percentiles must be numbers above 0 and below 100, not {value!r}"


def bootstrap_odp(
    triangle: TriangleData,
    *,
    random_seed: int,
    n_sims: int = DEFAULT_SIMULATIONS,
    percentiles: tuple[float, ...] = DEFAULT_PERCENTILES,
    selection: DevelopmentSelection | None = None,
    tail: TailSelection | None = None,
) -> ReserveResult:
    """Return the chain ladder reserves with the ODP bootstrap's distribution of the IBNR.

    ``ibnr`` and ``ultimate`` are the chain ladder's; ``ibnr_mean``, ``ibnr_std``,
    ``cv`` and ``percentiles`` describe the simulated IBNR, per origin and in total.
    """
    import numpy as np

    _check_settings(n_sims, random_seed, percentiles)
    selection = selection or DevelopmentSelection()
    development, tail_fit, cdfs, warnings = fit(triangle, selection, tail)
    for origin, row in zip(triangle.origins, triangle.values, strict=True):
        if row[0] is None:
            first = next(j for j, value in enumerate(row) if value is not None)
            raise DevelopmentError(
                "method",
                MSG_LEFT_TRUNCATED.format(origin=origin, age=triangle.development_ages[first]),
            )
    model = _Model.fit(np, triangle, development)
    warnings.extend(model.warnings)
    rng = np.random.default_rng(random_seed)
    tail_factor = tail_fit.factor if tail_fit else 1.0
    block = max(1, min(BLOCK, BLOCK_CELLS // (model.observed.size + model.observed.shape[0])))
    blocks = []
    for start in range(0, n_sims, block):
        size = min(block, n_sims - start)
        blocks.append(model.simulate(np, rng, size, development, tail_factor))
    simulated = np.concatenate(blocks, axis=0)
    valid = np.isfinite(simulated).all(axis=1)
    if not valid.all():
        warnings.append(MSG_UNDEFINED_SIMULATIONS.format(count=int((~valid).sum()), n_sims=n_sims))
        simulated = simulated[valid]
    levels = tuple(float(level) for level in percentiles)
    total = simulated.sum(axis=1)

    origins = []
    for index, (origin, age, latest, cdf) in enumerate(origin_rows(triangle, cdfs)):
        mean, std, quantiles = _figures(np, simulated[:, index], levels)
        ultimate = latest * cdf
        origins.append(
            OriginReserve(
                origin=origin,
                development_age=age,
                latest=latest,
                cdf=cdf,
                ultimate=ultimate,
                ibnr=ultimate - latest,
                cv=ratio(std, mean),
                ibnr_mean=mean,
                ibnr_std=std,
                percentiles=quantiles,
            )
        )
    mean, std, quantiles = _figures(np, total, levels)
    edges, counts = _histogram(np, total)
    ibnr = math.fsum(origin.ibnr for origin in origins)
    totals = ReserveTotals(
        method=METHOD,
        latest=math.fsum(origin.latest for origin in origins),
        ultimate=math.fsum(origin.ultimate for origin in origins),
        ibnr=ibnr,
        cv=ratio(std, mean),
        ibnr_mean=mean,
        ibnr_std=std,
        percentiles=quantiles,
    )
    return ReserveResult(
        method=METHOD,
        measure=triangle.measure,
        grain=triangle.grain(),
        origins=tuple(origins),
        totals=totals,
        development_factors=factor_table(development, tail_fit, cdfs),
        excluded_points=excluded_points(development),
        tail=tail_fit,
        bootstrap=BootstrapSummary(
            n_sims=n_sims,
            random_seed=random_seed,
            percentile_levels=levels,
            scale=model.scale,
            degrees_of_freedom=model.degrees_of_freedom,
            residuals=model.residual_count,
            histogram_edges=edges,
            histogram_counts=counts,
        ),
        options={
            "method": METHOD,
            **selection_options(selection, tail, tail_fit),
            "n_sims": n_sims,
            "random_seed": random_seed,
            "percentiles": list(levels),
        },
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _check_settings(n_sims, random_seed, percentiles) -> None:
    if (
        isinstance(n_sims, bool)
        or not isinstance(n_sims, int)
        or not 1 <= n_sims <= MAX_SIMULATIONS
    ):
        raise ValueError(MSG_SIMULATIONS.format(maximum=MAX_SIMULATIONS, value=n_sims))
    if (
        isinstance(random_seed, bool)
        or not isinstance(random_seed, int)
        or not 0 <= random_seed < 2**63
    ):
        raise ValueError(MSG_SEED.format(value=random_seed))
    for level in percentiles:
        if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 100:
            raise ValueError(MSG_PERCENTILES.format(value=level))


def _figures(np, values, levels):
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    quantiles = tuple(
        (level, float(value))
        for level, value in zip(levels, np.percentile(values, levels), strict=True)
    )
    return mean, std, quantiles


def _histogram(np, values):
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    return tuple(float(edge) for edge in edges), tuple(int(count) for count in counts)


class _Model:
    """The fitted ODP model of a triangle and the residuals it resamples."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @classmethod
    def fit(cls, np, triangle: TriangleData, development) -> _Model:
        n_origins, n_ages = triangle.origin_count, triangle.development_age_count
        observed = np.zeros((n_origins, n_ages), dtype=bool)
        cumulative = np.zeros((n_origins, n_ages))
        latest_index = np.zeros(n_origins, dtype=int)
        for i, row in enumerate(triangle.values):
            observed[i, : len(row)] = True
            cumulative[i, : len(row)] = row
            latest_index[i] = len(row) - 1
        factors = np.array(development.factors)
        if (factors == 0).any():
            period = development.periods[int(np.argmax(factors == 0))].label
            raise DevelopmentError("selected_factors", MSG_ZERO_FACTOR.format(period=period))
        fitted = np.zeros_like(cumulative)
        for i in range(n_origins):
            a = latest_index[i]
            fitted[i, a] = cumulative[i, a]
            for j in range(a - 1, -1, -1):
                fitted[i, j] = fitted[i, j + 1] / factors[j]
        increments = np.where(observed, np.diff(cumulative, axis=1, prepend=0.0), 0.0)
        expected = np.where(observed, np.diff(fitted, axis=1, prepend=0.0), 0.0)

        # Residuals of the cells whose link ratio the selection left out do not count.
        counted = observed.copy()
        for period in development.periods:
            row_of = {origin: i for i, origin in enumerate(triangle.origins)}
            for link in period.ratios:
                if not link.used:
                    counted[row_of[link.origin], period.index + 1] = False
        usable = counted & (expected != 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            unscaled = np.where(usable, (increments - expected) / np.sqrt(np.abs(expected)), 0.0)
        cells = int(observed.sum())
        parameters = n_origins + n_ages - 1
        degrees_of_freedom = cells - parameters
        if degrees_of_freedom <= 0:
            raise DevelopmentError(
                "method", MSG_TOO_FEW_CELLS.format(cells=cells, parameters=parameters)
            )
        scale = float((unscaled**2).sum() / degrees_of_freedom)
        warnings = []
        adjustment = _hat_adjustment(np, observed, expected)
        if adjustment is None:
            warnings.append(MSG_HAT_FALLBACK)
            adjustment = np.full(observed.shape, math.sqrt(cells / degrees_of_freedom))
        adjusted = unscaled * adjustment
        pool = adjusted[usable & (adjusted != 0)]
        if pool.size == 0:
            raise DevelopmentError("method", MSG_NO_RESIDUALS)
        pool = pool - pool.mean()
        return cls(
            observed=observed,
            expected=expected,
            latest_index=latest_index,
            pool=pool,
            scale=scale,
            degrees_of_freedom=degrees_of_freedom,
            residual_count=int(pool.size),
            warnings=warnings,
            plan=_SelectionPlan.of(triangle, development),
        )

    def simulate(self, np, rng, size: int, development, tail_factor: float):
        """Return the simulated IBNR of each origin in ``size`` simulations (size × origins)."""
        observed = self.observed
        draws = rng.integers(0, self.pool.size, size=(size, *observed.shape))
        residuals = np.where(observed, self.pool[draws], 0.0)
        pseudo = self.expected + residuals * np.sqrt(np.abs(self.expected))
        cumulative = np.cumsum(np.where(observed, pseudo, 0.0), axis=2)
        factors = self.plan.factors(np, cumulative)
        n_origins, n_ages = observed.shape
        # Expected future increments from each pseudo latest diagonal, factor by factor;
        # the extra last column is the tail's.
        future = np.zeros((size, n_origins, n_ages + 1))
        for i in range(n_origins):
            value = cumulative[:, i, self.latest_index[i]]
            for k in range(self.latest_index[i], n_ages - 1):
                following = value * factors[:, k]
                future[:, i, k + 1] = following - value
                value = following
            future[:, i, n_ages] = value * (tail_factor - 1.0)
        shapes = np.abs(future) / self.scale
        with np.errstate(invalid="ignore"):
            process = rng.gamma(np.nan_to_num(shapes, nan=0.0), self.scale) * np.sign(future)
        process = np.where(np.isfinite(future), process, np.nan)
        return process.sum(axis=2)


class _SelectionPlan:
    """The factor selection re-applied to each pseudo triangle, vectorised.

    A period's average is taken over the link ratios the selection used on the actual
    triangle: excluded, older (``n_periods``) and dropped (high, low, medial) ones stay
    out of every simulation. Re-ranking each pseudo triangle's ratios would drop its
    highest noise as well and pull every factor below the selection's.
    """

    def __init__(self, periods):
        self.periods = periods

    @classmethod
    def of(cls, triangle: TriangleData, development) -> _SelectionPlan:
        row_of = {origin: i for i, origin in enumerate(triangle.origins)}
        periods = []
        for period in development.periods:
            if period.source != SOURCE_AVERAGE:
                periods.append((period.index, period.factor, None, 0))
                continue
            used = [row_of[link.origin] for link in period.ratios if link.used]
            periods.append((period.index, None, used, ALPHAS[period.average]))
        return cls(periods)

    def factors(self, np, cumulative):
        """Return each simulation's factor of each period (simulations × periods)."""
        size = cumulative.shape[0]
        result = np.empty((size, len(self.periods)))
        for index, fixed, used, alpha in self.periods:
            if fixed is not None:
                result[:, index] = fixed
                continue
            before = cumulative[:, used, index]
            after = cumulative[:, used, index + 1]
            weights = before**alpha
            with np.errstate(divide="ignore", invalid="ignore"):
                result[:, index] = (weights * (after / before)).sum(axis=1) / weights.sum(axis=1)
        return result


def _hat_adjustment(np, observed, expected):
    """Return √(1 / |1 − h|) per cell from the ODP GLM's hat matrix, or None if singular."""
    n_origins, n_ages = observed.shape
    cells = np.argwhere(observed)
    design = np.zeros((len(cells), n_origins + n_ages - 1))
    design[np.arange(len(cells)), cells[:, 0]] = 1.0
    later = cells[:, 1] > 0
    design[np.arange(len(cells))[later], n_origins + cells[later, 1] - 1] = 1.0
    weights = np.abs(expected[observed])
    information = design.T @ (design * weights[:, None])
    try:
        inverse = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(inverse).all():
        return None
    leverage = np.einsum("ij,jk,ik->i", design, inverse, design) * weights
    adjustment = np.ones(observed.shape)
    with np.errstate(divide="ignore"):
        values = np.sqrt(1.0 / np.abs(1.0 - leverage))
    adjustment[observed] = np.where(np.isfinite(values), values, 1.0)
    return adjustment
