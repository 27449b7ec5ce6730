"""The reserving workflows through the REST API: every method, the selections, bad input.

Runs are created with POST /api/v1/workflow-runs/, queued (the test settings run the
task at once), and read back; their figures are checked against the engine run
directly on the same bytes (whose own tests check it against published tables).
"""

import csv
import io
import json
import re
from pathlib import Path

import pytest

from artefacts.models import Artefact
from tests.api_fixtures import (
    assert_error,
    lead,
    lead_client,
    reviewer_client,
    reviewer_user,
)
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import database_state
from workflows import reserving
from workflows.implementations.reserving_inputs import TRIANGLE_PARAMS
from workflows.models import WorkflowRun

from .reserving_api import RUNS, approve, create, csv_of, premium_csv, run, upload

__all__ = ("lead", "lead_client", "reviewer_client", "reviewer_user")

pytestmark = pytest.mark.django_db

TRIANGLE = {"cumulative": True, "measure": "paid"}


@pytest.fixture
def auto(engagement, lead_client):
    """Friedland's U.S. industry auto paid claims, uploaded through the API."""
    return upload(
        lead_client, engagement, csv_of("friedland_us_industry_auto", "Paid Claims"), "auto.csv"
    )


@pytest.fixture
def premium(engagement, lead_client):
    return upload(lead_client, engagement, premium_csv(), "premium.csv", "data_file")


@pytest.fixture
def raa_id(engagement, lead_client):
    return upload(lead_client, engagement, csv_of("raa"), "raa.csv")


def engine(name, column=None):
    return reserving.read_triangle(
        csv_of(name, column),
        "t.csv",
        cumulative=True,
        measure="paid",
        allow_negative_development=True,
    )


def premium_dict():
    rows = csv.DictReader(io.StringIO(premium_csv().decode()))
    return {row["origin"]: float(row["earned_premium"]) for row in rows}


METHODS = [
    ("chain_ladder", {}, lambda t: reserving.chain_ladder_mack(t)),
    (
        "bornhuetter_ferguson",
        {"apriori_loss_ratio": 0.7},
        lambda t: reserving.bornhuetter_ferguson(
            t, exposure=premium_dict(), apriori_loss_ratio=0.7
        ),
    ),
    (
        "benktander",
        {"apriori_loss_ratio": 0.7, "n_iterations": 3},
        lambda t: reserving.benktander(
            t, exposure=premium_dict(), apriori_loss_ratio=0.7, n_iterations=3
        ),
    ),
    (
        "cape_cod",
        {"trend": 0.02, "decay": 0.9},
        lambda t: reserving.cape_cod(t, exposure=premium_dict(), trend=0.02, decay=0.9),
    ),
    (
        "bootstrap_odp",
        {"random_seed": 2025, "n_sims": 500, "percentiles": [50, 99.5]},
        lambda t: reserving.bootstrap_odp(t, random_seed=2025, n_sims=500, percentiles=(50, 99.5)),
    ),
]


