"""Age-to-age factors: the link ratios, which ones are used, their averages, the selections.

The actuary's choices are a frozen ``DevelopmentSelection``: the average (per period if
wanted), how many recent origins to use, how many high and low ratios to drop, single
link ratios to exclude, and judgmental factors with their reasons. ``fit_development``
applies them to a triangle and returns a frozen ``Development``: every link ratio with
whether it was used (and if not, why), each period's computed average, the selected
factor and its source, and Mack's variance parameter sigma² of the period.

The averages are Mack's (1999) weighted averages of the link ratios F = C(k+1) / C(k):
f = Σ C(k)^α F / Σ C(k)^α, with α = 1 for the volume-weighted average, 0 for the simple
one (and the medial, a simple average without the highest and lowest ratio) and 2 for
the regression through the origin. Sigma² = Σ C(k)^α (F − f)² / (n − 1) over the n used
ratios, around the computed average; a period with fewer than two ratios takes Mack's
(1993) rule from the two before it: min(σ⁴(k−1) / σ²(k−2), σ²(k−2), σ²(k−1)).

Plain Python (``math.fsum``) on purpose: the factors are ratios of the user's own
numbers, and the same choices must give the same digits every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from workflows.reserving.triangles.data import TriangleData

AVERAGES = ("volume", "simple", "regression", "medial")
# Mack's alpha: the power of C(k) in a link ratio's weight (Mack 1999).
ALPHAS = {"volume": 1, "simple": 0, "medial": 0, "regression": 2}

# Why a link ratio is left out of its period's average.
LEFT_OUT_EXCLUDED = "exclude"
LEFT_OUT_OLDER = "n_periods"
LEFT_OUT_HIGH = "drop_high"
LEFT_OUT_LOW = "drop_low"
LEFT_OUT_MEDIAL_HIGH = "medial_high"
LEFT_OUT_MEDIAL_LOW = "medial_low"
# Left out by ranking within the period: high / low drops and the medial average's.
DROPPED = (LEFT_OUT_HIGH, LEFT_OUT_LOW, LEFT_OUT_MEDIAL_HIGH, LEFT_OUT_MEDIAL_LOW)
# Left-out reasons that are an actuary's judgment on single points (shown in the results).
JUDGED = (LEFT_OUT_EXCLUDED, *DROPPED)

SOURCE_AVERAGE = "average"
SOURCE_OVERRIDE = "override"
SOURCE_NO_DATA = "no_data"

SIGMA_FROM_DATA = "data"
SIGMA_MACK_RULE = "mack_rule"

MSG_ALL_EXCLUDED = (
    "development period {period} has no link ratio left once the excluded points are left "
    "out ({count} excluded); keep at least one, or select its factor in selected_factors"
)
MSG_NO_RATIOS = (
    "development period {period} has no usable link ratio (the values at age {age} are "
    "zero or not recorded): its factor is taken as 1.000; select one in selected_factors "
    "if the development there is known"
)
MSG_NO_AVERAGE = (
    "development period {period}: the {average} average of its link ratios cannot be "
    "computed (its weights sum to zero): its factor is taken as 1.000; select one in "
    "selected_factors"
)
MSG_DROPS_IGNORED = (
    "development period {period} has only {count} link ratio(s): dropping {high} high and "
    "{low} low would leave none, so none were dropped there"
)
MSG_OVERRIDE = (
    "development period {period}: the selected factor {factor:.6f} replaces the {average} "
    "average {computed} ({reason})"
)
MSG_OVERRIDE_SIGMA = (
    "Mack's standard error treats the selected factor of period {period} as if it were "
    "estimated from the data, with the data's variance: Mack's model has no term for "
    "judgment"
)
MSG_NEGATIVE_SIGMA = (
    "development period {period}: Mack's variance cannot be estimated (negative cumulative "
    "values make its weights negative)"
)


class DevelopmentError(ValueError):
    """Choices that cannot be applied to the triangle; ``param`` names the one at fault."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True)
class FactorOverride:
    """A judgmental factor for the period starting at ``from_age``, with its reason."""

    from_age: int | float
    factor: float
    reason: str


@dataclass(frozen=True)
class DevelopmentSelection:
    """How the actuary selects the age-to-age factors.

    ``average`` applies to every period except those in ``averages`` ((from age,
    average) pairs); ``n_periods`` keeps the latest n origins of each period (None: all);
    ``drop_high`` / ``drop_low`` drop that many highest / lowest ratios of each period;
    ``exclude`` leaves out single link ratios, named by (origin, from age);
    ``selected_factors`` replaces the average of a period by a judgmental factor.
    """

    average: str = "volume"
    averages: tuple[tuple[int | float, str], ...] = ()
    n_periods: int | None = None
    drop_high: int = 0
    drop_low: int = 0
    exclude: tuple[tuple[str, int | float], ...] = ()
    selected_factors: tuple[FactorOverride, ...] = ()

    def average_for(self, from_age: int | float) -> str:
        """Return the average of the period starting at ``from_age``."""
        return dict(self.averages).get(from_age, self.average)

    def override_for(self, from_age: int | float) -> FactorOverride | None:
        """Return the judgmental factor of the period starting at ``from_age``, if any."""
        return next((item for item in self.selected_factors if item.from_age == from_age), None)


