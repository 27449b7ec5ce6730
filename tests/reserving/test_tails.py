"""Tails: constant with a reason, curves fitted to the selected factors, Bondy's."""

import math

import pytest

from workflows.reserving import (
    DevelopmentError,
    DevelopmentSelection,
    FactorOverride,
    TailSelection,
    chain_ladder_mack,
    fit_development,
    fit_tail,
    to_chainladder,
)

from .conftest import QUIET_CHAINLADDER, read, sample

pytestmark = QUIET_CHAINLADDER


@pytest.mark.parametrize("curve", ["exponential", "inverse_power"])
@pytest.mark.parametrize(("name", "fit_from_age"), [("raa", None), ("genins", 36), ("abc", 48)])
def test_curves_match_chainladder_tail_curve(name, curve, fit_from_age):
    import chainladder as cl

    triangle = sample(name)
    development = fit_development(triangle, DevelopmentSelection())
    tail, _warnings = fit_tail(development, TailSelection(curve, fit_from_age=fit_from_age))
    reference = cl.TailCurve(curve=curve, fit_period=(fit_from_age, None)).fit(
        cl.Development().fit_transform(to_chainladder(triangle))
    )
    assert tail.factor == pytest.approx(float(reference.tail_.values.ravel()[0]), rel=1e-10)
    assert tail.slope == pytest.approx(float(reference.slope_.values.ravel()[0]), rel=1e-10)
    assert tail.fit_from_age == (fit_from_age or 12)


def test_exponential_tail_by_hand(raa):
    development = fit_development(raa, DevelopmentSelection())
    points = [(x, math.log(f - 1)) for x, f in enumerate(development.factors, start=1)]
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
        (x - mean_x) ** 2 for x, _ in points
    )
    intercept = mean_y - slope * mean_x
    expected = math.prod(1 + math.exp(intercept + slope * x) for x in range(n + 1, n + 101))
    tail, _ = fit_tail(development, TailSelection("exponential"))
    assert tail.factor == pytest.approx(expected, rel=1e-12)
    assert tail.reason == (
        "exponential decay curve fitted to 9 selected factors from age 12, extrapolated over "
        "100 periods"
    )


def test_the_curve_is_fitted_to_the_selected_factors(raa):
    """A judgmental factor changes the fit: the tail follows the selections, not the data."""
    plain = fit_development(raa, DevelopmentSelection())
    judged = fit_development(
        raa, DevelopmentSelection(selected_factors=(FactorOverride(96, 1.03, "benchmark"),))
    )
    before, _ = fit_tail(plain, TailSelection("exponential", fit_from_age=48))
    after, _ = fit_tail(judged, TailSelection("exponential", fit_from_age=48))
    assert after.factor > before.factor


def test_bondy_repeats_the_last_selected_factor(genins):
    result = chain_ladder_mack(genins, tail=TailSelection("bondy"))
    last = result.development_factors[-2].ldf
    assert result.tail.factor == last
    assert result.development_factors[-1].ldf == last
    assert result.tail.reason == "Bondy: the last selected factor (108-120) repeated"


def test_a_constant_tail_keeps_its_reason(raa):
    result = chain_ladder_mack(raa, tail=TailSelection("constant", 1.05, "industry benchmark"))
    entry = result.development_factors[-1]
    assert (entry.period, entry.ldf, entry.source, entry.reason) == (
        "120-Ult",
        1.05,
        "tail",
        "industry benchmark",
    )
    assert result.tail.to_dict()["reason"] == "industry benchmark"


def test_a_tail_below_one_is_allowed_for_redundant_case_reserves():
    triangle = sample("usaa", "incurred")
    result = chain_ladder_mack(triangle, tail=TailSelection("constant", 0.99, "redundancy"))
    assert result.origins[0].ibnr == pytest.approx(-0.01 * result.origins[0].latest)


def test_a_curve_needs_two_factors_above_one():
    triangle = sample("usaa", "incurred")
    development = fit_development(triangle, DevelopmentSelection())
    with pytest.raises(
        DevelopmentError,
        match=r"^tail: the exponential curve needs at least two selected factors above 1 from "
        r"age 12 on to fit; there (is|are) \d",
    ) as caught:
        fit_tail(development, TailSelection("exponential"))
    assert caught.value.param == "tail"


def test_a_curve_that_does_not_decay_is_refused():
    triangle = read(
        b"origin,12,24,36,48\n2019,100,110,125,150\n2020,100,110,125\n2021,100,110\n2022,100\n",
        "growing.csv",
    )
    development = fit_development(triangle, DevelopmentSelection())
    with pytest.raises(DevelopmentError, match=r"does not decay \(slope 0\.\d+ ≥ 0\)"):
        fit_tail(development, TailSelection("exponential"))
