"""The working paper's tables and charts, from a triangle and a result (plain Python)."""

from __future__ import annotations

import math
import re

import pytest

from workflows.reserving import (
    DevelopmentSelection,
    bootstrap_odp,
    chain_ladder_mack,
    fit_development,
)
from workflows.reserving.outputs.svg import (
    development_pattern_svg,
    ibnr_comparison_svg,
    reserve_ranges_svg,
)
from workflows.reserving.working_paper import (
    ReserveRange,
    candidate_averages,
    lognormal_percentiles,
    working_paper,
)

EXCLUDED = DevelopmentSelection(exclude=(("1982", 12),), n_periods=7)


def test_the_candidates_are_the_engines_own_averages(raa):
    candidates = {c.key: c for c in candidate_averages(raa, exclude=(("1982", 12),))}
    for key, average, n in (("volume_all", "volume", None), ("simple_3", "simple", 3)):
        selection = DevelopmentSelection(average=average, n_periods=n, exclude=(("1982", 12),))
        expected = [p.computed for p in fit_development(raa, selection).periods]
        assert list(candidates[key].values) == expected
    # Without the exclusion, RAA's all-year volume average of 12-24 is 2.9994 (Mack 1994).
    assert candidate_averages(raa)[0].values[0] == pytest.approx(2.99936, abs=1e-5)


def test_link_ratios_say_which_choice_left_them_out(raa):
    result = chain_ladder_mack(raa, selection=EXCLUDED).to_dict()
    paper = working_paper(raa, result)
    assert paper.link_ratios[1][0].left_out_by == "exclude"
    # n_periods = 7 leaves out the oldest of the 9 ratios of 12-24 that are not excluded.
    assert paper.link_ratios[0][0].left_out_by == "n_periods"
    assert paper.link_ratios[2][0].left_out_by is None
    assert paper.link_ratios[-1][0].value is None


def test_the_completed_triangle_reaches_the_chain_ladder_ultimates(raa):
    result = chain_ladder_mack(raa, tail_factor=1.02).to_dict()
    paper = working_paper(raa, result)
    for ultimate, row in zip(paper.projected_ultimates, result["origins"], strict=True):
        assert ultimate == pytest.approx(row["ultimate"], rel=1e-12)
    assert paper.incremental[0][1] == raa.values[0][1] - raa.values[0][0]
    assert paper.pattern[-1] == (120, pytest.approx(1 / 1.02))


def test_mack_ranges_are_a_lognormal_with_the_ibnr_as_mean():
    mean, std = 50_000.0, 20_000.0
    levels = dict(lognormal_percentiles(mean, std))
    sigma2 = math.log1p((std / mean) ** 2)
    assert math.exp(math.log(levels[50.0]) + sigma2 / 2) == pytest.approx(mean)
    assert 0 < levels[50.0] < mean < levels[75.0] < levels[99.5]


def test_ranges_come_from_the_bootstrap_when_simulated(raa):
    result = bootstrap_odp(raa, random_seed=1, n_sims=200, percentiles=(50, 90)).to_dict()
    paper = working_paper(raa, result)
    assert paper.range_source == "ODP bootstrap simulations"
    total = paper.ranges[-1]
    assert total.label == "Total"
    assert [level for level, _ in total.percentiles] == [50.0, 90.0]


def test_the_charts_escape_their_text_and_start_at_zero():
    ranges = (
        ReserveRange("<b>2024</b>", 100.0, ((50.0, 90.0), (99.5, 400.0))),
        ReserveRange("Total", 100.0, ((50.0, 90.0), (99.5, 400.0))),
    )
    svg = reserve_ranges_svg(ranges)
    assert "<b>" not in svg and "&lt;b&gt;2024&lt;/b&gt;" in svg
    assert not re.search(r'<rect x="-', svg)
    assert reserve_ranges_svg(()) == "" and development_pattern_svg(()) == ""
    assert development_pattern_svg(((12, 0.2), (24, 1.0))).startswith("<svg")


def test_fully_developed_origins_have_no_range(raa):
    result = bootstrap_odp(raa, random_seed=1, n_sims=200).to_dict()
    labels = [r.label for r in working_paper(raa, result).ranges]
    assert "1981" not in labels and labels[-1] == "Total"


def test_the_ibnr_comparison_draws_both_runs_and_negative_bars_left_of_zero():
    svg = ibnr_comparison_svg(
        (("2023", 100.0, 120.0), ("2024", -10.0, None), ("2025", None, None)),
        ("Plain", "<Judged>"),
    )
    assert svg.count("<rect") == 2 + 3  # the legend's two, then three bars
    assert "&lt;Judged&gt;" in svg and "2025" not in svg
    assert ibnr_comparison_svg((), ("a", "b")) == ""