@dataclass(frozen=True)
class LinkRatio:
    """One link ratio C(k+1) / C(k) of an origin, and whether its period's average used it.

    ``value`` is None when the ratio is undefined (from or to a zero; chainladder reads
    zeros as missing too). ``left_out_by`` says which choice left a defined ratio out.
    """

    origin: str
    from_value: float
    to_value: float
    value: float | None
    used: bool
    left_out_by: str | None = None


@dataclass(frozen=True)
class PeriodFit:
    """The fitted development of one period, from ``from_age`` to ``to_age``."""

    index: int
    from_age: int | float
    to_age: int | float
    average: str
    ratios: tuple[LinkRatio, ...]
    computed: float | None
    factor: float
    source: str
    reason: str | None
    sigma2: float | None
    sigma_source: str | None
    weight_sum: float

    @property
    def alpha(self) -> int:
        return ALPHAS[self.average]

    @property
    def label(self) -> str:
        return period_label(self.from_age, self.to_age)

    @property
    def n_used(self) -> int:
        return sum(1 for ratio in self.ratios if ratio.used)

    @property
    def factor_variance(self) -> float | None:
        """Return the variance of the factor's estimate, σ² / Σ C(k)^α (Mack 1999)."""
        if self.sigma2 is None or self.weight_sum <= 0:
            return None
        return self.sigma2 / self.weight_sum

    @property
    def std_err(self) -> float | None:
        variance = self.factor_variance
        return math.sqrt(variance) if variance is not None else None

    @property
    def sigma(self) -> float | None:
        return math.sqrt(self.sigma2) if self.sigma2 is not None else None


