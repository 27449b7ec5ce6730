"""Bornhuetter-Ferguson, Benktander and Cape Cod: by hand formulas, and against chainladder.

On the shipped triangles that come with their exposure: ``friedland_us_industry_auto``
(paid claims and earned premium, Friedland 2010, the U.S. industry auto example) and
``cc_sample`` (loss and exposure, chainladder's Cape Cod sample).
"""

import math

import pytest

from workflows.reserving import (
    DevelopmentSelection,
    TailSelection,
    benktander,
    bornhuetter_ferguson,
    cape_cod,
    chain_ladder_mack,
    sample_triangle_rows,
    to_chainladder,
)

from .conftest import QUIET_CHAINLADDER, by_origin, sample

pytestmark = QUIET_CHAINLADDER


def exposure_of(name: str, column: str) -> dict[str, float]:
    """Return a sample's exposure column as {origin: latest value} (its rows repeat it)."""
    origins, _ages, values = sample_triangle_rows(name, column)
    return {
        origin: [v for v in row if v is not None][-1]
        for origin, row in zip(origins, values, strict=True)
    }


@pytest.fixture(scope="module")
def auto():
    return sample("friedland_us_industry_auto", "Paid Claims")


@pytest.fixture(scope="module")
def premium():
    return exposure_of("friedland_us_industry_auto", "Earned Premium")


def volume_cdfs(triangle, tail=1.0):
    """Return the CDF at each origin's latest age from volume-weighted factors, by hand."""
    n = len(triangle.development_ages)
    factors = []
    for k in range(n - 1):
        pairs = [(row[k], row[k + 1]) for row in triangle.values if k + 1 < len(row)]
        factors.append(sum(b for _, b in pairs) / sum(a for a, _ in pairs))
    cdfs = [math.prod(factors[k:]) * tail for k in range(n)]
    return {o: cdfs[len(row) - 1] for o, row in zip(triangle.origins, triangle.values, strict=True)}


def test_bornhuetter_ferguson_by_hand(auto, premium):
    result = bornhuetter_ferguson(auto, exposure=premium, apriori_loss_ratio=0.7)
    cdfs = volume_cdfs(auto)
    for origin, row in zip(auto.origins, auto.values, strict=True):
        expected_ibnr = 0.7 * premium[origin] * (1 - 1 / cdfs[origin])
        got = by_origin(result)[origin]
        assert got.ibnr == pytest.approx(expected_ibnr, rel=1e-12)
        assert got.ultimate == pytest.approx(row[-1] + expected_ibnr, rel=1e-12)
        assert (got.exposure, got.apriori_loss_ratio) == (premium[origin], 0.7)
        assert got.expected_ultimate == pytest.approx(0.7 * premium[origin])
        assert got.mack_se is None
    assert result.method == "bornhuetter_ferguson"
    assert result.totals.exposure == pytest.approx(sum(premium.values()))
    assert result.options["apriori_loss_ratio"] == 0.7


def test_bornhuetter_ferguson_with_a_ratio_per_origin_and_a_tail(auto, premium):
    ratios = {origin: 0.6 + 0.01 * i for i, origin in enumerate(auto.origins)}
    tail = TailSelection("constant", 1.02, "paid tail from the incurred")
    result = bornhuetter_ferguson(auto, exposure=premium, apriori_loss_ratio=ratios, tail=tail)
    cdfs = volume_cdfs(auto, tail=1.02)
    for origin in auto.origins:
        expected = ratios[origin] * premium[origin] * (1 - 1 / cdfs[origin])
        assert by_origin(result)[origin].ibnr == pytest.approx(expected, rel=1e-12)
    # The oldest origin is fully developed but for the tail.
    assert by_origin(result)["1998"].ibnr == pytest.approx(
        ratios["1998"] * premium["1998"] * (1 - 1 / 1.02)
    )


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_benktander_by_hand(auto, premium, iterations):
    result = benktander(auto, exposure=premium, apriori_loss_ratio=0.7, n_iterations=iterations)
    cdfs = volume_cdfs(auto)
    for origin, row in zip(auto.origins, auto.values, strict=True):
        ultimate = 0.7 * premium[origin]
        for _ in range(iterations):  # each iteration: latest + q × the previous ultimate
            ultimate = row[-1] + (1 - 1 / cdfs[origin]) * ultimate
        assert by_origin(result)[origin].ultimate == pytest.approx(ultimate, rel=1e-12)
    assert result.options["n_iterations"] == iterations


def test_benktander_with_one_iteration_is_bornhuetter_ferguson_and_tends_to_chain_ladder(
    auto, premium
):
    bf = bornhuetter_ferguson(auto, exposure=premium, apriori_loss_ratio=0.7)
    one = benktander(auto, exposure=premium, apriori_loss_ratio=0.7, n_iterations=1)
    assert [o.ultimate for o in one.origins] == [o.ultimate for o in bf.origins]
    many = benktander(auto, exposure=premium, apriori_loss_ratio=0.7, n_iterations=100)
    cl = chain_ladder_mack(auto)
    assert many.totals.ultimate == pytest.approx(cl.totals.ultimate, rel=1e-6)


