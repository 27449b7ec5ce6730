"""Age-to-age factors of a triangle and their simple and volume-weighted averages.

Plain Python on purpose: the factors are ratios of the user's own numbers, so the
analysis needs no numerical library and is exact to the last digit the user sees.
"""

from __future__ import annotations

import math

from workflows.reserving.development import period_label
from workflows.reserving.triangles import TriangleData


def triangle_analysis(triangle: TriangleData) -> dict:
    """Return the age-to-age factors per origin and their averages per development period.

    A factor from a zero value is undefined, and chainladder reads zeros as missing, so
    factors from or to a zero (or from an age an origin did not record) are reported as
    None and left out of both averages; the volume average then equals chainladder's LDF.
    ``cumulative_factors`` are the products of the averages from each age to the last
    observed age, without a tail.
    """
    ages = triangle.development_ages
    periods = [
        {"label": period_label(ages[j], ages[j + 1]), "from_age": ages[j], "to_age": ages[j + 1]}
        for j in range(len(ages) - 1)
    ]
    factors_by_origin = []
    for origin, row in zip(triangle.origins, triangle.values, strict=True):
        factors: list[float | None] = []
        for j in range(len(periods)):
            if _defined(row, j):
                factors.append(row[j + 1] / row[j])
            else:
                factors.append(None)
        factors_by_origin.append({"origin": origin, "factors": factors})

    simple: list[float | None] = []
    volume: list[float | None] = []
    counts: list[int] = []
    for j in range(len(periods)):
        pairs = [(row[j], row[j + 1]) for row in triangle.values if _defined(row, j)]
        counts.append(len(pairs))
        if not pairs:
            simple.append(None)
            volume.append(None)
            continue
        simple.append(math.fsum(after / before for before, after in pairs) / len(pairs))
        denominator = math.fsum(before for before, _ in pairs)
        volume.append(math.fsum(after for _, after in pairs) / denominator if denominator else None)
    return {
        "measure": triangle.measure,
        "origins": list(triangle.origins),
        "development_ages": list(ages),
        "periods": periods,
        "age_to_age": factors_by_origin,
        "factor_counts": counts,
        "averages": {"simple": simple, "volume": volume},
        "cumulative_factors": {
            "simple": _cumulative(simple),
            "volume": _cumulative(volume),
        },
    }


def _cumulative(factors: list[float | None]) -> list[float | None]:
    """Return, for each age, the product of the factors from it to the last age."""
    result: list[float | None] = [1.0]
    running: float | None = 1.0
    for factor in reversed(factors):
        running = running * factor if running is not None and factor is not None else None
        result.append(running)
    return list(reversed(result))


def _defined(row: tuple[float | None, ...], j: int) -> bool:
    """Return whether the factor of a row from age index j to j + 1 is defined."""
    return j + 1 < len(row) and row[j] not in (None, 0) and row[j + 1] not in (None, 0)
