"""The methods that blend the chain ladder with an expected loss: BF, Benktander, Cape Cod.

With q = 1 − 1/CDF the share of an origin's ultimate still to emerge and E its
expected ultimate (a-priori loss ratio × exposure):

- Bornhuetter-Ferguson: IBNR = E · q;
- Benktander with n iterations (chainladder's ``n_iters``; 1 is BF, 2 is Benktander's
  own, more tend to the chain ladder): ultimate = latest · (1 + q + … + q^(n−1)) + q^n · E;
- Cape Cod: the a-priori loss ratio is estimated from the triangle. Origin j's losses,
  trended to the latest origin (× (1 + trend)^years), over its used-up exposure
  (exposure / CDF), are averaged with weights decay^|i − j| around origin i:
  ELR(i) = Σ decay^|i−j| · latest(j) · trend(j) / Σ decay^|i−j| · exposure(j) / CDF(j),
  detrended to origin i (÷ trend(i)); then Bornhuetter-Ferguson with it (chainladder's
  ``CapeCod``). Origins without a calendar grain count as years for the trend.

Mack's standard error belongs to the chain ladder: these methods report none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from workflows.reserving.development import DevelopmentSelection
from workflows.reserving.methods.common import (
    excluded_points,
    factor_table,
    fit,
    origin_rows,
    per_origin,
    selection_options,
    totals,
)
from workflows.reserving.results import OriginReserve, ReserveResult
from workflows.reserving.tails import TailSelection
from workflows.reserving.triangles.data import GRAIN_MONTHS, TriangleData

BORNHUETTER_FERGUSON = "bornhuetter_ferguson"
BENKTANDER = "benktander"
CAPE_COD = "cape_cod"
BENKTANDER_ITERATIONS = 2

MSG_ITERATIONS = "n_iterations must be a whole number of at least 1, not {value!r}"
MSG_DECAY = "decay must be a number above 0 and at most 1, not {value!r}"


def bornhuetter_ferguson(
    triangle: TriangleData,
    *,
    exposure: Mapping[str, float],
    apriori_loss_ratio: float | Mapping[str, float],
    selection: DevelopmentSelection | None = None,
    tail: TailSelection | None = None,
) -> ReserveResult:
    """Return Bornhuetter-Ferguson reserves: latest + a-priori loss ratio × exposure × q."""
    return _expected_loss_method(
        BORNHUETTER_FERGUSON,
        triangle,
        exposure=exposure,
        apriori_loss_ratio=apriori_loss_ratio,
        selection=selection or DevelopmentSelection(),
        tail=tail,
        iterations=1,
        extra_options={"apriori_loss_ratio": _option_value(apriori_loss_ratio)},
    )


def benktander(
    triangle: TriangleData,
    *,
    exposure: Mapping[str, float],
    apriori_loss_ratio: float | Mapping[str, float],
    n_iterations: int = BENKTANDER_ITERATIONS,
    selection: DevelopmentSelection | None = None,
    tail: TailSelection | None = None,
) -> ReserveResult:
    """Return Benktander (iterated Bornhuetter-Ferguson) reserves after ``n_iterations``."""
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, int) or n_iterations < 1:
        raise ValueError(MSG_ITERATIONS.format(value=n_iterations))
    return _expected_loss_method(
        BENKTANDER,
        triangle,
        exposure=exposure,
        apriori_loss_ratio=apriori_loss_ratio,
        selection=selection or DevelopmentSelection(),
        tail=tail,
        iterations=n_iterations,
        extra_options={
            "apriori_loss_ratio": _option_value(apriori_loss_ratio),
            "n_iterations": n_iterations,
        },
    )


def cape_cod(
    triangle: TriangleData,
    *,
    exposure: Mapping[str, float],
    trend: float = 0.0,
    decay: float = 1.0,
    selection: DevelopmentSelection | None = None,
    tail: TailSelection | None = None,
) -> ReserveResult:
    """Return Cape Cod reserves: Bornhuetter-Ferguson with the loss ratio the data implies."""
    if not (isinstance(decay, int | float) and 0 < decay <= 1):
        raise ValueError(MSG_DECAY.format(value=decay))
    selection = selection or DevelopmentSelection()
    fitted = fit(triangle, selection, tail)
    exposures = per_origin(exposure, triangle.origins, "the exposure")
    rows = origin_rows(triangle, fitted[2])
    years = _years_to_latest(triangle)
    trends = [(1.0 + trend) ** t for t in years]
    used = [exposures[origin] / cdf for origin, _, _, cdf in rows]
    aprioris = {}
    for i, (origin, *_rest) in enumerate(rows):
        weights = [decay ** abs(i - j) for j in range(len(rows))]
        losses = math.fsum(
            w * latest * t for w, (_, _, latest, _), t in zip(weights, rows, trends, strict=True)
        )
        exposure_used = math.fsum(w * u for w, u in zip(weights, used, strict=True))
        aprioris[origin] = losses / exposure_used / trends[i]
    return _expected_loss_method(
        CAPE_COD,
        triangle,
        exposure=exposures,
        apriori_loss_ratio=aprioris,
        selection=selection,
        tail=tail,
        iterations=1,
        extra_options={"trend": float(trend), "decay": float(decay)},
        fitted=fitted,
    )


def _expected_loss_method(
    method: str,
    triangle: TriangleData,
    *,
    exposure: Mapping[str, float],
    apriori_loss_ratio: float | Mapping[str, float],
    selection: DevelopmentSelection,
    tail: TailSelection | None,
    iterations: int,
    extra_options: dict,
    fitted: tuple | None = None,
) -> ReserveResult:
    development, tail_fit, cdfs, warnings = fitted or fit(triangle, selection, tail)
    exposures = per_origin(exposure, triangle.origins, "the exposure")
    aprioris = per_origin(apriori_loss_ratio, triangle.origins, "apriori_loss_ratio")
    origins = []
    for origin, age, latest, cdf in origin_rows(triangle, cdfs):
        expected = aprioris[origin] * exposures[origin]
        unreported = 1.0 - 1.0 / cdf
        ultimate = latest * math.fsum(unreported**j for j in range(iterations))
        ultimate += unreported**iterations * expected
        origins.append(
            OriginReserve(
                origin=origin,
                development_age=age,
                latest=latest,
                cdf=cdf,
                ultimate=ultimate,
                ibnr=ultimate - latest,
                exposure=exposures[origin],
                apriori_loss_ratio=aprioris[origin],
                expected_ultimate=expected,
            )
        )
    return ReserveResult(
        method=method,
        measure=triangle.measure,
        grain=triangle.grain(),
        origins=tuple(origins),
        totals=totals(method, origins, with_exposure=True),
        development_factors=factor_table(development, tail_fit, cdfs),
        excluded_points=excluded_points(development),
        tail=tail_fit,
        options={
            "method": method,
            **selection_options(selection, tail, tail_fit),
            **extra_options,
        },
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _years_to_latest(triangle: TriangleData) -> list[float]:
    """Return how many years each origin lies before the latest one (for the trend)."""
    months = GRAIN_MONTHS.get(triangle.origin_grain or "", GRAIN_MONTHS["annual"])
    last = triangle.origin_count - 1
    return [(last - i) * months / GRAIN_MONTHS["annual"] for i in range(triangle.origin_count)]


def _option_value(value: float | Mapping[str, float]) -> float | dict[str, float]:
    if isinstance(value, int | float):
        return float(value)
    return {str(key): float(item) for key, item in value.items()}
