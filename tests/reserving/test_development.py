"""Link-ratio selection: averages by period, recent origins, high/low drops, exclusions, overrides.

Checked by hand on a small triangle whose ratios are easy to read, and against
chainladder's ``Development`` on RAA where its options mean the same thing.
"""

import math

import pytest

from workflows.reserving import (
    DevelopmentError,
    DevelopmentSelection,
    FactorOverride,
    TailSelection,
    chain_ladder_mack,
    fit_development,
    to_chainladder,
    triangle_analysis,
)
from workflows.reserving.development import MSG_DROPS_IGNORED, MSG_NO_RATIOS

from .conftest import QUIET_CHAINLADDER, by_origin, read

# Ratios 12-24: 1.5 (2020), 1.3 (2021), 1.4 (2022), 1.2 (2023), 1.6 (2024);
# 24-36: 1.1, 1.15, 1.05, 1.2; 36-48: 170/165, 1.01, 1.02; 48-60: 1.01, 1.005; 60-72: 1.002.
HAND = (
    "origin,12,24,36,48,60,72\n"
    "2019,100,150,165,170,171.7,172.0434\n"
    "2020,200,260,299,301.99,303.49995\n"
    "2021,300,420,441,449.82\n"
    "2022,400,480,576\n"
    "2023,500,800\n"
    "2024,600\n"
)


@pytest.fixture(scope="module")
def hand():
    return read(HAND.encode(), "hand.csv")


def ratios(triangle, k):
    return [row[k + 1] / row[k] for row in triangle.values if k + 1 < len(row)]


def test_the_hand_triangle(hand):
    assert ratios(hand, 0) == pytest.approx([1.5, 1.3, 1.4, 1.2, 1.6])
    assert ratios(hand, 1) == pytest.approx([1.1, 1.15, 1.05, 1.2])


@pytest.mark.parametrize(
    ("average", "expected"),
    [
        ("volume", (150 + 260 + 420 + 480 + 800) / (100 + 200 + 300 + 400 + 500)),
        ("simple", (1.5 + 1.3 + 1.4 + 1.2 + 1.6) / 5),
        # Regression through the origin: Σ C(k) C(k+1) / Σ C(k)².
        (
            "regression",
            (100 * 150 + 200 * 260 + 300 * 420 + 400 * 480 + 500 * 800)
            / (100**2 + 200**2 + 300**2 + 400**2 + 500**2),
        ),
        # Medial: the simple average without the highest (1.6) and lowest (1.2).
        ("medial", (1.5 + 1.3 + 1.4) / 3),
    ],
)
def test_each_average_by_hand(hand, average, expected):
    development = fit_development(hand, DevelopmentSelection(average=average))
    first = development.periods[0]
    assert first.factor == pytest.approx(expected)
    assert (first.source, first.average, first.computed) == ("average", average, first.factor)


def test_medial_drops_one_each_and_lists_them(hand):
    result = chain_ladder_mack(hand, selection=DevelopmentSelection(average="medial"))
    first_period = [p for p in result.excluded_points if p.period == "12-24"]
    assert {(p.origin, p.reason, round(p.ratio, 3)) for p in first_period} == {
        ("2023", "medial_high", 1.6),
        ("2022", "medial_low", 1.2),
    }
    # 36-48 has three ratios: one is left; 48-60 has two: none can be dropped.
    factors = {f.period: f for f in result.development_factors}
    # 36-48: 170/165 (high) and 1.01 (low) left out, 1.02 left.
    assert factors["36-48"].ldf == pytest.approx(1.02) and factors["36-48"].n_ratios == 1
    assert factors["48-60"].n_ratios == 2
    assert MSG_DROPS_IGNORED.format(period="48-60", count=2, high=1, low=1) in result.warnings


def test_averages_per_period_override_the_default(hand):
    selection = DevelopmentSelection(average="volume", averages=((24, "simple"),))
    factors = fit_development(hand, selection).factors
    assert factors[0] == pytest.approx(2110 / 1500)
    assert factors[1] == pytest.approx((1.1 + 1.15 + 1.05 + 1.2) / 4)
    assert factors[2] == pytest.approx((170 + 301.99 + 449.82) / (165 + 299 + 441))


def test_n_periods_keeps_the_latest_origins_of_each_period(hand):
    development = fit_development(hand, DevelopmentSelection(n_periods=2))
    assert development.factors[0] == pytest.approx((480 + 800) / (400 + 500))
    assert development.factors[1] == pytest.approx((441 + 576) / (420 + 480))
    older = [r.origin for r in development.periods[0].ratios if r.left_out_by == "n_periods"]
    assert older == ["2019", "2020", "2021"]
    # Not a judgment on single points: not among the excluded points.
    assert (
        chain_ladder_mack(hand, selection=DevelopmentSelection(n_periods=2)).excluded_points == ()
    )


def test_drop_high_and_low_by_hand(hand):
    selection = DevelopmentSelection(average="simple", drop_high=2, drop_low=1)
    development = fit_development(hand, selection)
    assert development.factors[0] == pytest.approx((1.3 + 1.4) / 2)  # without 1.6, 1.5, 1.2
    reasons = {r.origin: r.left_out_by for r in development.periods[0].ratios}
    assert reasons == {
        "2019": "drop_high",
        "2020": None,
        "2021": None,
        "2022": "drop_low",
        "2023": "drop_high",
    }
    assert development.factors[1] == pytest.approx(1.1)  # 1.2, 1.15 high; 1.05 low


