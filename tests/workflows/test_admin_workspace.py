"""The workflow run page as an actuary reads it, and the reserving input form.

Real reserve calculations (chainladder on the bundled GenIns and RAA triangles), run by
the immediate task backend; the pages are fetched by a staff actuary of the Actuaries group.
"""

import pytest
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.models import Approval
from approvals.services import approval_approve
from tests.admin_fixtures import (
    actuaries_group,
    lead,
    lead_client,
    outsider,
    outsider_engagement,
    qualified_reviewer,
    reviewer_client,
)
from tests.factories.states import NO_CONFLICT, admin_form_data, admin_messages, database_state
from workflows.choices import WorkflowType
from workflows.implementations.base import Step, WorkflowImplementation
from workflows.models import WorkflowRun

from .conftest import reserving_params, sample_csv, upload_triangle

__all__ = (
    "actuaries_group",
    "lead",
    "lead_client",
    "outsider",
    "outsider_engagement",
    "qualified_reviewer",
    "reviewer_client",
)

pytestmark = pytest.mark.django_db

ADD = reverse("admin:workflows_workflowrun_add")
TEST_TYPE = WorkflowType.COHORT_GROUPING


def change_url(run):
    return reverse("admin:workflows_workflowrun_change", args=(run.pk,))


def move_url(run, move):
    return reverse("admin:workflows_workflowrun_move", args=(run.pk, move))