@pytest.mark.parametrize(("method", "extra", "direct"), METHODS, ids=[m[0] for m in METHODS])
def test_each_method_runs_through_the_api(
    engagement,
    lead_client,
    auto,
    premium,
    django_capture_on_commit_callbacks,
    method,
    extra,
    direct,
):
    params = {"triangle_artefact": auto, **TRIANGLE, "method": method, **extra}
    if method in reserving.options.EXPOSURE_METHODS:
        params["exposure_artefact"] = premium
    response = create(lead_client, engagement, params)
    assert response.status_code == 201, response.content
    body = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])

    summary = body["output_summary"]
    expected = direct(engine("friedland_us_industry_auto", "Paid Claims")).to_dict()
    assert summary["method"] == method == summary["totals"]["method"]
    headline = body["result_headline"]
    assert headline["method"] == method and headline["measure"] == "paid"
    assert headline["ibnr"] == summary["totals"]["ibnr"]
    assert headline["ultimate"] == summary["totals"]["ultimate"]
    for key in ("latest", "ultimate", "ibnr", "mack_se", "cv", "ibnr_mean", "percentiles"):
        assert summary["totals"][key] == pytest.approx(expected["totals"][key]), key
    assert [o["ibnr"] for o in summary["origins"]] == pytest.approx(
        [o["ibnr"] for o in expected["origins"]]
    )
    assert summary["triangle"]["artefact_id"] == auto
    files = {a["file_name"] for a in summary["artefacts"]}
    assert {f"{method}_reserves.csv", f"{method}_reserves.xlsx", f"{method}_chart.png"} <= files
    assert (f"{method}_histogram.png" in files) == (method == "bootstrap_odp")
    inputs = {item["param"] for item in body["provenance"]["inputs"]}
    if "exposure_artefact" in params:
        assert inputs == {"triangle_artefact", "exposure_artefact"}
        assert summary["exposure"]["artefact_id"] == premium
        assert summary["exposure"]["column"] == "earned_premium"
    else:
        assert inputs == {"triangle_artefact"} and summary["exposure"] is None
    if method == "bootstrap_odp":
        assert set(summary["totals"]["percentiles"]) == {"50", "99.5"}
        assert summary["bootstrap"]["random_seed"] == 2025
    else:
        assert summary["totals"]["percentiles"] is None


def test_selections_reach_the_results(
    engagement, lead_client, raa_id, django_capture_on_commit_callbacks
):
    params = {
        "triangle_artefact": raa_id,
        **TRIANGLE,
        "average": "volume",
        "averages": {"24": "simple"},
        "exclude": [[1982, 12], ["1984", 24]],
        "selected_factors": {"108": {"factor": 1.005, "reason": "benchmark: run-off study"}},
        "tail": {"method": "constant", "factor": 1.02, "reason": "industry tail for GL"},
    }
    response = create(lead_client, engagement, params)
    assert response.status_code == 201, response.content
    stored = response.json()["input_params"]
    assert stored["exclude"] == [["1982", 12], ["1984", 24]]  # canonical: origins as text
    body = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])
    summary = body["output_summary"]
    factors = {f["period"]: f for f in summary["development_factors"]}
    assert factors["24-36"]["average"] == "simple"
    assert (factors["108-120"]["source"], factors["108-120"]["reason"]) == (
        "override",
        "benchmark: run-off study",
    )
    assert (factors["120-Ult"]["ldf"], factors["120-Ult"]["reason"]) == (
        1.02,
        "industry tail for GL",
    )
    assert [(p["origin"], p["period"]) for p in summary["excluded_points"]] == [
        ("1982", "12-24"),
        ("1984", "24-36"),
    ]
    assert summary["options"]["tail"] == params["tail"]
    assert any("the selected factor 1.005000 replaces" in w for w in summary["warnings"])


def test_the_textbook_runs_by_default_with_a_warning_naming_the_cell(
    engagement, lead_client, raa_id, django_capture_on_commit_callbacks
):
    """RAA falls from 15,599 to 15,496 (1982, 72 to 84 months): a warning, not a refusal."""
    response = create(lead_client, engagement, {"triangle_artefact": raa_id, **TRIANGLE})
    assert response.status_code == 201, response.content
    assert response.json()["input_params"]["allow_negative_development"] is True
    summary = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])[
        "output_summary"
    ]
    assert summary["totals"]["ibnr"] == pytest.approx(52_135.23, abs=0.01)
    assert summary["totals"]["mack_se"] == pytest.approx(26_909.01, abs=0.01)
    assert (
        "row 18, column C ('value'): negative development for origin 1982: the cumulative "
        "value falls from 15599 at age 72 to 15496 at age 84"
    ) in summary["warnings"]


def test_refusing_negative_development_says_what_to_set(engagement, lead_client, raa_id):
    params = {"triangle_artefact": raa_id, **TRIANGLE, "allow_negative_development": False}
    body = assert_error(create(lead_client, engagement, params), 400, "invalid")
    assert "negative development for origin 1982" in body["detail"]
    assert 'set "allow_negative_development": true in input_params (REST API)' in body["detail"]
    assert "tick “Allow negative development”" in body["detail"]


