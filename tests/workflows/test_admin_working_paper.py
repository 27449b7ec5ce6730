"""The working paper on a reserving run's page: triangle, link ratios, averages, selection,
completed triangle, ranges, charts, and the time computed apart from the time waited.

Real runs (the immediate task backend) on the bundled RAA triangle and on made-up
triangles of 10 and 100 origins, whose page costs the same number of queries.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from approvals.models import Approval
from approvals.services import approval_approve
from tests.admin_fixtures import (
    actuaries_group,
    lead,
    lead_client,
    outsider,
    qualified_reviewer,
)
from tests.factories.states import NO_CONFLICT
from workflows.choices import WorkflowType
from workflows.reserving.development import LEFT_OUT_EXCLUDED

from .conftest import reserving_params, upload_triangle

__all__ = ("actuaries_group", "lead", "lead_client", "outsider", "qualified_reviewer")

pytestmark = pytest.mark.django_db


def change_url(run):
    return reverse("admin:workflows_workflowrun_change", args=(run.pk,))


def made_up_csv(origins: int, ages: int | None = None) -> bytes:
    """Return a long-layout cumulative triangle of `origins` annual origins (made-up values)."""
    ages = ages or origins
    lines = ["origin,development,value"]
    for i in range(origins):
        year = 2025 - origins + 1 + i
        size = 1000.0 + 37 * (i % 11)
        for k in range(min(ages, origins - i)):
            share = 1 - 0.55 ** (k + 1) * (1 + 0.03 * ((i + k) % 5))
            lines.append(f"{year},{12 * (k + 1)},{round(size * max(share, 0.05), 2)}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def raa_run(engagement, lead, create_run, queue_and_run, raa):
    """A chain ladder on RAA: 1982's 12-24 ratio excluded, 24-36 overridden, a 1.05 tail."""
    params = reserving_params(
        raa,
        exclude=[["1982", 12]],
        selected_factors={"24": {"factor": 1.75, "reason": "Benchmark from the market study"}},
        tail={"method": "constant", "factor": 1.05, "reason": "Industry tail"},
    )
    run = create_run(WorkflowType.RESERVE_CALCULATION, params, name="RAA with judgment")
    return queue_and_run(run)


def test_the_triangle_cumulative_and_incremental(lead_client, raa_run):
    response = lead_client.get(change_url(raa_run))
    paper = response.context["run_details"].working_paper
    assert paper.ages[:3] == ["12", "24", "36"] and len(paper.cumulative) == 10
    first = paper.cumulative[0]
    assert first.origin == "1981"
    assert [cell.text for cell in first.cells[:3]] == ["5,012", "8,269", "10,907"]
    assert [cell.text for cell in paper.incremental[0].cells[:3]] == ["5,012", "3,257", "2,638"]
    # The latest origin has one value; the rest of its row is empty.
    assert [cell.text for cell in paper.cumulative[-1].cells[:2]] == ["2,063", ""]
    html = response.content.decode()
    assert 'id="wp-cumulative"' in html and 'id="wp-incremental"' in html


def test_link_ratios_mark_the_excluded_point(lead_client, raa_run):
    paper = lead_client.get(change_url(raa_run)).context["run_details"].working_paper
    cell = paper.link_ratios[1].cells[0]
    assert paper.link_ratios[1].origin == "1982"
    assert (cell.text, cell.css, cell.title) == ("40.4245", "left-out", "excluded")
    assert paper.excluded_count == 1
    assert LEFT_OUT_EXCLUDED == "exclude"


def test_candidate_averages_and_the_selected_row_with_sources(lead_client, raa_run):
    paper = lead_client.get(change_url(raa_run)).context["run_details"].working_paper
    labels = [row.origin for row in paper.candidates]
    assert labels == [
        "Volume, all years",
        "Simple, all years",
        "Volume, latest 5",
        "Simple, latest 5",
        "Volume, latest 3",
        "Simple, latest 3",
        "Medial, all years",
        "Regression, all years",
    ]
    volume = paper.candidates[0].cells
    # The selected 12-24 factor is the volume average without 1982 (as the candidate).
    assert paper.selected_row.cells[0].text == volume[0].text
    assert paper.selected_row.cells[0].title == "volume average"
    override = paper.selected[1]
    assert (override["ldf"], override["source"], override["reason"]) == (
        "1.7500",
        "override",
        "Benchmark from the market study",
    )
    assert paper.selected_row.cells[1].css == "source-override"
    assert paper.tail["ldf"] == "1.0500" and paper.tail["source_text"] == "tail"
    assert paper.cdf_row.cells[-1].text == paper.selected[-2]["cdf"]