@pytest.fixture
def completed(create_run, queue_and_run, genins, qualified_reviewer):
    """A GenIns reserve calculation approved by the reviewer: completed."""
    run = create_run(
        WorkflowType.RESERVE_CALCULATION, reserving_params(genins), name="Chain ladder GenIns"
    )
    run = queue_and_run(run)
    approval = Approval.objects.get(workflow_run=run)
    approval_approve(
        approval=approval,
        actor=qualified_reviewer,
        notes="Agrees with Mack 1993",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    run.refresh_from_db()
    assert run.status == "completed"
    return run


class TestCompletedReserveRun:
    def test_progress_people_and_duration(self, lead_client, completed, lead):
        response = lead_client.get(change_url(completed))
        details = response.context["run_details"]
        assert [step.state for step in details.steps] == ["done"] * 4
        assert details.steps[1].label == "Fit chain ladder with Mack standard errors"
        assert details.duration.endswith(" s")
        html = response.content.decode()
        assert 'aria-valuenow="100"' in html and "100% · step 4 of 4" in html
        assert "Queued by</dt><dd>actuary</dd>" in html
        assert f"by {lead}" in html

    def test_inputs_are_a_table_with_the_triangle_linked(self, lead_client, completed, genins):
        details = lead_client.get(change_url(completed)).context["run_details"]
        rows = dict(details.input_rows)
        # Named as people read them (issue 17), not by the parameters' names.
        assert rows["Cumulative"] == "yes" and rows["Measure"] == "paid"
        assert (
            reverse("admin:artefacts_artefact_change", args=(genins.pk,))
            in rows["Triangle artefact"]
        )

    def test_results_by_origin_with_totals_and_factors(self, lead_client, completed):
        response = lead_client.get(change_url(completed))
        table = response.context["run_details"].reserve_table
        assert [row["origin"] for row in table.rows] == [str(year) for year in range(2001, 2011)]
        assert table.rows[0]["ibnr"] == "0" and table.rows[-1]["development_age"] == "12"
        # Mack (1993): total reserve 18,680,856, standard error 2,447,095 (13.1 %).
        assert (table.total["ibnr"], table.total["mack_se"], table.total["cv"]) == (
            "18,680,856",
            "2,447,095",
            "13.1%",
        )
        assert table.artefact.file_name == "chain_ladder_reserves.csv"
        factors = response.context["run_details"].factors
        assert factors[0] == {"period": "12-24", "ldf": "3.4906", "cdf": "14.4466"}
        html = response.content.decode()
        for marker in ('id="reserve-table"', 'class="workspace-total reserve-total"', "ldf-row"):
            assert marker in html

    def test_charts_are_shown_through_the_verified_download(self, lead_client, completed):
        response = lead_client.get(change_url(completed))
        [chart] = response.context["run_details"].charts
        url = reverse("admin:artefacts_artefact_download", args=(chart.pk,)) + "?inline=1"
        assert f'src="{url}"' in response.content.decode()
        image = lead_client.get(url)
        assert image.status_code == 200 and image["Content-Type"] == "image/png"
        assert b"".join(image.streaming_content).startswith(b"\x89PNG")

    def test_result_artefacts_and_the_approval_are_listed(self, lead_client, completed):
        details = lead_client.get(change_url(completed)).context["run_details"]
        assert {artefact.file_name for artefact in details.results} == {
            "chain_ladder_reserves.csv",
            "chain_ladder_reserves.xlsx",
        }
        [approval] = details.approvals
        assert approval.approval_type == ApprovalType.WORKFLOW_APPROVAL
        assert approval.decision_notes == "Agrees with Mack 1993"

    def test_a_finished_run_offers_no_moves(self, lead_client, completed):
        html = lead_client.get(change_url(completed)).content.decode()
        for move in ("queue", "start", "pause", "resume", "cancel"):
            assert move_url(completed, move) not in html


class Exploding(WorkflowImplementation):
    """One good step, then one that divides by zero."""

    label = "exploding workflow"
    steps = (Step("prepare", "Prepare the data"), Step("divide", "Divide by the exposure"))

    def prepare(self):
        pass

    def divide(self):
        return 1 / 0


def test_a_failed_run_shows_its_error_step_and_traceback(
    lead_client, create_run, queue_and_run, register
):
    register(TEST_TYPE, Exploding)
    run = queue_and_run(create_run(TEST_TYPE, {}, name="Exploding run"))
    assert run.status == "failed"

    response = lead_client.get(change_url(run))

    details = response.context["run_details"]
    assert [step.state for step in details.steps] == ["done", "failed"]
    html = response.content.decode()
    assert "Step 2 of 2 (Divide by the exposure) failed: ZeroDivisionError" in html
    assert "<code>ZeroDivisionError</code>" in html
    assert '<pre class="workspace-traceback">Traceback (most recent call last):' in html
    assert "1 / 0" in html


class TestReservingForm:
    def _post(self, client, engagement, **fields):
        data = admin_form_data(client.get(f"{ADD}?engagement={engagement.pk}")) | {
            "engagement": engagement.pk,
            "workflow_type": WorkflowType.RESERVE_CALCULATION,
            "name": "Chain ladder from the form",
        }
        return client.post(ADD, data | fields)

    def test_the_fields_make_the_input_params(self, lead_client, engagement, genins, lead):
        response = self._post(
            lead_client,
            engagement,
            triangle_artefact=genins.pk,
            cumulative="true",
            measure="paid",
            layout="wide",
            average="simple",
            tail_factor="1.05",
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        run = WorkflowRun.objects.get(name="Chain ladder from the form")
        assert run.input_params == {
            "triangle_artefact": str(genins.pk),
            "cumulative": True,
            "measure": "paid",
            "layout": "wide",
            "allow_negative_development": False,
            "average": "simple",
            "tail_factor": 1.05,
        }
        assert run.created_by == lead and run.step_count == 4

    def test_a_run_is_queued_from_its_page_and_waits_for_approval(
        self, lead_client, engagement, raa, lead, django_capture_on_commit_callbacks
    ):
        response = self._post(
            lead_client,
            engagement,
            triangle_artefact=raa.pk,
            cumulative="true",
            measure="incurred",
            allow_negative_development="on",
        )
        assert response.status_code == 302
        run = WorkflowRun.objects.get(name="Chain ladder from the form")
        page = lead_client.get(change_url(run)).content.decode()
        assert move_url(run, "queue") in page and move_url(run, "cancel") in page

        with django_capture_on_commit_callbacks(execute=True):
            lead_client.post(move_url(run, "queue"))

        run.refresh_from_db()
        assert run.status == "waiting_approval" and run.current_step == 4
        approval = Approval.objects.get(workflow_run=run)
        assert approval.requested_by == lead and approval.status == "pending"
        details = lead_client.get(change_url(run)).context["run_details"]
        assert details.reserve_table.total["ibnr"] == "52,135"  # Mack (1994) on RAA

    @pytest.mark.parametrize(
        ("fields", "field", "message"),
        [
            (
                {"cumulative": "true", "measure": "incurred"},
                "triangle_artefact",
                "negative development",
            ),
            ({"measure": "incurred"}, "triangle_artefact", "cumulative is required"),
            (
                {"cumulative": "true", "measure": "paid", "workflow_type": "custom"},
                "workflow_type",
                "Select a valid choice. custom is not one of the available choices.",
            ),
        ],
        ids=["raa-negative-development", "no-cumulative", "type-without-a-runner"],
    )
    def test_bad_inputs_are_shown_next_to_the_field(
        self, lead_client, engagement, raa, fields, field, message
    ):
        before = database_state()
        response = self._post(lead_client, engagement, triangle_artefact=raa.pk, **fields)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert message in " ".join(errors[field]), errors
        assert database_state() == before

    def test_the_negative_development_refusal_names_the_form_field(
        self, lead_client, engagement, raa
    ):
        response = self._post(
            lead_client, engagement, triangle_artefact=raa.pk, cumulative="true", measure="paid"
        )
        [error] = response.context["adminform"].form.errors["triangle_artefact"]
        assert "tick “Allow negative development”" in error
        assert "input_params" not in error and "validate_triangle" not in error

    def test_a_triangle_is_required(self, lead_client, engagement):
        response = self._post(lead_client, engagement, cumulative="true", measure="paid")
        [error] = response.context["adminform"].form.errors["triangle_artefact"]
        assert error == "Choose the triangle a reserve calculation run reads."

    def test_only_uploaded_triangles_in_use_are_offered(
        self, lead_client, engagement, genins, raa, completed, actuary
    ):
        csv_file = upload_triangle(engagement, actor=actuary, content=sample_csv("raa"))
        csv_file.artefact_type = "csv"
        csv_file.save(update_fields=["artefact_type"])
        form = lead_client.get(f"{ADD}?engagement={engagement.pk}").context["adminform"].form
        offered = set(form.fields["triangle_artefact"].queryset)
        assert offered == {genins, raa}
        outputs = set(completed.artefacts.all())
        assert outputs and not outputs & offered

    def test_the_triangles_offered_are_this_engagements(
        self, lead_client, engagement, genins, outsider_engagement, outsider
    ):
        theirs = upload_triangle(
            outsider_engagement, actor=outsider, content=sample_csv("raa"), name="Their RAA"
        )
        form = lead_client.get(f"{ADD}?engagement={engagement.pk}").context["adminform"].form
        offered = list(form.fields["triangle_artefact"].queryset)
        assert offered == [genins] and theirs not in offered

    def test_a_pending_runs_inputs_are_edited_with_the_fields(
        self, lead_client, create_run, genins
    ):
        run = create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(genins))
        page = lead_client.get(change_url(run))
        form = page.context["adminform"].form
        assert form.initial["triangle_artefact"] == str(genins.pk)
        assert form.initial["cumulative"] == "true"
        response = lead_client.post(change_url(run), admin_form_data(page) | {"tail_factor": "1.1"})
        assert response.status_code == 302, admin_messages(response)
        run.refresh_from_db()
        assert run.input_params["tail_factor"] == 1.1
        assert run.history.latest().history_change_reason == "Edited: input_params"


def test_the_run_list_shows_method_ultimate_and_ibnr(
    lead_client, engagement, lead, django_assert_max_num_queries
):
    from tests.factories.states import run_in
    from workflows.services import workflow_run_complete

    def reported(number):
        run = run_in(engagement, actor=lead, start=True, name=f"Reserves {number}")
        summary = {
            "method": "bornhuetter_ferguson",
            "totals": {"latest": 1000.0, "ultimate": 1_234_567.4 + number, "ibnr": 98_765.0},
        }
        return workflow_run_complete(run=run, actor=lead, output_summary=summary)

    url = reverse("admin:workflows_workflowrun_changelist")
    reported(0)
    lead_client.get(url)
    with django_assert_max_num_queries(12) as few:
        lead_client.get(url)
    for number in range(1, 30):
        reported(number)
    run_in(engagement, actor=lead, name="Not run yet")
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = lead_client.get(url)
    html = response.content.decode()
    for heading in ("Method", "Ultimate", "IBNR"):
        assert f">{heading}</a>" in html or f">{heading}</span>" in html
    assert '<td class="field-result_method">Bornhuetter-Ferguson</td>' in html
    assert "1,234,567" in html and "98,765" in html
    assert html.count('<td class="field-result_ibnr">—</td>') == 1
