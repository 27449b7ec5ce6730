"""Mack's standard errors: published tables, an independent implementation, chainladder.

Published figures, each reproduced to the unit the source prints:

* GenIns, the Taylor & Ashe (1983) triangle, is the example of T. Mack (1993),
  "Distribution-free calculation of the standard error of chain ladder reserve
  estimates", ASTIN Bulletin 23(2), 213-225, Tables 2 and 3: chain ladder factors 3.491
  … 1.018, reserves 94,634 … 4,625,811 with total 18,680,856, and standard errors
  75,535 … 1,363,155 with total 2,447,095 (13%) — the figures R's
  ``MackChainLadder(GenIns, est.sigma="Mack")`` prints (its demo says "compare to table
  2 and 3 in Mack's 1993 paper").
* RAA, general liability (RAA Historical Loss Development Study, 1991), the example of
  T. Mack (1994), "Measuring the variability of chain ladder reserve estimates", CAS
  Forum Spring 1994, as printed by ``MackChainLadder(RAA, est.sigma="Mack")`` in the
  vignette of the R package ChainLadder ("ChainLadder: Claims reserving with R",
  Gesmann et al., version 0.2.21, section "Mack chain-ladder"): total IBNR 52,135.23,
  Mack S.E. 26,909.01; and, with the weights that use only the last five calendar
  years, total IBNR 59,220.63 and Mack S.E. 19,859.00.
* The two liability triangles of Merz & Wüthrich (2008) (chainladder's ``liab``), in
  the same vignette (``lapply(liab, MackChainLadder, est.sigma = "Mack")``): general
  liability IBNR 6,155,261, S.E. 427,289; auto liability, whose late factors are below
  1, IBNR 2,063,612, S.E. 162,872.

Both sources use Mack's rule for the last variance parameter, as the engine does.
"""

import math

import pytest

from workflows.reserving import (
    DevelopmentSelection,
    TailSelection,
    chain_ladder_mack,
    to_chainladder,
)

from .conftest import QUIET_CHAINLADDER, by_origin, read, sample, sample_csv, shipped_triangles
from .independent_mack import mack_1993

pytestmark = QUIET_CHAINLADDER

GENINS_PUBLISHED = [
    ("2002", 94_634, 75_535),
    ("2003", 469_511, 121_699),
    ("2004", 709_638, 133_549),
    ("2005", 984_889, 261_406),
    ("2006", 1_419_459, 411_010),
    ("2007", 2_177_641, 558_317),
    ("2008", 3_920_301, 875_328),
    ("2009", 4_278_972, 971_258),
    ("2010", 4_625_811, 1_363_155),
]
GENINS_PUBLISHED_LDFS = [3.491, 1.747, 1.457, 1.174, 1.104, 1.086, 1.054, 1.077, 1.018]

RAA_PUBLISHED = [
    ("1981", 0, 0),
    ("1982", 154, 206),
    ("1983", 617, 623),
    ("1984", 1_636, 747),
    ("1985", 2_747, 1_469),
    ("1986", 3_649, 2_002),
    ("1987", 5_435, 2_209),
    ("1988", 10_907, 5_358),
    ("1989", 10_650, 6_333),
    ("1990", 16_339, 24_566),
]
RAA_PUBLISHED_LDFS = [2.999, 1.624, 1.271, 1.172, 1.113, 1.042, 1.033, 1.017, 1.009]
# MackChainLadder(RAA, weights = calendar years 6-10 only, est.sigma = "Mack").
RAA_LAST_FIVE_YEARS = [
    ("1981", 0, 0),
    ("1982", 154, 206),
    ("1983", 617, 623),
    ("1984", 1_636, 747),
    ("1985", 2_747, 1_469),
    ("1986", 3_412, 2_039),
    ("1987", 5_015, 2_144),
    ("1988", 10_249, 4_043),
    ("1989", 12_989, 5_931),
    ("1990", 22_400, 16_779),
]


@pytest.fixture(scope="module")
def raa_result(raa):
    return chain_ladder_mack(raa)


@pytest.fixture(scope="module")
def genins_result(genins):
    return chain_ladder_mack(genins)


# --- published tables ------------------------------------------------------------------


def test_genins_totals_match_mack_1993(genins_result):
    totals = genins_result.totals
    assert totals.ibnr == pytest.approx(18_680_856, abs=1)
    assert totals.mack_se == pytest.approx(2_447_095, abs=1)
    assert round(totals.cv, 2) == 0.13


