"""The reserving input_params: each checked alone, against the triangle, and made canonical."""

import pytest

from workflows.reserving import (
    RESERVING_PARAMS,
    ReservingInputError,
    check_against_triangle,
    parse_options,
)

from .conftest import sample


def test_defaults_are_the_chain_ladder_with_volume_averages():
    options = parse_options({})
    assert options.method == "chain_ladder"
    assert (options.selection.average, options.tail) == ("volume", None)
    # Only the two reserving parameters runs always kept: old runs hash and replay alike.
    assert options.to_params() == {"average": "volume", "tail_factor": None}
    assert parse_options({"method": "chain_ladder", "exclude": []}).to_params() == {
        "average": "volume",
        "tail_factor": None,
    }


FULL = {
    "method": "bootstrap_odp",
    "average": "simple",
    "averages": {"24": "medial", 36: "regression"},
    "n_periods": 7,
    "drop_high": 1,
    "drop_low": 0,
    "exclude": [[1982, 12], ["1985", "36"], [1982, 12.0]],
    "selected_factors": {"12": {"factor": 2.9, "reason": " benchmark "}},
    "tail": {"method": "exponential", "fit_from_age": 48},
    "n_sims": 2000.0,
    "random_seed": 42,
    "percentiles": [99.5, 50, 75],
    "prior_run": "00000000-0000-0000-0000-00000000000a",
}


def test_every_parameter_is_read_and_made_canonical():
    params = parse_options(FULL).to_params()
    assert params == {
        "method": "bootstrap_odp",
        "tail_factor": None,
        "average": "simple",
        "averages": {"24": "medial", "36": "regression"},
        "n_periods": 7,
        "drop_high": 1,
        "exclude": [["1982", 12], ["1985", 36]],
        "selected_factors": {"12": {"factor": 2.9, "reason": "benchmark"}},
        "tail": {"method": "exponential", "fit_from_age": 48},
        "prior_run": "00000000-0000-0000-0000-00000000000a",
        "n_sims": 2000,
        "random_seed": 42,
        "percentiles": [50.0, 75.0, 99.5],
    }
    # Canonical: reading its own output again changes nothing (the parameter hash).
    assert parse_options(params).to_params() == params
    assert set(params) <= set(RESERVING_PARAMS)


@pytest.mark.parametrize(
    ("method", "extra", "keys"),
    [
        (
            "bornhuetter_ferguson",
            {"apriori_loss_ratio": 0.7},
            {"exposure_artefact", "apriori_loss_ratio"},
        ),
        (
            "benktander",
            {"apriori_loss_ratio": {"1981": 0.6}},
            {"exposure_artefact", "apriori_loss_ratio", "n_iterations"},
        ),
        ("cape_cod", {"trend": 0.02}, {"exposure_artefact", "trend", "decay"}),
    ],
)
def test_method_parameters_appear_for_their_method_only(method, extra, keys):
    params = parse_options({"method": method, "exposure_artefact": "x", **extra}).to_params()
    method_keys = set(params) - set(parse_options({}).to_params()) - {"method"}
    assert method_keys == keys
    if method == "benktander":
        assert params["n_iterations"] == 2
    if method == "cape_cod":
        assert (params["trend"], params["decay"]) == (0.02, 1.0)


def test_the_old_tail_factor_is_a_constant_tail():
    options = parse_options({"tail_factor": 1.05})
    assert (options.tail.method, options.tail.factor) == ("constant", 1.05)
    assert options.tail.reason == "given as tail_factor"
    assert options.to_params() == {"average": "volume", "tail_factor": 1.05}
    tail = {"method": "constant", "factor": 1.05, "reason": "industry benchmark"}
    assert parse_options({"tail": tail}).to_params() == {
        "average": "volume",
        "tail_factor": None,
        "tail": tail,
    }