@dataclass(frozen=True)
class Development:
    """A triangle's development as selected: one ``PeriodFit`` per period, and warnings."""

    triangle: TriangleData
    selection: DevelopmentSelection
    periods: tuple[PeriodFit, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def factors(self) -> tuple[float, ...]:
        return tuple(period.factor for period in self.periods)

    def excluded_points(self) -> list[tuple[PeriodFit, LinkRatio]]:
        """Return each link ratio left out by a judgment on single points, period by period."""
        return [
            (period, ratio)
            for period in self.periods
            for ratio in period.ratios
            if ratio.left_out_by in JUDGED
        ]


def period_label(from_age: int | float, to_age: int | float | None) -> str:
    """Return the label of a development period, e.g. '12-24' or '120-Ult'."""
    return f"{_age_text(from_age)}-{_age_text(to_age) if to_age is not None else 'Ult'}"


def fit_development(triangle: TriangleData, selection: DevelopmentSelection) -> Development:
    """Apply the selection to the triangle; raise DevelopmentError if it cannot be applied."""
    ages = triangle.development_ages
    warnings: list[str] = []
    fits: list[PeriodFit] = []
    excluded = set(selection.exclude)
    for k in range(len(ages) - 1):
        fits.append(_fit_period(triangle, selection, k, excluded, warnings))
    fits = _fill_sigmas(fits)
    for fit in fits:
        if fit.source == SOURCE_OVERRIDE and fit.sigma2 is not None:
            warnings.append(MSG_OVERRIDE_SIGMA.format(period=fit.label))
    return Development(
        triangle=triangle, selection=selection, periods=tuple(fits), warnings=tuple(warnings)
    )


def _fit_period(
    triangle: TriangleData,
    selection: DevelopmentSelection,
    k: int,
    excluded: set[tuple[str, int | float]],
    warnings: list[str],
) -> PeriodFit:
    ages = triangle.development_ages
    from_age, to_age = ages[k], ages[k + 1]
    label = period_label(from_age, to_age)
    average = selection.average_for(from_age)
    alpha = ALPHAS[average]

    # (origin, C(k), C(k+1)) of every origin observed at both ages, oldest first.
    pairs = [
        (origin, row[k], row[k + 1])
        for origin, row in zip(triangle.origins, triangle.values, strict=True)
        if k + 1 < len(row) and row[k] is not None and row[k + 1] is not None
    ]
    left_out: dict[str, str] = {}
    defined = [origin for origin, before, after in pairs if before != 0 and after != 0]
    # Looked up for every pair: a set keeps a period linear in its origins.
    is_defined = set(defined)
    for origin in defined:
        if (origin, from_age) in excluded:
            left_out[origin] = LEFT_OUT_EXCLUDED
    if selection.n_periods is not None:
        # The latest n origins whose ratio is defined (a ratio from a zero does not count).
        recent = set(defined[-selection.n_periods :])
        for origin in defined:
            if origin not in recent and origin not in left_out:
                left_out[origin] = LEFT_OUT_OLDER
    remaining = [
        (origin, before, after)
        for origin, before, after in pairs
        if origin in is_defined and origin not in left_out
    ]
    if defined and not remaining and selection.override_for(from_age) is None:
        raise DevelopmentError(
            "exclude",
            MSG_ALL_EXCLUDED.format(
                period=label, count=sum(1 for r in left_out.values() if r == LEFT_OUT_EXCLUDED)
            ),
        )
    _drop_extremes(selection, average, label, remaining, left_out, warnings)

    ratios = tuple(
        LinkRatio(
            origin=origin,
            from_value=before,
            to_value=after,
            value=after / before if origin in is_defined else None,
            used=origin in is_defined and origin not in left_out,
            left_out_by=left_out.get(origin),
        )
        for origin, before, after in pairs
    )
    used = [ratio for ratio in ratios if ratio.used]
    weights = [ratio.from_value**alpha for ratio in used]
    weight_sum = math.fsum(weights)
    computed: float | None = None
    if used and weight_sum != 0:
        computed = math.fsum(w * r.value for w, r in zip(weights, used, strict=True)) / weight_sum
        if not math.isfinite(computed):
            computed = None
    elif used:
        warnings.append(MSG_NO_AVERAGE.format(period=label, average=average))

    override = selection.override_for(from_age)
    reason: str | None = None
    if override is not None:
        factor, source, reason = override.factor, SOURCE_OVERRIDE, override.reason
        warnings.append(
            MSG_OVERRIDE.format(
                period=label,
                factor=factor,
                average=average,
                computed=f"{computed:.6f}" if computed is not None else "(none)",
                reason=reason,
            )
        )
    elif computed is not None:
        factor, source = computed, SOURCE_AVERAGE
    else:
        factor, source = 1.0, SOURCE_NO_DATA
        if not used:
            warnings.append(MSG_NO_RATIOS.format(period=label, age=_age_text(from_age)))

    sigma2: float | None = None
    sigma_source: str | None = None
    if computed is not None and len(used) >= 2:
        squares = math.fsum(
            w * (r.value - computed) ** 2 for w, r in zip(weights, used, strict=True)
        )
        sigma2 = squares / (len(used) - 1)
        sigma_source = SIGMA_FROM_DATA
        if sigma2 < 0 or not math.isfinite(sigma2):
            warnings.append(MSG_NEGATIVE_SIGMA.format(period=label))
            sigma2, sigma_source = None, None
    return PeriodFit(
        index=k,
        from_age=from_age,
        to_age=to_age,
        average=average,
        ratios=ratios,
        computed=computed,
        factor=factor,
        source=source,
        reason=reason,
        sigma2=sigma2,
        sigma_source=sigma_source,
        weight_sum=weight_sum,
    )


def _drop_extremes(
    selection: DevelopmentSelection,
    average: str,
    label: str,
    remaining: list[tuple[str, float, float]],
    left_out: dict[str, str],
    warnings: list[str],
) -> None:
    """Mark the highest and lowest ratios to drop (drop_high/low, and the medial's one each).

    Ratios are ranked by value, ties by the earlier value (chainladder's order). A
    period keeps all its ratios when dropping would leave none, with a warning.
    """
    medial = average == "medial"
    high = max(selection.drop_high, 1) if medial else selection.drop_high
    low = max(selection.drop_low, 1) if medial else selection.drop_low
    if not (high or low) or not remaining:
        return
    if high + low >= len(remaining):
        warnings.append(
            MSG_DROPS_IGNORED.format(period=label, count=len(remaining), high=high, low=low)
        )
        return
    ranked = sorted(remaining, key=lambda item: (item[2] / item[1], item[1]))
    for position, (origin, _, _) in enumerate(ranked):
        if position < low:
            by_selection = position < selection.drop_low
            left_out[origin] = LEFT_OUT_LOW if by_selection else LEFT_OUT_MEDIAL_LOW
        elif position >= len(ranked) - high:
            by_selection = len(ranked) - position <= selection.drop_high
            left_out[origin] = LEFT_OUT_HIGH if by_selection else LEFT_OUT_MEDIAL_HIGH


def _fill_sigmas(fits: list[PeriodFit]) -> list[PeriodFit]:
    """Give each period without a data sigma² Mack's rule from the two periods before it."""
    from dataclasses import replace

    filled: list[PeriodFit] = []
    for k, fit in enumerate(fits):
        if fit.sigma2 is None and k >= 2:
            older, previous = filled[k - 2].sigma2, filled[k - 1].sigma2
            if older is not None and previous is not None:
                candidates = [older, previous]
                if older > 0:
                    candidates.append(previous**2 / older)
                fit = replace(fit, sigma2=min(candidates), sigma_source=SIGMA_MACK_RULE)
        filled.append(fit)
    return filled


def _age_text(age: int | float | None) -> str:
    if isinstance(age, float) and age.is_integer():
        return str(int(age))
    return str(age)