def test_the_completed_triangle_reaches_the_stored_ultimates(lead_client, raa_run):
    details = lead_client.get(change_url(raa_run)).context["run_details"]
    paper = details.working_paper
    stored = {row["origin"]: row["ultimate"] for row in raa_run.output_summary["origins"]}
    for row in paper.projected:
        assert row.extra[0].text == f"{stored[row.origin]:,.0f}"
    latest = paper.projected[-1]
    assert latest.cells[0].css == "" and latest.cells[1].css == "projected"


def test_mack_ranges_are_percentiles_never_below_zero(lead_client, raa_run):
    response = lead_client.get(change_url(raa_run))
    paper = response.context["run_details"].working_paper
    assert paper.percentile_levels == ["P50", "P75", "P90", "P95", "P99.5"]
    total = paper.percentile_rows[-1]
    assert total.origin == "Total"
    values = [float(cell.text.replace(",", "")) for cell in total.cells[1:]]
    assert values == sorted(values) and values[0] > 0
    assert "lognormal" in paper.range_source
    html = response.content.decode()
    for chart in ('id="wp-pattern-chart"', 'id="wp-ranges-chart"'):
        assert chart in html
    svg = re.search(r'<figure id="wp-ranges-chart">(.*?)</figure>', html, re.S).group(1)
    assert "<svg" in svg and "best estimate" in svg
    # No band starts left of the zero line (the axis starts at zero).
    assert not re.search(r'<rect x="-', svg)


def test_a_bootstrap_shows_its_simulated_percentiles(lead_client, create_run, queue_and_run, raa):
    params = reserving_params(
        raa, method="bootstrap_odp", n_sims=300, random_seed=7, percentiles=[50, 90, 99.5]
    )
    run = queue_and_run(create_run(WorkflowType.RESERVE_CALCULATION, params))
    paper = lead_client.get(change_url(run)).context["run_details"].working_paper
    assert paper.percentile_levels == ["P50", "P90", "P99.5"]
    assert paper.range_source == "ODP bootstrap simulations"
    stored = run.output_summary["totals"]["percentiles"]
    assert paper.percentile_rows[-1].cells[-1].text == f"{stored['99.5']:,.0f}"


def test_compute_time_is_shown_apart_from_the_wait_for_approval(
    lead_client, raa_run, qualified_reviewer
):
    response = lead_client.get(change_url(raa_run))
    details = response.context["run_details"]
    assert details.compute_time.endswith(" s")
    assert details.approval_wait.endswith("so far")
    # Waiting is not running: the duration says so rather than count the wait.
    assert details.running_for == ""
    assert "not ended: waiting for approval" in response.content.decode()
    approval_approve(
        approval=Approval.objects.get(workflow_run=raa_run),
        actor=qualified_reviewer,
        notes="Fine",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    html = lead_client.get(change_url(raa_run)).content.decode()
    assert 'id="run-compute-time"' in html and 'id="run-approval-wait"' in html
    details = lead_client.get(change_url(raa_run)).context["run_details"]
    assert "so far" not in details.approval_wait


def test_a_changed_or_hidden_triangle_is_said(lead_client, raa_run, raa, lead):
    from artefacts.services import artefact_delete

    artefact_delete(artefact=raa, actor=lead)
    details = lead_client.get(change_url(raa_run)).context["run_details"]
    assert details.working_paper is None
    assert "deleted or not visible" in details.working_paper_problem


@pytest.mark.parametrize("origins", [10, 100])
def test_the_page_costs_the_same_queries_at_10_and_100_origins(
    origins, engagement, lead, lead_client, create_run, queue_and_run, django_assert_max_num_queries
):
    triangle = upload_triangle(
        engagement, actor=lead, content=made_up_csv(origins), file_name=f"t{origins}.csv"
    )
    run = queue_and_run(create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(triangle)))
    lead_client.get(change_url(run))
    with django_assert_max_num_queries(PAGE_QUERIES):
        response = lead_client.get(change_url(run))
    paper = response.context["run_details"].working_paper
    assert len(paper.cumulative) == origins and len(paper.projected) == origins
    with django_assert_max_num_queries(DOWNLOAD_QUERIES):
        download = lead_client.get(working_paper_url(run))
    assert download.status_code == 200


# The run page of a reserving run, whatever its size (pinned at 10 and 100 origins).
PAGE_QUERIES = 33
# The Excel working paper's download, likewise.
DOWNLOAD_QUERIES = 16


# --- the Excel working paper ---------------------------------------------------------------


