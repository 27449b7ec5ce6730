"""Mack's standard errors of chain ladder reserves, per origin and in total.

Computed with Mack's (1999) recursion, which equals the closed form of Mack (1993,
Theorem 3) and extends it to any average (α = 0, 1, 2 per period), left-out link ratios
and a tail. For an origin with latest value C at development index a, over each later
period k (factor f, sigma² σ², factor variance σ² / Σ C(k)^α) and the tail:

    process(k+1)   = process(k) · f² + σ² · Ĉ(k)^(2−α)
    parameter(k+1) = parameter(k) · f² + Ĉ(k)² · Var(f)

and mse = process + parameter at ultimate. The total adds the parameter errors the
origins share through each common factor: Σ process + Σ_k Var(f_k)/f_k² ·
(Σ ultimates of the origins developing through k)², which is Mack's (1993) total.

This is computed here, not taken from chainladder: chainladder 0.10.1 returns a zero
per-origin parameter risk when every selected factor is below 1 (the usaa incurred
triangle) and fills a second consecutive one-ratio period's sigma with 0 (annual
origins developed quarterly); the tests check these figures against Mack's published
tables and an independent implementation of his closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workflows.reserving.development import Development
from workflows.reserving.results import TailResult

MSG_NOT_ESTIMABLE = "Mack standard error not estimable for origin {origin}: {why}"
WHY_SIGMA = (
    "development period {period} has too few link ratios to estimate its variance, and "
    "Mack's rule needs the variances of the two periods before it"
)
WHY_TAIL = "the tail's variance could not be extrapolated"
WHY_NEGATIVE = "its projected values are negative, so the process variance is undefined"
WHY_ZERO_FACTOR = "development period {period} has a factor of 0"


@dataclass(frozen=True)
class _Step:
    label: str
    factor: float
    sigma2: float | None
    factor_variance: float | None
    alpha: int


@dataclass(frozen=True)
class MackEstimate:
    """Mack's standard error of each origin's reserve and of the total (None: not estimable)."""

    standard_errors: tuple[float | None, ...]
    total: float | None
    process_variances: tuple[float | None, ...]
    parameter_variances: tuple[float | None, ...]
    warnings: tuple[str, ...] = ()


def mack_standard_errors(development: Development, tail: TailResult | None) -> MackEstimate:
    """Return Mack's standard errors of the chain ladder reserves of this development."""
    steps = [
        _Step(period.label, period.factor, period.sigma2, period.factor_variance, period.alpha)
        for period in development.periods
    ]
    if tail is not None and tail.factor != 1.0:
        last = development.periods[-1]
        steps.append(
            _Step(
                f"{last.label.split('-')[-1]}-Ult",
                tail.factor,
                tail.sigma**2 if tail.sigma is not None else None,
                tail.std_err**2 if tail.std_err is not None else None,
                last.alpha,
            )
        )
    triangle = development.triangle
    errors: list[float | None] = []
    processes: list[float | None] = []
    parameters: list[float | None] = []
    ultimates: list[float] = []
    starts: list[int] = []
    warnings: list[str] = []
    for origin, row in zip(triangle.origins, triangle.values, strict=True):
        start = len(row) - 1
        value = float(row[-1])
        process = parameter = 0.0
        why = ""
        for step in steps[start:]:
            process_term = 0.0
            if step.alpha != 2 and value == 0:
                process_term = 0.0
            elif step.sigma2 is None:
                why = _why(step, tail, steps)
            else:
                power = value ** (2 - step.alpha)
                if power < 0:
                    why = WHY_NEGATIVE
                process_term = step.sigma2 * power
            parameter_term = 0.0
            if value != 0:
                if step.factor_variance is None:
                    why = why or _why(step, tail, steps)
                else:
                    parameter_term = value**2 * step.factor_variance
            if step.factor == 0:
                why = why or WHY_ZERO_FACTOR.format(period=step.label)
            process = process * step.factor**2 + process_term
            parameter = parameter * step.factor**2 + parameter_term
            value *= step.factor
        starts.append(start)
        ultimates.append(value)
        if why:
            warnings.append(MSG_NOT_ESTIMABLE.format(origin=origin, why=why))
            errors.append(None)
            processes.append(None)
            parameters.append(None)
        else:
            errors.append(math.sqrt(process + parameter))
            processes.append(process)
            parameters.append(parameter)

    total: float | None = None
    if all(error is not None for error in errors):
        shared = []
        for k, step in enumerate(steps):
            developing = math.fsum(
                u for u, start in zip(ultimates, starts, strict=True) if start <= k
            )
            if developing == 0:
                continue
            shared.append(step.factor_variance / step.factor**2 * developing**2)
        total = math.sqrt(math.fsum(processes) + math.fsum(shared))
    return MackEstimate(
        standard_errors=tuple(errors),
        total=total,
        process_variances=tuple(processes),
        parameter_variances=tuple(parameters),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _why(step: _Step, tail: TailResult | None, steps: list[_Step]) -> str:
    if tail is not None and step is steps[-1] and step.label.endswith("-Ult"):
        return WHY_TAIL
    return WHY_SIGMA.format(period=step.label)