def cape_cod_by_hand(triangle, exposure, trend, decay):
    cdfs = volume_cdfs(triangle)
    origins = triangle.origins
    latest = {o: row[-1] for o, row in zip(origins, triangle.values, strict=True)}
    last = len(origins) - 1
    factor = {o: (1 + trend) ** (last - i) for i, o in enumerate(origins)}
    ibnr = {}
    for i, origin in enumerate(origins):
        weights = {o: decay ** abs(i - j) for j, o in enumerate(origins)}
        elr = sum(weights[o] * latest[o] * factor[o] for o in origins) / sum(
            weights[o] * exposure[o] / cdfs[o] for o in origins
        )
        ibnr[origin] = elr / factor[origin] * exposure[origin] * (1 - 1 / cdfs[origin])
    return ibnr


@pytest.mark.parametrize(("trend", "decay"), [(0.0, 1.0), (0.05, 1.0), (0.03, 0.75)])
def test_cape_cod_by_hand(trend, decay):
    triangle = sample("cc_sample", "loss")
    exposure = exposure_of("cc_sample", "exposure")
    result = cape_cod(triangle, exposure=exposure, trend=trend, decay=decay)
    expected = cape_cod_by_hand(triangle, exposure, trend, decay)
    for origin, ibnr in expected.items():
        assert by_origin(result)[origin].ibnr == pytest.approx(ibnr, rel=1e-12)
    assert (result.options["trend"], result.options["decay"]) == (trend, decay)


def test_cape_cod_without_trend_or_decay_uses_one_loss_ratio(auto, premium):
    result = cape_cod(auto, exposure=premium)
    cdfs = volume_cdfs(auto)
    used = sum(premium[o] / cdfs[o] for o in auto.origins)
    elr = sum(row[-1] for row in auto.values) / used
    assert {round(o.apriori_loss_ratio, 12) for o in result.origins} == {round(elr, 12)}


@pytest.mark.parametrize(
    "method",
    ["bornhuetter_ferguson", "benktander", "cape_cod", "cape_cod_trend"],
)
def test_chainladder_agrees(method):
    import chainladder as cl

    name, loss, exposure_column = "cc_sample", "loss", "exposure"
    triangle = sample(name, loss)
    exposure = exposure_of(name, exposure_column)
    loaded = cl.load_sample(name)
    weight = loaded[exposure_column].latest_diagonal
    data = to_chainladder(triangle)
    weight.index = data.index
    if method == "bornhuetter_ferguson":
        ours = bornhuetter_ferguson(triangle, exposure=exposure, apriori_loss_ratio=0.55)
        theirs = cl.BornhuetterFerguson(apriori=0.55).fit(data, sample_weight=weight)
        rel = 1e-9
    elif method == "benktander":
        ours = benktander(triangle, exposure=exposure, apriori_loss_ratio=0.55, n_iterations=2)
        theirs = cl.Benktander(apriori=0.55, n_iters=2).fit(data, sample_weight=weight)
        rel = 1e-9
    elif method == "cape_cod":
        ours = cape_cod(triangle, exposure=exposure, decay=0.8)
        theirs = cl.CapeCod(decay=0.8).fit(data, sample_weight=weight)
        rel = 1e-9
    else:
        # chainladder trends by days / 365.25, so a year is 365 or 366 / 365.25 of one.
        ours = cape_cod(triangle, exposure=exposure, trend=0.05)
        theirs = cl.CapeCod(trend=0.05).fit(data, sample_weight=weight)
        rel = 1e-4
    expected = list(theirs.ultimate_.values[0, 0, :, -1])
    assert [o.ultimate for o in ours.origins] == pytest.approx(expected, rel=rel)


def test_selections_reach_the_expected_loss_methods(auto, premium):
    selection = DevelopmentSelection(average="simple", n_periods=5)
    result = bornhuetter_ferguson(
        auto, exposure=premium, apriori_loss_ratio=0.7, selection=selection
    )
    cl = chain_ladder_mack(auto, selection=selection)
    assert [f.ldf for f in result.development_factors] == [f.ldf for f in cl.development_factors]
    assert result.options["average"] == "simple" and result.options["n_periods"] == 5


def test_missing_exposure_is_named(auto, premium):
    partial = {k: v for k, v in premium.items() if k != "2007"}
    with pytest.raises(ValueError, match=r"^the exposure has no value for origin\(s\) 2007$"):
        bornhuetter_ferguson(auto, exposure=partial, apriori_loss_ratio=0.7)