@pytest.mark.parametrize(("origin", "reserve", "standard_error"), GENINS_PUBLISHED)
def test_genins_by_origin_matches_mack_1993(genins_result, origin, reserve, standard_error):
    row = by_origin(genins_result)[origin]
    assert row.ibnr == pytest.approx(reserve, abs=1)
    assert row.mack_se == pytest.approx(standard_error, abs=1)


def test_genins_factors_match_mack_1993(genins_result):
    ldfs = [factor.ldf for factor in genins_result.development_factors[:-1]]
    assert [round(ldf, 3) for ldf in ldfs] == GENINS_PUBLISHED_LDFS


def test_raa_totals_match_mack_1994(raa_result):
    totals = raa_result.totals
    assert totals.latest == 160_987
    assert totals.ultimate == pytest.approx(213_122.23, abs=0.01)
    assert totals.ibnr == pytest.approx(52_135.23, abs=0.01)
    assert totals.mack_se == pytest.approx(26_909.01, abs=0.01)
    assert round(totals.cv, 2) == 0.52


@pytest.mark.parametrize(("origin", "ibnr", "standard_error"), RAA_PUBLISHED)
def test_raa_by_origin_matches_mack_1994(raa_result, origin, ibnr, standard_error):
    row = by_origin(raa_result)[origin]
    assert row.ibnr == pytest.approx(ibnr, abs=0.5)
    assert row.mack_se == pytest.approx(standard_error, abs=0.5)


def test_raa_factors_and_fully_developed_origin(raa_result):
    ldfs = [factor.ldf for factor in raa_result.development_factors[:-1]]
    assert [round(ldf, 3) for ldf in ldfs] == RAA_PUBLISHED_LDFS
    first = by_origin(raa_result)["1981"]
    assert (first.ibnr, first.mack_se, first.cv, first.cdf) == (0.0, 0.0, None, 1.0)
    assert by_origin(raa_result)["1990"].cv == pytest.approx(1.5035, abs=5e-5)


def test_raa_with_the_last_five_calendar_years_matches_the_published_weights(raa):
    """R's weights matrix zeroes each link ratio whose earlier cell is in calendar year 1-5."""
    ages = raa.development_ages
    exclude = tuple(
        (origin, ages[k])
        for i, origin in enumerate(raa.origins)
        for k in range(len(raa.values[i]) - 1)
        if i + k <= 4
    )
    result = chain_ladder_mack(raa, selection=DevelopmentSelection(exclude=exclude))
    assert result.totals.ibnr == pytest.approx(59_220.63, abs=0.01)
    assert result.totals.mack_se == pytest.approx(19_859.00, abs=0.01)
    rows = by_origin(result)
    for origin, ibnr, standard_error in RAA_LAST_FIVE_YEARS:
        assert rows[origin].ibnr == pytest.approx(ibnr, abs=0.5)
        assert rows[origin].mack_se == pytest.approx(standard_error, abs=0.5)
    assert len(result.excluded_points) == len(exclude)
    assert {point.reason for point in result.excluded_points} == {"exclude"}


@pytest.mark.parametrize(
    ("index", "ibnr", "standard_error"),
    [("GeneralLiab", 6_155_261, 427_289), ("AutoLiab", 2_063_612, 162_872)],
)
def test_merz_wuthrich_liability_triangles_match_the_published_totals(index, ibnr, standard_error):
    result = chain_ladder_mack(sample("liab", "values", index))
    assert result.totals.ibnr == pytest.approx(ibnr, abs=1)
    assert result.totals.mack_se == pytest.approx(standard_error, abs=1)


# --- where chainladder 0.10.1 is wrong ------------------------------------------------------


def test_incurred_triangle_with_every_factor_below_one_keeps_its_parameter_risk():
    """usaa incurred: chainladder gives origin 2001 a s.e. of 626 (no parameter risk)."""
    triangle = sample("usaa", "incurred")
    result = chain_ladder_mack(triangle)
    assert all(factor.ldf < 1 for factor in result.development_factors[:2])
    assert by_origin(result)["2001"].mack_se == pytest.approx(907, abs=0.5)
    _ultimates, errors, total = mack_1993([list(row) for row in triangle.values])
    assert [o.mack_se for o in result.origins] == pytest.approx(errors, rel=1e-9)
    assert result.totals.mack_se == pytest.approx(total, rel=1e-9)