def test_annual_origins_developed_quarterly_run(
    engagement, lead_client, django_capture_on_commit_callbacks
):
    triangle = upload(lead_client, engagement, csv_of("quarterly", "paid"), "quarterly.csv")
    response = create(lead_client, engagement, {"triangle_artefact": triangle, **TRIANGLE})
    assert response.status_code == 201, response.content
    summary = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])[
        "output_summary"
    ]
    assert summary["grain"] == {
        "origin": "annual",
        "periods_per_origin": 4,
        "development_months": 3,
    }
    assert summary["triangle"]["grain"] == summary["grain"]
    expected = reserving.chain_ladder_mack(engine("quarterly", "paid"))
    assert summary["totals"]["ibnr"] == pytest.approx(expected.totals.ibnr)
    assert summary["totals"]["mack_se"] == pytest.approx(expected.totals.mack_se)


def test_quarterly_origins_with_annual_development_are_refused(engagement, lead_client):
    content = (
        b"origin,development,value\n2019Q1,12,100\n2019Q1,24,160\n2019Q2,12,110\n2019Q3,12,120\n"
    )
    triangle = upload(lead_client, engagement, content, "by_quarter.csv")
    body = assert_error(
        create(lead_client, engagement, {"triangle_artefact": triangle, **TRIANGLE}), 400, "invalid"
    )
    assert "the grain combination is not supported: quarterly origins" in body["detail"]
    assert body["errors"] == {"input_params": [body["detail"]]}


BAD = [
    ({"method": "mack"}, "method must be one of chain_ladder, bornhuetter_ferguson"),
    ({"average": "median"}, "average must be one of volume, simple, regression, medial"),
    ({"averages": {"30": "simple"}}, "averages: 30 is not the first age of a development period"),
    ({"n_periods": 0}, "n_periods must be a whole number of at least 1"),
    ({"drop_high": "one"}, "drop_high must be a whole number"),
    ({"exclude": [["1979", 12]]}, "exclude[0]: 1979 is not an origin of the triangle"),
    ({"exclude": [["1981", 108]]}, "exclude: development period 108-120 has no link ratio left"),
    ({"selected_factors": {"12": {"factor": 3}}}, "selected_factors['12']: a reason is required"),
    ({"tail": {"method": "constant", "factor": 1.1}}, "tail: a reason is required"),
    ({"tail": {"method": "weibull"}}, "tail.method must be one of constant, exponential"),
    ({"tail_factor": 0.9}, "tail_factor must be a number of at least 1"),
    (
        {"method": "bornhuetter_ferguson", "apriori_loss_ratio": 0.7},
        "exposure_artefact is required",
    ),
    (
        {"method": "cape_cod", "exposure_artefact": "premium", "decay": 2},
        "decay must be a number above 0",
    ),
    ({"method": "bootstrap_odp"}, "random_seed is required for the bootstrap_odp method"),
    (
        {"method": "bootstrap_odp", "random_seed": 1, "n_sims": 10**6},
        "n_sims must be a whole number from 1 to 50000",
    ),
    ({"n_sims": 100}, "n_sims applies to the bootstrap_odp method(s) only"),
    ({"prior_run": "not-a-uuid"}, "prior_run must be the id (a UUID) of a completed reserving run"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[m.split()[0] for _, m in BAD])
def test_bad_params_are_a_400_naming_the_parameter(
    engagement, lead_client, raa_id, premium, extra, message
):
    if extra.get("exposure_artefact") == "premium":
        extra = {**extra, "exposure_artefact": premium}
    before = database_state()
    response = create(lead_client, engagement, {"triangle_artefact": raa_id, **TRIANGLE, **extra})
    body = assert_error(response, 400, "invalid", match=message)
    assert body["detail"].startswith("Invalid input_params (reserve_calculation): ")
    assert database_state() == before


def test_exposure_origins_that_do_not_match_are_named(engagement, lead_client, raa_id, premium):
    params = {
        "triangle_artefact": raa_id,
        **TRIANGLE,
        "method": "bornhuetter_ferguson",
        "exposure_artefact": premium,
        "apriori_loss_ratio": 0.7,
    }
    body = assert_error(create(lead_client, engagement, params), 400, "invalid")
    assert (
        "exposure_artefact: “premium.csv v1” (premium.csv) cannot be used: the exposure has "
        in body["detail"]
    )
    assert (
        "origin(s) 1998, 1999, 2000, 2001, 2002, 2003, 2004, 2005, 2006, 2007 that are not "
        "in the triangle" in body["detail"]
    )


def test_an_exposure_of_another_engagement_is_not_found(engagement, lead_client, raa_id, lead):
    other = EngagementFactory(lead_actuary=lead)
    EngagementMemberFactory(engagement=other, user=lead, role="lead")
    elsewhere = upload(lead_client, other, premium_csv(), "premium.csv")
    params = {
        "triangle_artefact": raa_id,
        **TRIANGLE,
        "method": "cape_cod",
        "exposure_artefact": elsewhere,
    }
    body = assert_error(create(lead_client, engagement, params), 400, "invalid")
    assert (
        f"exposure_artefact: engagement “{engagement}” has no artefact {elsewhere}"
        in body["detail"]
    )


# --- actual vs expected ---------------------------------------------------------------------


@pytest.fixture
def prior_run(engagement, lead_client, reviewer_client, django_capture_on_commit_callbacks):
    """A completed chain ladder run on the auto triangle one valuation earlier."""
    earlier = upload(
        lead_client,
        engagement,
        csv_of("friedland_us_industry_auto", "Paid Claims", drop_last_diagonal=True),
        "auto_2006.csv",
    )
    response = create(
        lead_client, engagement, {"triangle_artefact": earlier, **TRIANGLE}, name="2006"
    )
    assert response.status_code == 201, response.content
    run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])
    approve(reviewer_client, response.json()["id"])
    return WorkflowRun.objects.get(pk=response.json()["id"])