BAD = [
    (
        {"method": "mack"},
        "method",
        "method must be one of chain_ladder, bornhuetter_ferguson, benktander, cape_cod, "
        "bootstrap_odp, not 'mack'.",
    ),
    (
        {"average": "median"},
        "average",
        "average must be one of volume, simple, regression, medial, not 'median'.",
    ),
    (
        {"averages": ["simple"]},
        "averages",
        'averages must be a JSON object {"<from age>": average}',
    ),
    ({"averages": {"twelve": "simple"}}, "averages", "averages: 'twelve' is not a development age"),
    (
        {"averages": {"12": "mean"}},
        "averages",
        "averages['12'] must be one of volume, simple, regression, medial",
    ),
    (
        {"n_periods": 0},
        "n_periods",
        "n_periods must be a whole number of at least 1 (or null for every origin), not 0.",
    ),
    ({"n_periods": 2.5}, "n_periods", "n_periods must be a whole number"),
    ({"drop_high": -1}, "drop_high", "drop_high must be a whole number from 0 to 50, not -1."),
    ({"drop_low": True}, "drop_low", "drop_low must be a whole number"),
    (
        {"exclude": {"1982": 12}},
        "exclude",
        "exclude must be a JSON list of [origin, from age] pairs",
    ),
    ({"exclude": [[1982]]}, "exclude", "exclude[0] must be a pair [origin, from age], not [1982]."),
    (
        {"selected_factors": {"12": 2.9}},
        "selected_factors",
        "selected_factors['12'] must be a JSON object",
    ),
    (
        {"selected_factors": {"12": {"factor": 2.9}}},
        "selected_factors",
        "selected_factors['12']: a reason is required",
    ),
    (
        {"selected_factors": {"12": {"factor": 2.9, "reason": "  "}}},
        "selected_factors",
        "selected_factors['12']: a reason is required",
    ),
    (
        {"selected_factors": {"12": {"factor": 0, "reason": "x"}}},
        "selected_factors",
        "selected_factors['12'].factor must be a number above 0, not 0.",
    ),
    (
        {"selected_factors": {"12": {"factor": 2, "reason": "x", "by": "me"}}},
        "selected_factors",
        "selected_factors['12'] has unknown key(s) by",
    ),
    ({"tail": 1.05}, "tail", "tail must be a JSON object"),
    (
        {"tail": {"method": "weibull"}},
        "tail",
        "tail.method must be one of constant, exponential, inverse_power, bondy, not 'weibull'.",
    ),
    ({"tail": {"method": "constant", "factor": 1.05}}, "tail", "tail: a reason is required"),
    (
        {"tail": {"method": "constant", "factor": -1, "reason": "x"}},
        "tail",
        "tail.factor must be a number above 0, not -1.",
    ),
    (
        {"tail": {"method": "bondy", "factor": 1.1}},
        "tail",
        "tail (bondy) has unknown key(s) factor (it takes method).",
    ),
    (
        {"tail": {"method": "bondy"}, "tail_factor": 1.05},
        "tail",
        "give tail or tail_factor, not both",
    ),
    (
        {"tail_factor": 0.95},
        "tail_factor",
        "tail_factor must be a number of at least 1 (or null for no tail), not 0.95.",
    ),
    (
        {"apriori_loss_ratio": 0.6},
        "apriori_loss_ratio",
        "apriori_loss_ratio applies to the bornhuetter_ferguson, benktander method(s) only; "
        "this run's method is chain_ladder.",
    ),
    ({"n_sims": 100}, "n_sims", "n_sims applies to the bootstrap_odp method(s) only"),
    (
        {"method": "bornhuetter_ferguson", "apriori_loss_ratio": 0.6},
        "exposure_artefact",
        "exposure_artefact is required for the bornhuetter_ferguson method: the id of an artefact",
    ),
    (
        {"method": "benktander", "exposure_artefact": "x"},
        "apriori_loss_ratio",
        "apriori_loss_ratio is required for the benktander method",
    ),
    (
        {"method": "bornhuetter_ferguson", "exposure_artefact": "x", "apriori_loss_ratio": "high"},
        "apriori_loss_ratio",
        "apriori_loss_ratio must be a number above 0, or an object of one per origin, not 'high'.",
    ),
    (
        {
            "method": "benktander",
            "exposure_artefact": "x",
            "apriori_loss_ratio": 0.6,
            "n_iterations": 0,
        },
        "n_iterations",
        "n_iterations must be a whole number from 1 to 100, not 0.",
    ),
    (
        {"method": "cape_cod", "exposure_artefact": "x", "decay": 0},
        "decay",
        "decay must be a number above 0 and at most 1, not 0.",
    ),
    (
        {"method": "cape_cod", "exposure_artefact": "x", "trend": -1},
        "trend",
        "trend must be a number above -1",
    ),
    (
        {"method": "bootstrap_odp"},
        "random_seed",
        "random_seed is required for the bootstrap_odp method: a whole number that makes the "
        "simulation reproducible",
    ),
    (
        {"method": "bootstrap_odp", "random_seed": 1, "n_sims": 50_001},
        "n_sims",
        "n_sims must be a whole number from 1 to 50000, not 50001.",
    ),
    (
        {"method": "bootstrap_odp", "random_seed": "abc"},
        "random_seed",
        "random_seed must be a whole number",
    ),
    (
        {"method": "bootstrap_odp", "random_seed": 1, "percentiles": [50, 100]},
        "percentiles",
        "percentiles must be a JSON list of 1 to 20 numbers above 0 and below 100",
    ),
    (
        {"method": "bootstrap_odp", "random_seed": 1, "percentiles": [50, 50]},
        "percentiles",
        "percentiles lists 50 twice.",
    ),
]


