"""The ODP bootstrap: reproducible from its seed, centred on the chain ladder, like chainladder's.

The ODP bootstrap's mean is known to sit a little above the chain ladder's IBNR (the
ratios of resampled sums are convex): on RAA about 3% with 20,000 simulations, as
R's ``BootChainLadder(RAA)`` (mean IBNR 54,444, ChainLadder vignette) and chainladder's
``BootstrapODPSample`` (53,636) show too. With the default 1,000 simulations that is
within Monte Carlo error on the triangles below; with more, the tests bound it.
"""

import math

import pytest

from workflows.reserving import (
    DevelopmentError,
    DevelopmentSelection,
    FactorOverride,
    TailSelection,
    bootstrap_odp,
    chain_ladder_mack,
    render_histogram_png,
    reserve_result_csv,
    reserve_result_xlsx,
)

from .conftest import QUIET_CHAINLADDER, sample


def test_the_same_seed_gives_the_same_result_and_bytes(raa):
    first = bootstrap_odp(raa, random_seed=2024, n_sims=500)
    second = bootstrap_odp(raa, random_seed=2024, n_sims=500)
    assert first.to_dict() == second.to_dict()
    assert reserve_result_csv(first) == reserve_result_csv(second)
    assert reserve_result_xlsx(first) == reserve_result_xlsx(second)
    assert render_histogram_png(first) == render_histogram_png(second)
    other = bootstrap_odp(raa, random_seed=2025, n_sims=500)
    assert other.totals.ibnr_mean != first.totals.ibnr_mean


@pytest.mark.parametrize("name", ["genins", "ukmotor", "abc"])
def test_the_mean_is_within_monte_carlo_error_of_the_chain_ladder(name):
    triangle = sample(name)
    result = bootstrap_odp(triangle, random_seed=7)
    totals = result.totals
    monte_carlo_error = totals.ibnr_std / math.sqrt(1000)
    assert abs(totals.ibnr_mean - totals.ibnr) < 3 * monte_carlo_error
    assert totals.ibnr == pytest.approx(chain_ladder_mack(triangle).totals.ibnr)


def test_with_many_simulations_the_mean_stays_close_to_the_chain_ladder(raa):
    result = bootstrap_odp(raa, random_seed=11, n_sims=20_000)
    totals = result.totals
    # The bias (about 3% of the IBNR, 9% of a standard deviation) is the method's own.
    assert 0 < totals.ibnr_mean - totals.ibnr < 0.15 * totals.ibnr_std
    assert totals.ibnr_mean == pytest.approx(52_135, rel=0.04)
    assert totals.ibnr_std == pytest.approx(18_711, rel=0.03)  # BootChainLadder: 18,711


@QUIET_CHAINLADDER
def test_it_matches_chainladders_bootstrap_within_monte_carlo_error(raa):
    import chainladder as cl
    import numpy as np

    ours = bootstrap_odp(raa, random_seed=3, n_sims=10_000)
    samples = cl.BootstrapODPSample(n_sims=10_000, random_state=3).fit_transform(
        cl.load_sample("raa")
    )
    assert ours.bootstrap.scale == pytest.approx(float(samples.scale_), rel=1e-9)
    theirs = np.nan_to_num(cl.Chainladder().fit(samples).ibnr_.sum("origin").values.ravel())
    error = math.hypot(ours.totals.ibnr_std, float(theirs.std())) / math.sqrt(10_000)
    assert abs(ours.totals.ibnr_mean - float(theirs.mean())) < 4 * error
    assert ours.totals.ibnr_std == pytest.approx(float(theirs.std()), rel=0.05)


def test_figures_per_origin_and_in_total(raa):
    result = bootstrap_odp(raa, random_seed=1, n_sims=2000, percentiles=(75.0, 99.5, 50.0))
    data = result.to_dict()
    assert data["method"] == "bootstrap_odp"
    totals = data["totals"]
    assert list(totals["percentiles"]) == ["75", "99.5", "50"]
    assert totals["percentiles"]["50"] < totals["percentiles"]["75"] < totals["percentiles"]["99.5"]
    assert totals["mack_se"] is None
    assert totals["cv"] == pytest.approx(totals["ibnr_std"] / totals["ibnr_mean"])
    first, last = data["origins"][0], data["origins"][-1]
    assert (first["ibnr_mean"], first["ibnr_std"]) == (0.0, 0.0)
    assert last["percentiles"]["99.5"] > last["ibnr_mean"] > 0
    summary = data["bootstrap"]
    assert summary["n_sims"] == 2000 and summary["random_seed"] == 1
    assert summary["degrees_of_freedom"] == 55 - 19
    assert sum(summary["histogram"]["counts"]) == 2000
    assert len(summary["histogram"]["edges"]) == len(summary["histogram"]["counts"]) + 1


def test_selections_and_the_tail_are_applied_to_every_simulation(raa):
    plain = bootstrap_odp(raa, random_seed=5, n_sims=2000)
    tail = TailSelection("constant", 1.05, "benchmark")
    selection = DevelopmentSelection(
        selected_factors=(FactorOverride(12, 3.2, "market study"),), drop_high=1
    )
    judged = bootstrap_odp(raa, random_seed=5, n_sims=2000, selection=selection, tail=tail)
    assert judged.totals.ibnr == pytest.approx(
        chain_ladder_mack(raa, selection=selection, tail=tail).totals.ibnr
    )
    # Centred on the judged chain ladder, not the plain one.
    assert abs(judged.totals.ibnr_mean - judged.totals.ibnr) < 0.1 * judged.totals.ibnr_std
    assert judged.totals.ibnr != pytest.approx(plain.totals.ibnr, rel=0.005)
    assert judged.options["tail"]["factor"] == 1.05
    assert {p.reason for p in judged.excluded_points} == {"drop_high"}


def test_annual_origins_developed_quarterly_bootstrap():
    triangle = sample("prism_oydq", "Paid")
    result = bootstrap_odp(triangle, random_seed=9, n_sims=2000)
    totals = result.totals
    assert abs(totals.ibnr_mean - totals.ibnr) < 0.1 * totals.ibnr_std
    cells = sum(len(row) for row in triangle.values)
    parameters = triangle.origin_count + triangle.development_age_count - 1
    assert result.bootstrap.degrees_of_freedom == cells - parameters


def test_a_triangle_whose_older_origins_start_late_is_refused():
    triangle = sample("xyz", "Paid")
    with pytest.raises(DevelopmentError, match="origin 1998 starts at age 36") as caught:
        bootstrap_odp(triangle, random_seed=1, n_sims=10)
    assert caught.value.param == "method"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_sims": 0}, "n_sims must be a whole number from 1 to 50000"),
        ({"n_sims": 50_001}, "n_sims must be a whole number from 1 to 50000"),
        ({"random_seed": -1}, "random_seed must be a whole number from 0"),
        ({"percentiles": (50, 100)}, "percentiles must be numbers above 0 and below 100"),
    ],
)
def test_bad_settings(raa, arguments, message):
    arguments = {"random_seed": 1, **arguments}
    with pytest.raises(ValueError, match=message):
        bootstrap_odp(raa, **arguments)