def test_excluded_points_are_left_out_and_shown(hand):
    selection = DevelopmentSelection(exclude=(("2023", 12), ("2019", 24)))
    result = chain_ladder_mack(hand, selection=selection)
    assert result.development_factors[0].ldf == pytest.approx(1310 / 1000)
    assert result.development_factors[0].n_ratios == 4
    assert result.development_factors[1].ldf == pytest.approx((299 + 441 + 576) / (260 + 420 + 480))
    assert [
        (p.origin, p.period, p.from_age, p.to_age, p.reason) for p in result.excluded_points
    ] == [
        ("2023", "12-24", 12, 24, "exclude"),
        ("2019", "24-36", 24, 36, "exclude"),
    ]
    assert result.excluded_points[0].ratio == pytest.approx(1.6)


def test_drops_apply_to_the_ratios_left_after_exclusions(hand):
    selection = DevelopmentSelection(average="simple", exclude=(("2023", 12),), drop_high=1)
    factors = fit_development(hand, selection).factors
    assert factors[0] == pytest.approx((1.3 + 1.4 + 1.2) / 3)  # 1.6 excluded, then 1.5 dropped


def test_excluding_every_ratio_of_a_period_is_refused_unless_a_factor_is_selected(hand):
    selection = DevelopmentSelection(exclude=(("2019", 60),))
    with pytest.raises(DevelopmentError, match=r"development period 60-72 has no link ratio left"):
        fit_development(hand, selection)
    with_factor = DevelopmentSelection(
        exclude=(("2019", 60),), selected_factors=(FactorOverride(60, 1.001, "benchmark"),)
    )
    assert fit_development(hand, with_factor).factors[-1] == 1.001


def test_a_selected_factor_replaces_the_average_with_its_reason(hand):
    selection = DevelopmentSelection(
        selected_factors=(FactorOverride(24, 1.12, "claims handling changed in 2022"),)
    )
    result = chain_ladder_mack(hand, selection=selection)
    factor = result.development_factors[1]
    assert (factor.ldf, factor.source, factor.reason) == (
        1.12,
        "override",
        "claims handling changed in 2022",
    )
    assert factor.computed == pytest.approx((165 + 299 + 441 + 576) / (150 + 260 + 420 + 480))
    assert factor.cdf == pytest.approx(
        1.12 * math.prod(f.ldf for f in result.development_factors[2:])
    )
    assert by_origin(result)["2023"].ultimate == pytest.approx(800 * factor.cdf)
    assert any(
        "the selected factor 1.120000 replaces the volume average" in w for w in result.warnings
    )
    assert any("treats the selected factor of period 24-36" in w for w in result.warnings)


def test_a_period_without_usable_ratios_takes_one_with_a_warning():
    triangle = read(b"origin,1,2,3\n2020,0,50,60\n2021,0,40\n2022,0\n", "zeros.csv")
    development = fit_development(triangle, DevelopmentSelection())
    assert development.periods[0].factor == 1.0 and development.periods[0].source == "no_data"
    assert MSG_NO_RATIOS.format(period="1-2", age="1") in development.warnings


@QUIET_CHAINLADDER
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (DevelopmentSelection(n_periods=3), {"n_periods": 3}),
        (DevelopmentSelection(drop_high=1, drop_low=1), {"drop_high": 1, "drop_low": 1}),
        (
            DevelopmentSelection(average="simple", drop_high=2),
            {"average": "simple", "drop_high": 2},
        ),
        (DevelopmentSelection(average="regression"), {"average": "regression"}),
        (
            DevelopmentSelection(exclude=(("1982", 12), ("1985", 36))),
            {"drop": [("1982", 12), ("1985", 36)]},
        ),
    ],
    ids=["n_periods", "drop-high-low", "simple-drop-2", "regression", "exclude"],
)
def test_selections_match_chainladder_development(raa, ours, theirs):
    import chainladder as cl

    development = fit_development(raa, ours)
    reference = cl.Development(**theirs).fit(to_chainladder_raa(raa))
    assert list(development.factors) == pytest.approx(
        list(reference.ldf_.values[0, 0, 0]), rel=1e-12
    )


def to_chainladder_raa(raa):
    # chainladder names origins by date; "1982" in ``drop`` is read as that year.
    return to_chainladder(raa)


def test_analysis_leaves_out_what_cannot_be_a_factor(hand):
    analysis = triangle_analysis(hand)
    assert analysis["factor_counts"] == [5, 4, 3, 2, 1]
    assert analysis["averages"]["simple"][0] == pytest.approx(1.4)


def test_tail_factor_scales_cdf_and_ultimate(raa):
    plain = chain_ladder_mack(raa)
    with_tail = chain_ladder_mack(raa, tail_factor=1.05)
    assert with_tail.options["tail_factor"] == 1.05
    assert with_tail.options["tail"] == {
        "method": "constant",
        "factor": 1.05,
        "reason": "given as tail_factor",
    }
    for before, after in zip(plain.origins, with_tail.origins, strict=True):
        assert after.cdf == pytest.approx(before.cdf * 1.05)
        assert after.ultimate == pytest.approx(before.ultimate * 1.05)
    assert by_origin(with_tail)["1981"].ibnr == pytest.approx(18_834 * 0.05)
    tail = with_tail.development_factors[-1]
    assert (tail.period, tail.ldf, tail.cdf, tail.source) == ("120-Ult", 1.05, 1.05, "tail")
    assert with_tail.totals.mack_se > plain.totals.mack_se
    same = chain_ladder_mack(raa, tail=TailSelection("constant", 1.05, "given as tail_factor"))
    assert same.to_dict() == with_tail.to_dict()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"average": "median"}, "average must be one of volume, simple, regression, medial"),
        ({"tail_factor": 0}, "tail_factor must be a finite number above 0"),
        ({"tail_factor": float("nan")}, "tail_factor must be a finite number above 0"),
    ],
)
def test_bad_short_arguments(hand, options, message):
    with pytest.raises(ValueError, match=message):
        chain_ladder_mack(hand, **options)