@pytest.mark.parametrize(
    ("params", "param", "message"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)]
)
def test_bad_parameters_are_named(params, param, message):
    with pytest.raises(ReservingInputError) as caught:
        parse_options(params)
    assert caught.value.param == param
    assert caught.value.message.startswith(message)


AGAINST_RAA = [
    (
        {"averages": {"120": "simple"}},
        "averages",
        "averages: 120 is not the first age of a development period (the periods start at "
        "12, 24, 36, 48, 60, 72, 84, 96, 108).",
    ),
    (
        {"selected_factors": {"30": {"factor": 1.1, "reason": "x"}}},
        "selected_factors",
        "selected_factors: 30 is not the first age",
    ),
    (
        {"exclude": [["1979", 12]]},
        "exclude",
        "exclude[0]: 1979 is not an origin of the triangle (its origins: 1981 to 1990).",
    ),
    (
        {"exclude": [["1990", 12]]},
        "exclude",
        "exclude[0]: origin 1990 has no link ratio from age 12 (it is observed from age 12 "
        "to age 12).",
    ),
    ({"exclude": [["1981", 96]]}, "exclude", None),
    (
        {"exclude": [["1981", 96], ["1982", 96]]},
        "exclude",
        "development period 96-108 has no link ratio left once the excluded points are left "
        "out (2 excluded); keep at least one, or select its factor in selected_factors",
    ),
    (
        {"exclude": [["1981", 108]], "selected_factors": {"108": {"factor": 1.01, "reason": "x"}}},
        "exclude",
        None,
    ),
    (
        {"tail": {"method": "exponential", "fit_from_age": 50}},
        "tail",
        "tail.fit_from_age: 50 is not the first age",
    ),
    (
        {
            "method": "bornhuetter_ferguson",
            "exposure_artefact": "x",
            "apriori_loss_ratio": {"1981": 0.6},
        },
        "apriori_loss_ratio",
        "apriori_loss_ratio: no value for 1982, 1983",
    ),
    (
        {
            "method": "bornhuetter_ferguson",
            "exposure_artefact": "x",
            "apriori_loss_ratio": {"2001": 0.6},
        },
        "apriori_loss_ratio",
        "apriori_loss_ratio: 2001 not in the triangle",
    ),
]


@pytest.mark.parametrize(
    ("params", "param", "message"),
    AGAINST_RAA,
    ids=[f"{a[1]}-{i}" for i, a in enumerate(AGAINST_RAA)],
)
def test_what_the_parameters_name_must_be_in_the_triangle(raa, params, param, message):
    options = parse_options(params)
    if message is None:
        check_against_triangle(options, raa)
        return
    with pytest.raises(ReservingInputError) as caught:
        check_against_triangle(options, raa)
    assert caught.value.param == param
    assert caught.value.message.startswith(message)


def test_a_tail_that_cannot_be_fitted_is_refused_before_the_run():
    triangle = sample("usaa", "incurred")
    options = parse_options({"tail": {"method": "inverse_power"}})
    with pytest.raises(ReservingInputError, match="tail: the inverse_power curve needs") as caught:
        check_against_triangle(options, triangle)
    assert caught.value.param == "tail"