def test_actual_vs_expected_against_a_prior_run(
    engagement, lead_client, auto, prior_run, django_capture_on_commit_callbacks
):
    assert prior_run.status == "completed"
    params = {"triangle_artefact": auto, **TRIANGLE, "prior_run": str(prior_run.pk)}
    response = create(lead_client, engagement, params)
    assert response.status_code == 201, response.content
    summary = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])[
        "output_summary"
    ]
    comparison = summary["actual_vs_expected"]
    assert comparison["prior"]["run_id"] == str(prior_run.pk)
    assert summary["prior_run"]["name"] == "2006"
    rows = {row["origin"]: row for row in comparison["origins"]}
    assert rows["2007"]["note"] == "new since the prior valuation"
    prior = prior_run.output_summary
    factors = {f["from_age"]: f["ldf"] for f in prior["development_factors"]}
    before = {o["origin"]: o for o in prior["origins"]}["2005"]
    assert rows["2005"]["expected"] == pytest.approx(before["latest"] * (factors[24] - 1))
    assert rows["2005"]["actual"] == pytest.approx(
        rows["2005"]["current_latest"] - before["latest"]
    )
    assert comparison["totals"]["actual_to_expected"] == pytest.approx(
        comparison["totals"]["actual"] / comparison["totals"]["expected"]
    )
    workbook = Artefact.objects.get(
        workflow_run_id=response.json()["id"], file_name="chain_ladder_reserves.xlsx"
    )
    from openpyxl import load_workbook

    with workbook.file.open("rb") as handle:
        assert "Actual vs expected" in load_workbook(handle).sheetnames