def working_paper_url(run):
    return reverse("admin:workflows_workflowrun_working_paper", args=(run.pk,))


def open_workbook(data: bytes):
    import io

    from openpyxl import load_workbook

    return load_workbook(io.BytesIO(data))


def header_facts(workbook) -> dict:
    sheet = workbook["Reserves"]
    return {sheet[f"A{row}"].value: sheet[f"B{row}"].value for row in range(3, 14)}


def test_the_run_keeps_its_working_paper_as_a_draft(raa_run, lead):
    from artefacts.models import Artefact
    from artefacts.services import artefact_open_for_download

    stored = Artefact.objects.get(workflow_run=raa_run, file_name="chain_ladder_reserves.xlsx")
    with artefact_open_for_download(artefact=stored, actor=lead) as handle:
        workbook = open_workbook(handle.read())
    facts = header_facts(workbook)
    assert facts["Status"] == "DRAFT" and facts["Run id"] == str(raa_run.pk)
    assert facts["Client"] == f"{raa_run.engagement.client_name} ({raa_run.engagement.client_code})"
    assert facts["Author"] == (lead.get_full_name() or lead.get_username())
    assert {"Triangle", "Link ratios", "Averages and selections", "Provenance"} <= set(
        workbook.sheetnames
    )
    provenance = dict(workbook["Provenance"].iter_rows(min_row=2, values_only=True))
    triangle = raa_run.output_summary["triangle"]
    assert provenance["triangle_artefact SHA-256"] == triangle["content_hash"]


def test_the_download_is_approved_once_approved_and_recomputes(
    lead_client, raa_run, qualified_reviewer
):
    from tests.reserving.formulas import FormulaEvaluator
    from workflows.reserving.outputs.workbook import RESULTS_HEADER_ROW

    response = lead_client.get(working_paper_url(raa_run))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="working_paper_raa-with-judgment.xlsx"'
    )
    assert header_facts(open_workbook(response.content))["Status"] == "DRAFT"
    approval_approve(
        approval=Approval.objects.get(workflow_run=raa_run),
        actor=qualified_reviewer,
        notes="Fine",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    raa_run.refresh_from_db()
    workbook = open_workbook(lead_client.get(working_paper_url(raa_run)).content)
    facts = header_facts(workbook)
    assert facts["Status"] == "APPROVED" and workbook["Reserves"]["C1"].value == "APPROVED"
    assert facts["Approved by"] == (
        qualified_reviewer.get_full_name() or qualified_reviewer.get_username()
    )
    assert (
        facts["Approved on"]
        == Approval.objects.get(workflow_run=raa_run).reviewed_at.date().isoformat()
    )
    evaluate = FormulaEvaluator(workbook)
    totals = raa_run.output_summary["totals"]
    total_row = RESULTS_HEADER_ROW + 1 + len(raa_run.output_summary["origins"])
    assert evaluate.value("Reserves", f"E{total_row}") == pytest.approx(totals["ultimate"])
    assert evaluate.value("Reserves", f"F{total_row}") == pytest.approx(totals["ibnr"])


def test_no_working_paper_outside_your_engagements(raa_run, client, outsider):
    client.force_login(outsider)
    assert client.get(working_paper_url(raa_run)).status_code == 404


def test_a_bornhuetter_ferguson_run_shows_its_own_columns(
    engagement, lead, lead_client, create_run, queue_and_run, raa
):
    premium = "origin,earned_premium\n" + "".join(
        f"{year},{30000 + 500 * (year - 1981)}\n" for year in range(1981, 1991)
    )
    exposure = upload_triangle(
        engagement, actor=lead, content=premium.encode(), file_name="premium.csv"
    )
    params = reserving_params(
        raa,
        method="bornhuetter_ferguson",
        exposure_artefact=str(exposure.pk),
        apriori_loss_ratio=0.7,
    )
    run = queue_and_run(create_run(WorkflowType.RESERVE_CALCULATION, params, name="BF"))
    response = lead_client.get(change_url(run))
    details = response.context["run_details"]
    assert details.method_label == "Bornhuetter-Ferguson"
    table = details.reserve_table
    assert table.extra_headings == ["Exposure", "A-priori loss ratio", "Expected ultimate"]
    assert table.rows[0]["extra"] == ["30,000", "70.0%", "21,000"]
    assert table.total["extra"][0] == f"{sum(30000 + 500 * i for i in range(10)):,}"
    # No spread without Mack or a simulation: no ranges, and the page says nothing of them.
    assert details.working_paper.percentile_rows == []
    assert 'id="wp-ranges-chart"' not in response.content.decode()
