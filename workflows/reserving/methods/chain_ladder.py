"""Chain ladder with Mack's standard errors: ultimate = latest × selected CDF."""

from __future__ import annotations

from workflows.reserving.development import DevelopmentSelection
from workflows.reserving.methods.common import (
    excluded_points,
    factor_table,
    fit,
    legacy_selection,
    origin_rows,
    selection_options,
    totals,
)
from workflows.reserving.results import OriginReserve, ReserveResult, ratio
from workflows.reserving.tails import TailSelection
from workflows.reserving.triangles.data import TriangleData
from workflows.reserving.uncertainty.mack import mack_standard_errors

METHOD = "chain_ladder"


def chain_ladder_mack(
    triangle: TriangleData,
    *,
    average: str = "volume",
    tail_factor: float | None = None,
    selection: DevelopmentSelection | None = None,
    tail: TailSelection | None = None,
) -> ReserveResult:
    """Return chain ladder ultimates and IBNR with Mack's standard errors.

    ``selection`` holds the factor choices (``average`` alone is its short form) and
    ``tail`` the tail (``tail_factor`` alone is a constant tail). Raise
    ``DevelopmentError`` when the choices cannot be applied to this triangle.
    """
    selection, tail_selection = legacy_selection(average, tail_factor, selection, tail)
    development, tail_fit, cdfs, warnings = fit(triangle, selection, tail_selection)
    mack = mack_standard_errors(development, tail_fit)
    origins = []
    for (origin, age, latest, cdf), error in zip(
        origin_rows(triangle, cdfs), mack.standard_errors, strict=True
    ):
        ultimate = latest * cdf
        ibnr = ultimate - latest
        origins.append(
            OriginReserve(
                origin=origin,
                development_age=age,
                latest=latest,
                cdf=cdf,
                ultimate=ultimate,
                ibnr=ibnr,
                mack_se=error,
                cv=ratio(error, ibnr),
            )
        )
    return ReserveResult(
        method=METHOD,
        measure=triangle.measure,
        grain=triangle.grain(),
        origins=tuple(origins),
        totals=totals(METHOD, origins, mack_se=mack.total),
        development_factors=factor_table(development, tail_fit, cdfs),
        excluded_points=excluded_points(development),
        tail=tail_fit,
        options={"method": METHOD, **selection_options(selection, tail_selection, tail_fit)},
        warnings=tuple(dict.fromkeys([*warnings, *mack.warnings])),
    )