def test_a_prior_run_must_be_completed_and_of_the_same_client(
    engagement, lead_client, auto, raa_id, lead, django_capture_on_commit_callbacks
):
    response = create(lead_client, engagement, {"triangle_artefact": raa_id, **TRIANGLE})
    waiting = run(lead_client, django_capture_on_commit_callbacks, response.json()["id"])
    params = {"triangle_artefact": auto, **TRIANGLE, "prior_run": waiting["id"]}
    body = assert_error(create(lead_client, engagement, params), 400, "invalid")
    assert "prior_run: run “Reserves” is waiting for approval; only a completed" in body["detail"]

    other_client = EngagementFactory(lead_actuary=lead, client_code="OTHER")
    EngagementMemberFactory(engagement=other_client, user=lead, role="lead")
    theirs = WorkflowRun.objects.create(
        engagement=other_client,
        workflow_type="reserve_calculation",
        name="Theirs",
        status="completed",
    )
    params["prior_run"] = str(theirs.pk)
    body = assert_error(create(lead_client, engagement, params), 400, "invalid")
    assert (
        f"prior_run: client {engagement.client_code} has no reserving run {theirs.pk}"
        in body["detail"]
    )


# --- reproducibility ------------------------------------------------------------------------


def test_a_bootstrap_replays_exactly_from_its_seed(
    engagement, lead_client, raa_id, django_capture_on_commit_callbacks
):
    params = {"triangle_artefact": raa_id, **TRIANGLE, "method": "bootstrap_odp", "random_seed": 7}
    first = create(lead_client, engagement, params).json()["id"]
    second = create(lead_client, engagement, params, name="Again").json()["id"]
    one = run(lead_client, django_capture_on_commit_callbacks, first)
    two = run(lead_client, django_capture_on_commit_callbacks, second)
    assert one["output_summary"]["totals"] == two["output_summary"]["totals"]
    assert one["input_params"]["n_sims"] == 1000
    # The working paper (xlsx) names its run in its header: the other outputs are the same
    # bytes; the working paper's own repeatability is what the replay below shows.
    hashes = {
        run_id: sorted(
            Artefact.objects.filter(workflow_run_id=run_id)
            .exclude(file_name__endswith=".xlsx")
            .values_list("content_hash", flat=True)
        )
        for run_id in (first, second)
    }
    assert hashes[first] == hashes[second]

    response = lead_client.post(f"{RUNS}{first}/replay/")
    assert response.status_code == 200, response.content
    replay = response.json()
    assert replay["matched"] is True
    assert {o["file_name"] for o in replay["outputs"]} == {
        "bootstrap_odp_reserves.csv",
        "bootstrap_odp_reserves.xlsx",
        "bootstrap_odp_chart.png",
        "bootstrap_odp_histogram.png",
    }


# --- the examples of docs/actuaries/reserving-methods.md run as written ---------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "actuaries" / "reserving-methods.md"
EXAMPLE = re.compile(r"<!-- example: reserve-run -->\n```json\n(.*?)\n```", re.DOTALL)


def doc_examples() -> list[str]:
    return EXAMPLE.findall(DOCS.read_text())


def test_the_docs_show_every_parameter_in_an_example():
    examples = doc_examples()
    assert len(examples) >= 15
    shown = set()
    for example in examples:
        shown |= set(json.loads(example)["input_params"])
    assert shown >= {*reserving.RESERVING_PARAMS, *TRIANGLE_PARAMS}


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_each_api_example_in_the_docs_runs_as_written(
    index,
    engagement,
    lead_client,
    reviewer_client,
    auto,
    premium,
    request,
    django_capture_on_commit_callbacks,
):
    example = doc_examples()[index]
    substitutions = {"{engagement}": str(engagement.pk), "{triangle}": auto, "{exposure}": premium}
    if "{prior_run}" in example:
        substitutions["{prior_run}"] = str(request.getfixturevalue("prior_run").pk)
    for placeholder, value in substitutions.items():
        example = example.replace(placeholder, value)
    body = json.loads(example)
    response = lead_client.post(RUNS, body, format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    run(lead_client, django_capture_on_commit_callbacks, run_id)
    approve(reviewer_client, run_id)
    done = lead_client.get(f"{RUNS}{run_id}/").json()
    assert done["status"] == "completed"
    assert done["output_summary"]["totals"]["ibnr"] > 0