def test_more_origins_than_ages_gives_a_total_standard_error(raa):
    """RAA cut to ages 12-84: 10 origins, 7 ages; Mack's formula gives 25,165 in total."""
    rows = "\n".join(
        ",".join([origin, *(f"{value:g}" for value in row[:7])])
        for origin, row in zip(raa.origins, raa.values, strict=True)
    )
    header = "origin," + ",".join(str(age) for age in raa.development_ages[:7])
    triangle = read(f"{header}\n{rows}\n".encode(), "raa84.csv", allow_negative_development=True)
    result = chain_ladder_mack(triangle)
    assert result.totals.mack_se == pytest.approx(25_165, abs=0.5)
    assert [o.mack_se for o in result.origins[:4]] == [0.0, 0.0, 0.0, 0.0]
    assert all(o.mack_se > 0 for o in result.origins[4:])
    _ultimates, errors, total = mack_1993([list(row) for row in triangle.values])
    assert [o.mack_se for o in result.origins] == pytest.approx(errors, rel=1e-9)
    assert result.totals.mack_se == pytest.approx(total, rel=1e-9)


def test_annual_origins_developed_quarterly_match_the_independent_formula():
    """chainladder's quarterly incurred s.e. differ by up to 50%: Mack's rule is applied
    again in each of the four one-ratio periods at the end, not filled with zero."""
    triangle = sample("quarterly", "incurred")
    result = chain_ladder_mack(triangle)
    _ultimates, errors, total = mack_1993([list(row) for row in triangle.values])
    assert [o.mack_se for o in result.origins] == pytest.approx(errors, rel=1e-9)
    assert result.totals.mack_se == pytest.approx(total, rel=1e-9)


# --- every shipped triangle against the independent implementation --------------------------


def _readable():
    for name, index, column in shipped_triangles():
        try:
            sample(name, column, index)
        except ValueError:
            continue
        yield pytest.param(name, index, column, id=f"{name}-{index}-{column}")


@pytest.mark.parametrize(("name", "index", "column"), list(_readable()))
def test_every_shipped_triangle_agrees_with_mack_1993(name, index, column):
    """Per-origin and total s.e. agree with the independent closed form to 1e-9 (relative).

    Where it says a s.e. cannot be estimated (a period with fewer than two link ratios
    and not two earlier periods to extrapolate its variance from), so does the engine.
    """
    triangle = sample(name, column, index)
    result = chain_ladder_mack(triangle)
    ultimates, errors, total = mack_1993([list(row) for row in triangle.values])
    assert [o.ultimate for o in result.origins] == pytest.approx(ultimates, rel=1e-12, abs=1e-9)
    for origin, expected in zip(result.origins, errors, strict=True):
        if expected is None:
            assert origin.mack_se is None
            assert any(f"origin {origin.origin}:" in warning for warning in result.warnings)
        else:
            assert origin.mack_se == pytest.approx(expected, rel=1e-9, abs=1e-6)
    if total is None:
        assert result.totals.mack_se is None
    else:
        assert result.totals.mack_se == pytest.approx(total, rel=1e-9, abs=1e-6)


def test_the_shipped_triangles_are_all_covered():
    readable = list(_readable())
    assert len(shipped_triangles()) == 166
    assert len(readable) == 162
    not_estimable = []
    for param in readable:
        name, index, column = param.values
        if chain_ladder_mack(sample(name, column, index)).totals.mack_se is None:
            not_estimable.append((name, column))
    # Triangles of one or two diagonals, or of figures that are mostly zero (case reserves
    # settled, severities, cessions): a period with too few link ratios to estimate its
    # variance has no two earlier ones to extrapolate it from.
    assert sorted(not_estimable) == [
        ("friedland_auto_bi_insurer", "Paid Claims"),
        ("friedland_auto_bi_insurer", "Reported Claims"),
        ("friedland_auto_freq_sev", "Paid Claims"),
        ("friedland_gl_insurer", "Reported Claims"),
        ("friedland_wc_self_insurer", "Payroll"),
        ("friedland_xol", "Ceded Reported Claims"),
        ("friedland_xyz_auto_bi", "Case Outstanding"),
        ("friedland_xyz_auto_bi", "Incremental Paid Severity"),
    ]


