"""Chain ladder reserves with Mack's standard errors, computed with the chainladder library.

Mack's model is fitted with his own rule for the last variance parameter (Mack 1993,
"Distribution-free calculation of the standard error of chain ladder reserve
estimates", ASTIN Bulletin 23(2)): chainladder's ``sigma_interpolation="mack"``. The
library default ("log-linear") gives other standard errors than the ones published
for the standard triangles, which the tests check against.

chainladder, pandas and numpy are imported inside the functions so that importing this
module (and the web app) stays fast.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Literal

from workflows.reserving.analysis import period_label
from workflows.reserving.triangles import TriangleData

Average = Literal["volume", "simple", "regression"]
AVERAGES = ("volume", "simple", "regression")
SIGMA_INTERPOLATION = "mack"
METHOD = "chain_ladder_mack"

# chainladder needs dates: origin i and development age j are mapped to calendar years
# BASE_YEAR + i and BASE_YEAR + i + j, whatever the triangle's real periods are.
BASE_YEAR = 1800

MSG_BAD_AVERAGE = "average must be one of volume, simple, regression, not {value!r}"
MSG_BAD_TAIL = "tail_factor must be a finite number above 0, not {value!r}"
MSG_NO_STANDARD_ERROR = (
    "Mack standard error not estimable for origin {origin}: too few age-to-age factors to "
    "estimate the variance parameters (Mack's rule needs the two previous periods)"
)


@dataclass(frozen=True)
class OriginReserve:
    """Chain ladder result of one origin period."""

    origin: str
    development_age: int | float
    latest: float
    cdf: float
    ultimate: float
    ibnr: float
    mack_se: float | None
    cv: float | None


@dataclass(frozen=True)
class ReserveTotals:
    """Totals over all origins; the standard error includes the correlation between them."""

    latest: float
    ultimate: float
    ibnr: float
    mack_se: float | None
    cv: float | None


@dataclass(frozen=True)
class DevelopmentFactor:
    """Selected age-to-age factor of one development period and the CDF from its start."""

    period: str
    from_age: int | float
    to_age: int | float | None
    ldf: float
    cdf: float


@dataclass(frozen=True)
class ReserveResult:
    """Chain ladder with Mack standard errors, as plain JSON-serialisable data."""

    measure: str
    origins: tuple[OriginReserve, ...]
    totals: ReserveTotals
    development_factors: tuple[DevelopmentFactor, ...]
    options: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    method: str = METHOD

    def to_dict(self) -> dict:
        """Return the whole result as JSON-serialisable dicts and lists."""
        return {
            "method": self.method,
            "measure": self.measure,
            "options": dict(self.options),
            "origins": [asdict(origin) for origin in self.origins],
            "totals": asdict(self.totals),
            "development_factors": [asdict(factor) for factor in self.development_factors],
            "warnings": list(self.warnings),
        }

    def output_summary(self) -> dict:
        """Return the totals, factors and options: what a workflow run shows as its summary."""
        result = self.to_dict()
        del result["origins"]
        return result


def chain_ladder_mack(
    triangle: TriangleData,
    *,
    average: Average = "volume",
    tail_factor: float | None = None,
) -> ReserveResult:
    """Return chain ladder ultimates and IBNR with Mack's standard errors.

    ``average`` selects the age-to-age factors (volume-weighted, simple or regression
    through the origin, Mack's alpha = 1, 0, 2); ``tail_factor`` (optional) develops the
    last observed age to ultimate.
    """
    if average not in AVERAGES:
        raise ValueError(MSG_BAD_AVERAGE.format(value=average))
    if tail_factor is not None:
        if (
            isinstance(tail_factor, bool)
            or not isinstance(tail_factor, int | float)
            or not math.isfinite(tail_factor)
            or tail_factor <= 0
        ):
            raise ValueError(MSG_BAD_TAIL.format(value=tail_factor))
        tail_factor = float(tail_factor)

    import chainladder as cl

    with warnings.catch_warnings():
        # chainladder and numpy emit deprecation and divide-by-zero noise on every fit.
        warnings.simplefilter("ignore")
        developed = cl.Development(
            average=average, sigma_interpolation=SIGMA_INTERPOLATION
        ).fit_transform(to_chainladder(triangle))
        if tail_factor is not None:
            developed = cl.TailConstant(tail=tail_factor).fit_transform(developed)
        model = cl.MackChainladder().fit(developed)
        ldfs = [float(x) for x in developed.ldf_.values[0, 0, 0, :]]
        cdfs = [float(x) for x in developed.cdf_.values[0, 0, 0, :]]
        ultimates = [float(x) for x in model.ultimate_.values[0, 0, :, -1]]
        standard_errors = [float(x) for x in model.mack_std_err_.values[0, 0, :, -1]]
        total_standard_error = float(model.total_mack_std_err_.values.ravel()[0])

    ages = triangle.development_ages
    result_warnings = list(triangle.warnings)
    origins = []
    for i, (origin, row) in enumerate(zip(triangle.origins, triangle.values, strict=True)):
        latest = row[-1]
        age_index = len(row) - 1
        cdf = cdfs[age_index] if age_index < len(cdfs) else 1.0
        # chainladder reads a zero latest value as missing; the chain ladder ultimate is
        # still latest × CDF.
        ultimate = ultimates[i] if math.isfinite(ultimates[i]) else latest * cdf
        ibnr = ultimate - latest
        mack_se: float | None = standard_errors[i]
        if not math.isfinite(mack_se):
            if ibnr == 0:
                mack_se = 0.0
            else:
                mack_se = None
                result_warnings.append(MSG_NO_STANDARD_ERROR.format(origin=origin))
        origins.append(
            OriginReserve(
                origin=origin,
                development_age=ages[age_index],
                latest=latest,
                cdf=cdf,
                ultimate=ultimate,
                ibnr=ibnr,
                mack_se=mack_se,
                cv=_ratio(mack_se, ibnr),
            )
        )

    total_ibnr = math.fsum(origin.ibnr for origin in origins)
    total_se: float | None = total_standard_error
    if any(origin.mack_se is None for origin in origins) or not math.isfinite(total_se):
        total_se = None
    totals = ReserveTotals(
        latest=math.fsum(origin.latest for origin in origins),
        ultimate=math.fsum(origin.ultimate for origin in origins),
        ibnr=total_ibnr,
        mack_se=total_se,
        cv=_ratio(total_se, total_ibnr),
    )

    n_periods = len(ages) - 1
    factors = [
        DevelopmentFactor(
            period=period_label(ages[j], ages[j + 1]),
            from_age=ages[j],
            to_age=ages[j + 1],
            ldf=ldfs[j],
            cdf=cdfs[j],
        )
        for j in range(n_periods)
    ]
    # TailConstant spreads the tail over extra periods; report it as one factor.
    tail = math.prod(ldfs[n_periods:]) if tail_factor is not None else 1.0
    factors.append(
        DevelopmentFactor(
            period=period_label(ages[-1], None), from_age=ages[-1], to_age=None, ldf=tail, cdf=tail
        )
    )
    return ReserveResult(
        measure=triangle.measure,
        origins=tuple(origins),
        totals=totals,
        development_factors=tuple(factors),
        options={
            "average": average,
            "tail_factor": tail_factor,
            "sigma_interpolation": SIGMA_INTERPOLATION,
            "library": f"chainladder {cl.__version__}",
        },
        warnings=tuple(result_warnings),
    )


def to_chainladder(triangle: TriangleData):
    """Return the triangle as a chainladder.Triangle with annual origin and development grain."""
    import chainladder as cl
    import pandas as pd

    records = [
        (pd.Timestamp(BASE_YEAR + i, 1, 1), pd.Timestamp(BASE_YEAR + i + j, 12, 31), value)
        for i, row in enumerate(triangle.values)
        for j, value in enumerate(row)
    ]
    frame = pd.DataFrame(records, columns=["origin", "valuation", "value"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl.Triangle(
            frame, origin="origin", development="valuation", columns=["value"], cumulative=True
        )


def _ratio(numerator: float | None, denominator: float) -> float | None:
    if numerator is None or denominator == 0:
        return None
    return numerator / denominator
