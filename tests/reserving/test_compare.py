"""Actual vs expected emergence since a prior valuation, and two results side by side."""

import pytest

from workflows.reserving import (
    DevelopmentSelection,
    actual_vs_expected,
    bornhuetter_ferguson,
    chain_ladder_mack,
    compare_results,
)
from workflows.reserving.triangles.data import TriangleData

from .conftest import by_origin


def one_diagonal_earlier(triangle: TriangleData) -> TriangleData:
    """Return the triangle as it stood one valuation earlier (its newest origin gone)."""
    rows = tuple(row[:-1] for row in triangle.values[:-1])
    return TriangleData(
        origins=triangle.origins[:-1],
        development_ages=triangle.development_ages[:-1],
        values=rows,
        measure=triangle.measure,
        input_layout=triangle.input_layout,
        input_cumulative=True,
    )


@pytest.fixture(scope="module")
def prior(raa):
    return chain_ladder_mack(one_diagonal_earlier(raa))


def test_chain_ladder_expected_emergence_is_latest_times_ldf_minus_one(raa, prior):
    current = chain_ladder_mack(raa).to_dict()
    comparison = actual_vs_expected(current, prior.to_dict(), prior_info={"run": "RAA 1989"})
    rows = {row.origin: row for row in comparison.origins}
    factors = {f.from_age: f.ldf for f in prior.development_factors}
    for origin, row in zip(raa.origins[1:-1], raa.values[1:-1], strict=True):
        then, now = row[-2], row[-1]
        age_then = raa.development_ages[len(row) - 2]
        got = rows[origin]
        assert (got.prior_latest, got.current_latest, got.actual) == (then, now, now - then)
        assert got.expected == pytest.approx(then * (factors[age_then] - 1), rel=1e-12)
        assert got.difference == pytest.approx(got.actual - got.expected)
    # 1981 was fully developed: nothing expected; 1990 is new.
    assert rows["1981"].expected == 0.0
    assert rows["1981"].actual == 18_834 - 18_662
    assert rows["1990"].note == "new since the prior valuation" and rows["1990"].expected is None
    compared = [row for row in comparison.origins if row.expected is not None]
    assert comparison.actual == pytest.approx(sum(r.actual for r in compared))
    assert comparison.expected == pytest.approx(sum(r.expected for r in compared))
    assert comparison.actual_to_expected == pytest.approx(comparison.actual / comparison.expected)
    assert comparison.to_dict()["prior"] == {"run": "RAA 1989"}


def test_bornhuetter_ferguson_expected_emergence_uses_the_expected_ultimate(raa):
    earlier = one_diagonal_earlier(raa)
    exposure = dict.fromkeys(raa.origins, 40000.0)
    prior = bornhuetter_ferguson(earlier, exposure=exposure, apriori_loss_ratio=0.5)
    comparison = actual_vs_expected(chain_ladder_mack(raa).to_dict(), prior.to_dict())
    cdf_at = {f.from_age: f.cdf for f in prior.development_factors}
    row = {r.origin: r for r in comparison.origins}["1988"]
    expected = 0.5 * 40_000 * (1 / cdf_at[36] - 1 / cdf_at[24])
    assert row.expected == pytest.approx(expected, rel=1e-12)


def test_restated_values_are_named(raa, prior):
    values = [list(row) for row in raa.values]
    values[3][-2] += 100  # 1984 at 72 months is not what the prior run saw
    restated = TriangleData(
        origins=raa.origins,
        development_ages=raa.development_ages,
        values=tuple(tuple(row) for row in values),
        measure=raa.measure,
        input_layout="long",
        input_cumulative=True,
    )
    comparison = actual_vs_expected(
        chain_ladder_mack(restated).to_dict(), prior.to_dict(), triangle=restated
    )
    assert comparison.warnings == (
        "origin 1984: the value at age 72 is 26,183.00 in this triangle but 26,083.00 in the "
        "prior run (restated data; the actual emergence is measured from the prior run's "
        "figure)",
    )


def test_measures_must_match(raa, prior):
    paid = dict(prior.to_dict(), measure="paid")
    with pytest.raises(ValueError, match="the prior run reserved paid values, this one incurred"):
        actual_vs_expected(chain_ladder_mack(raa).to_dict(), paid)


def test_two_results_side_by_side(raa):
    volume = chain_ladder_mack(raa).to_dict()
    simple = chain_ladder_mack(raa, selection=DevelopmentSelection(average="simple"))
    side = compare_results(volume, simple.to_dict())
    assert side["methods"] == ["chain_ladder", "chain_ladder"]
    assert side["options"] == {"average": {"first": "volume", "second": "simple"}}
    row = side["origins"][-1]
    assert row["origin"] == "1990"
    assert row["ibnr_difference"] == pytest.approx(
        by_origin(simple)["1990"].ibnr - volume["origins"][-1]["ibnr"]
    )
    assert side["totals"]["ibnr_difference"] == pytest.approx(
        simple.totals.ibnr - volume["totals"]["ibnr"]
    )
