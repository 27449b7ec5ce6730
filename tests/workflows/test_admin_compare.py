"""Two reserving runs of an engagement side by side in the admin, and actual vs expected.

Real runs on RAA (the immediate task backend): the compare page, the changelist action
that opens it, the run page's "Compare with" list, scoping, and its query count at 10 and
100 origins.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.admin_fixtures import actuaries_group, lead, lead_client, outsider, outsider_engagement
from tests.factories.states import admin_messages
from workflows.choices import WorkflowType
from workflows.reserving import actual_vs_expected

from .conftest import reserving_params, upload_triangle
from .reserving_api import csv_of
from .test_admin_working_paper import made_up_csv

__all__ = ("actuaries_group", "lead", "lead_client", "outsider", "outsider_engagement")

pytestmark = pytest.mark.django_db

COMPARE = reverse("admin:workflows_workflowrun_compare")
CHANGELIST = reverse("admin:workflows_workflowrun_changelist")


def compare_url(first, second):
    return f"{COMPARE}?run={first.pk}&run={second.pk}"


@pytest.fixture
def two_runs(create_run, queue_and_run, raa):
    """A plain chain ladder on RAA, then one with an exclusion, an override and a tail."""
    plain = queue_and_run(
        create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(raa), name="Plain")
    )
    judged = queue_and_run(
        create_run(
            WorkflowType.RESERVE_CALCULATION,
            reserving_params(
                raa,
                exclude=[["1982", 12]],
                selected_factors={"24": {"factor": 1.75, "reason": "Benchmark"}},
                tail={"method": "constant", "factor": 1.05, "reason": "Industry"},
            ),
            name="Judged",
        )
    )
    return plain, judged


def test_two_runs_side_by_side_with_their_differences(lead_client, two_runs):
    plain, judged = two_runs
    # Given in either order, the earlier run is first.
    response = lead_client.get(compare_url(judged, plain))
    assert response.status_code == 200
    comparison = response.context["comparison"]
    assert (comparison.first, comparison.second) == (plain, judged)
    first_totals = plain.output_summary["totals"]
    second_totals = judged.output_summary["totals"]
    assert comparison.total.first_ibnr == f"{first_totals['ibnr']:,.0f}"
    assert comparison.total.second_ibnr == f"{second_totals['ibnr']:,.0f}"
    assert (
        comparison.total.ibnr_difference == f"{second_totals['ibnr'] - first_totals['ibnr']:+,.0f}"
    )
    assert [row.origin for row in comparison.origins] == [str(y) for y in range(1981, 1991)]
    factors = {factor.period: factor for factor in comparison.factors}
    assert factors["24-36"].changed and factors["24-36"].second["source"] == "override"
    assert factors["120-Ult"].second["ldf"] == "1.0500"
    assert not factors["108-120"].changed
    options = {key: (first, second) for key, first, second in comparison.options}
    # The choices read as labels and plain values, not parameter names and dicts.
    assert set(options) >= {"Exclude", "Selected factors", "Tail"}
    values = [value for pair in options.values() for value in pair]
    assert "_" not in "".join(options) and not any("{" in value for value in values)
    assert options["Exclude"] == ("—", "1982 at 12")
    assert options["Selected factors"][0] == "—"
    html = response.content.decode()
    sections = ("compare-origins", "compare-factor-table", "compare-emergence-table")
    for section in (*sections, "compare-ibnr-chart"):
        assert f'id="{section}"' in html


def test_actual_vs_expected_against_the_prior_valuation(
    engagement, lead, lead_client, create_run, queue_and_run
):
    before = upload_triangle(
        engagement, actor=lead, content=csv_of("raa", drop_last_diagonal=True), file_name="p.csv"
    )
    now = upload_triangle(engagement, actor=lead, content=csv_of("raa"), file_name="n.csv")
    prior = queue_and_run(
        create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(before), name="2024")
    )
    current = queue_and_run(
        create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(now), name="2025")
    )
    comparison = lead_client.get(compare_url(prior, current)).context["comparison"]
    expected = actual_vs_expected(current.output_summary, prior.output_summary)
    assert comparison.emergence_total["actual"] == f"{expected.actual:,.0f}"
    assert comparison.emergence_total["expected"] == f"{expected.expected:,.0f}"
    assert expected.actual != 0
    [new] = [row for row in comparison.emergence if row["origin"] == "1990"]
    assert new["note"] == "new since the prior valuation"


def test_the_changelist_action_opens_the_comparison(lead_client, two_runs):
    plain, judged = two_runs
    data = {"action": "compare_selected", "_selected_action": [str(plain.pk), str(judged.pk)]}
    response = lead_client.post(CHANGELIST, data)
    assert response.status_code == 302
    assert response["Location"].startswith(COMPARE)
    assert lead_client.get(response["Location"]).status_code == 200
    one = {"action": "compare_selected", "_selected_action": [str(plain.pk)]}
    response = lead_client.post(CHANGELIST, one, follow=True)
    assert ("error", "Select exactly two workflow runs to compare (you selected 1).") in (
        admin_messages(response)
    )


def test_the_run_page_offers_the_engagements_other_runs(lead_client, two_runs):
    plain, judged = two_runs
    response = lead_client.get(reverse("admin:workflows_workflowrun_change", args=(judged.pk,)))
    assert response.context["run_details"].compare_with == [plain]
    # Its form stands before the change form (forms cannot nest); the fields name it.
    html = response.content.decode()
    assert html.index('id="compare-with-form"') < html.index('id="workflowrun_form"')
    assert html.count('form="compare-with-form"') == 3


def test_runs_outside_your_engagements_are_not_found(
    client, outsider, two_runs, lead_client, outsider_engagement
):
    plain, judged = two_runs
    client.force_login(outsider)
    assert client.get(compare_url(plain, judged)).status_code == 404
    assert lead_client.get(f"{COMPARE}?run={plain.pk}").status_code == 404
    assert lead_client.get(f"{COMPARE}?run={plain.pk}&run=nonsense").status_code == 404


def test_runs_without_reserving_results_are_refused(lead_client, two_runs, create_run):
    plain, _ = two_runs
    pending = create_run(WorkflowType.CUSTOM, {}, name="Pending")
    response = lead_client.get(compare_url(plain, pending), follow=True)
    assert any("has no reserving results" in text for _, text in admin_messages(response))


@pytest.mark.parametrize("origins", [10, 100])
def test_the_page_costs_the_same_queries_at_10_and_100_origins(
    origins, engagement, lead, lead_client, create_run, queue_and_run, django_assert_max_num_queries
):
    triangle = upload_triangle(
        engagement, actor=lead, content=made_up_csv(origins), file_name=f"t{origins}.csv"
    )
    runs = [
        queue_and_run(
            create_run(
                WorkflowType.RESERVE_CALCULATION,
                reserving_params(triangle, average=average),
                name=average,
            )
        )
        for average in ("volume", "simple")
    ]
    with django_assert_max_num_queries(COMPARE_QUERIES):
        response = lead_client.get(compare_url(*runs))
    assert len(response.context["comparison"].origins) == origins


# The compare page, whatever the triangle's size (pinned at 10 and 100 origins).
COMPARE_QUERIES = 6