@pytest.mark.parametrize("average", ["simple", "regression", "medial"])
@pytest.mark.parametrize("name", ["raa", "genins", "abc", "mw2014"])
def test_other_averages_agree_with_mack_1999_weights(name, average):
    """Mack (1999): alpha 0 (simple, medial) and 2 (regression); the medial's dropped
    ratios are weights of 0."""
    triangle = sample(name)
    result = chain_ladder_mack(triangle, selection=DevelopmentSelection(average=average))
    dropped = {
        (p.origin, triangle.development_ages.index(p.from_age)) for p in result.excluded_points
    }
    alpha = 2 if average == "regression" else 0
    row_of = {origin: i for i, origin in enumerate(triangle.origins)}
    used = {(row_of[o], k) for o, k in dropped}
    _u, errors, total = mack_1993(
        [list(row) for row in triangle.values], alpha=alpha, used=lambda i, k: (i, k) not in used
    )
    assert [o.mack_se for o in result.origins] == pytest.approx(errors, rel=1e-9)
    assert result.totals.mack_se == pytest.approx(total, rel=1e-9)


# --- chainladder, where it is right ---------------------------------------------------------


@pytest.mark.parametrize("name", ["raa", "genins", "ukmotor", "abc", "mw2014", "m3ir5"])
def test_chainladder_agrees_on_triangles_whose_factors_exceed_one(name):
    import chainladder as cl

    triangle = sample(name)
    result = chain_ladder_mack(triangle)
    model = cl.MackChainladder().fit(
        cl.Development(sigma_interpolation="mack").fit_transform(to_chainladder(triangle))
    )
    ultimates = model.ultimate_.values[0, 0, :, -1]
    errors = [0.0 if math.isnan(x) else x for x in model.mack_std_err_.values[0, 0, :, -1]]
    assert [o.ultimate for o in result.origins] == pytest.approx(list(ultimates), rel=1e-9)
    assert [o.mack_se for o in result.origins] == pytest.approx(errors, rel=1e-7, abs=1e-6)
    total = float(model.total_mack_std_err_.values.ravel()[0])
    assert result.totals.mack_se == pytest.approx(total, rel=1e-7)


@pytest.mark.parametrize(
    ("name", "tail"),
    [
        ("raa", TailSelection("constant", 1.05, "industry benchmark")),
        ("genins", TailSelection("exponential")),
        ("raa", TailSelection("inverse_power")),
        ("genins", TailSelection("bondy")),
    ],
    ids=["raa-constant", "genins-exponential", "raa-inverse-power", "genins-bondy"],
)
def test_the_tail_enters_mack_as_chainladder_documents(name, tail):
    """The tail period's sigma and s.e. extrapolated log-linearly (``_get_tail_stats``)."""
    import chainladder as cl

    triangle = sample(name)
    result = chain_ladder_mack(triangle, tail=tail)
    developed = cl.Development(sigma_interpolation="mack").fit_transform(to_chainladder(triangle))
    estimator = {
        "constant": lambda: cl.TailConstant(tail=1.05),
        "exponential": lambda: cl.TailCurve(curve="exponential"),
        "inverse_power": lambda: cl.TailCurve(curve="inverse_power"),
        "bondy": lambda: cl.TailBondy(),
    }[tail.method]()
    tailed = estimator.fit_transform(developed)
    model = cl.MackChainladder().fit(tailed)
    assert result.tail.factor == pytest.approx(
        float(tailed.cdf_.values[0, 0, 0, len(triangle.development_ages) - 1]), rel=1e-9
    )
    assert result.tail.sigma == pytest.approx(float(tailed.sigma_.values[0, 0, 0, -1]), rel=1e-9)
    assert result.tail.std_err == pytest.approx(
        float(tailed.std_err_.values[0, 0, 0, -1]), rel=1e-9
    )
    errors = model.mack_std_err_.values[0, 0, :, -1]
    assert [o.mack_se for o in result.origins] == pytest.approx(list(errors), rel=1e-7)
    total = float(model.total_mack_std_err_.values.ravel()[0])
    assert result.totals.mack_se == pytest.approx(total, rel=1e-7)
    assert result.totals.mack_se > chain_ladder_mack(triangle).totals.mack_se


def test_standard_error_needs_enough_periods():
    # Three ages: Mack's rule for the last sigma needs two earlier ones.
    triangle = read(b"origin,12,24,36\n2020,100,150,165\n2021,110,160\n2022,120\n", "small.csv")
    result = chain_ladder_mack(triangle)
    assert by_origin(result)["2021"].mack_se is None
    assert result.totals.mack_se is None
    assert result.totals.ibnr > 0
    assert (
        "Mack standard error not estimable for origin 2021: development period 24-36 has too "
        "few link ratios to estimate its variance, and Mack's rule needs the variances of the "
        "two periods before it"
    ) in result.warnings


def test_sample_csv_round_trip_is_exact():
    assert sample_csv("raa").startswith(b"origin,development,value\n1981,12,5012\n")
