"""The guided "New reserving analysis", "Re-run with changes" and a run's live status.

Through the admin as a staff actuary of the Actuaries group: a client file with its own
headers is uploaded, its columns mapped, the triangle previewed, the method and the
selections chosen, and the run queued and executed (the immediate task backend); then
re-run with an exclusion and an override. Who may not gets a 404 and changes nothing.
"""

from __future__ import annotations

import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from approvals.models import Approval
from artefacts.models import Artefact
from audit.choices import AuditAction
from audit.models import AuditLog
from tests.admin_fixtures import (
    actuaries_group,
    lead,
    lead_client,
    outsider,
    qualified_reviewer,
)
from tests.factories.states import admin_messages, database_state
from workflows.admin.pages import NEW_ANALYSIS
from workflows.admin.selections import words
from workflows.models import WorkflowRun
from workflows.selectors import NO_WORKER_ALIVE
from workflows.services import RERUN_UNCHANGED, workflow_run_create, workflow_run_queue

from .conftest import sample_csv, upload_triangle

__all__ = ("actuaries_group", "lead", "lead_client", "outsider", "qualified_reviewer")

pytestmark = pytest.mark.django_db

COLUMNS = {
    "layout": "long",
    "origin": "AccidentYear",
    "development": "DevMonths",
    "value": "PaidLoss",
    "cumulative": "true",
    "measure": "paid",
}


def client_file(origins: int = 10, *, header: str = "AccidentYear,DevMonths,PaidLoss") -> bytes:
    """Return a long triangle of `origins` years with the client's own headers."""
    lines = [header]
    for i in range(origins):
        value = 1000.0 + 37 * i
        for j in range(origins - i):
            lines.append(f"{1900 + i},{12 * (j + 1)},{value:.0f}")
            value *= 1.0 + 0.9 / (j + 1) ** 1.5 + 0.01 * ((i * 7 + j * 3) % 5)
    return ("\n".join(lines) + "\n").encode()


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def client_triangle(engagement, actuary):
    return upload_triangle(
        engagement, actor=actuary, content=client_file(), file_name="client.csv", name="Client"
    )


def method_data(**fields):
    return {
        **COLUMNS,
        "name": "Client: chain ladder",
        "method": "chain_ladder",
        "average": "volume",
        **fields,
    }


def queue_from_method(client, engagement, triangle, capture, **fields):
    """Post step 3 and let the immediate backend run the queued run; return the response."""
    with capture(execute=True):
        return client.post(
            url("workflows_analysis_method", engagement.pk, triangle.pk), method_data(**fields)
        )


class TestTheEngagementPage:
    def test_offers_the_guided_analysis(self, lead_client, engagement):
        html = lead_client.get(url("engagements_engagement_change", engagement.pk)).content
        start = url("workflows_analysis_start", engagement.pk)
        assert f'<a href="{start}" class="addlink">{NEW_ANALYSIS}</a>'.encode() in html


class TestStepOneTheTriangle:
    def test_an_upload_becomes_a_triangle_input_and_leads_to_the_columns(
        self, lead_client, engagement, lead
    ):
        upload = SimpleUploadedFile("client.csv", client_file(), content_type="text/csv")
        response = lead_client.post(
            url("workflows_analysis_start", engagement.pk), {"file": upload, "name": ""}
        )
        artefact = Artefact.objects.get(file_name="client.csv")
        assert response.status_code == 302
        assert response["Location"] == url("workflows_analysis_columns", engagement.pk, artefact.pk)
        assert artefact.artefact_type == "triangle" and artefact.workflow_run is None
        assert artefact.created_by == lead
        assert AuditLog.objects.filter(
            action=AuditAction.ARTEFACT_CREATE, resource_id=artefact.pk
        ).exists()

    def test_the_engagements_triangles_are_offered_never_run_outputs(
        self, lead_client, engagement, client_triangle
    ):
        response = lead_client.get(url("workflows_analysis_start", engagement.pk))
        assert list(response.context["triangles"]) == [client_triangle]

    def test_nothing_to_upload_is_refused(self, lead_client, engagement):
        before = database_state()
        response = lead_client.post(url("workflows_analysis_start", engagement.pk), {})
        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == [
            "Choose a triangle file to upload, or pick one below."
        ]
        assert database_state() == before


class TestStepTwoTheColumns:
    def test_the_clients_own_headers_are_recognised_and_previewed(
        self, lead_client, engagement, client_triangle
    ):
        response = lead_client.get(
            url("workflows_analysis_columns", engagement.pk, client_triangle.pk)
        )
        form = response.context["form"]
        assert (form.initial["origin"], form.initial["development"], form.initial["value"]) == (
            "AccidentYear",
            "DevMonths",
            "PaidLoss",
        )
        preview = response.context["preview"]
        assert preview.problems == () and len(preview.rows) == 10
        assert preview.rows[0][1][0] == "1,000" and preview.rows[-1][1][1] == ""
        assert 'id="triangle-grid"' in response.content.decode()

    def test_headers_of_its_own_are_mapped_by_hand(self, lead_client, engagement, actuary):
        content = client_file(5, header="Jahr,Monate,Zahlung")
        triangle = upload_triangle(engagement, actor=actuary, content=content, name="German")
        page = lead_client.get(url("workflows_analysis_columns", engagement.pk, triangle.pk))
        assert page.context["form"].initial == {"layout": "long"}
        assert page.context["preview"] is None
        assert "Choose the columns to see the triangle." in page.content.decode()
        mapping = {**COLUMNS, "origin": "Jahr", "development": "Monate", "value": "Zahlung"}
        preview = lead_client.get(
            url("workflows_analysis_preview", engagement.pk, triangle.pk), mapping
        ).context["preview"]
        assert preview.problems == () and len(preview.rows) == 5

    def test_an_unreadable_file_is_said_so_and_the_next_step_sends_back(
        self, lead_client, engagement, actuary
    ):
        triangle = upload_triangle(engagement, actor=actuary, content=b" \n", name="Empty")
        columns = url("workflows_analysis_columns", engagement.pk, triangle.pk)
        page = lead_client.get(columns)
        assert "is empty" in page.context["unreadable"]
        response = lead_client.get(
            url("workflows_analysis_method", engagement.pk, triangle.pk), COLUMNS
        )
        assert response.status_code == 302 and response["Location"].startswith(columns)

    def test_a_bad_mapping_names_every_problem_by_cell(
        self, lead_client, engagement, client_triangle
    ):
        query = {**COLUMNS, "value": "AccidentYear"}
        response = lead_client.get(
            url("workflows_analysis_preview", engagement.pk, client_triangle.pk),
            query,
            headers={"HX-Request": "true"},
        )
        assert response.context["preview"].problems == (
            "row 1: the value column is mapped to 'AccidentYear', already the origin column; "
            "map each role to its own column",
        )
        assert b"<html" not in response.content  # a fragment for htmx

    def test_values_that_are_no_numbers_are_named_by_cell(self, lead_client, engagement, actuary):
        content = client_file(4).replace(b"1000\n", b"n/a\n").replace(b"1037\n", b"?\n")
        triangle = upload_triangle(engagement, actor=actuary, content=content, name="Bad")
        response = lead_client.get(
            url("workflows_analysis_preview", engagement.pk, triangle.pk), COLUMNS
        )
        assert response.context["preview"].problems == (
            "row 2, column C ('PaidLoss'): 'n/a' is not a number",
            "row 6, column C ('PaidLoss'): '?' is not a number",
        )

    def test_negative_development_says_which_box_to_tick(self, lead_client, engagement, actuary):
        raa = upload_triangle(engagement, actor=actuary, content=sample_csv("raa"), name="RAA")
        query = {"layout": "long", "origin": "origin", "development": "development"}
        query |= {"value": "value", "cumulative": "true", "measure": "incurred"}
        response = lead_client.get(url("workflows_analysis_preview", engagement.pk, raa.pk), query)
        [problem] = response.context["preview"].problems
        assert problem.endswith("tick “Allow negative development”")
        assert "input_params" not in problem


class TestStepThreeAndRun:
    def test_the_selections_panel_shows_link_ratios_and_candidate_averages(
        self, lead_client, engagement, client_triangle
    ):
        response = lead_client.get(
            url("workflows_analysis_method", engagement.pk, client_triangle.pk), COLUMNS
        )
        panel = response.context["panel"]
        assert len(panel.rows) == 10 and len(panel.periods) == 9
        assert {name for name, _value, _chosen in panel.periods[0].candidates} == {
            "volume",
            "simple",
            "medial",
            "regression",
        }
        html = response.content.decode()
        assert 'value="1900|12"' in html and 'id="selected-factors"' in html

    def test_an_exclusion_changes_the_panel(self, lead_client, engagement, client_triangle):
        panel_url = url("workflows_analysis_panel", engagement.pk, client_triangle.pk)
        plain = lead_client.post(panel_url, method_data()).context["panel"]
        excluded = lead_client.post(panel_url, method_data(exclude=["1900|12"])).context["panel"]
        assert excluded.excluded_count == 1 and excluded.rows[0][1][0].excluded
        assert excluded.periods[0].factor != plain.periods[0].factor

    @pytest.mark.parametrize("exposure", ["", "not-an-id", "00000000-0000-0000-0000-000000000000"])
    def test_the_panel_redraws_a_bf_whose_exposure_is_not_chosen_yet(
        self, lead_client, engagement, client_triangle, exposure
    ):
        # Seen in the browser walk: while the actuary switches to BF, the panel redraws a
        # form whose exposure is empty or not (yet) valid; it must show, not fail.
        panel_url = url("workflows_analysis_panel", engagement.pk, client_triangle.pk)
        data = method_data(method="bornhuetter_ferguson", exposure_artefact=exposure)
        response = lead_client.post(panel_url, data | {"apriori_loss_ratio": "0.65"})
        assert response.status_code == 200
        assert len(response.context["panel"].rows) == 10

    def test_run_creates_queues_and_lands_on_the_runs_page(
        self, lead_client, engagement, client_triangle, lead, django_capture_on_commit_callbacks
    ):
        response = queue_from_method(
            lead_client, engagement, client_triangle, django_capture_on_commit_callbacks
        )
        run = WorkflowRun.objects.get(name="Client: chain ladder")
        assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
        assert run.created_by == lead and run.queued_by == lead
        assert run.status == "waiting_approval"
        assert run.input_params["columns"] == {
            "origin": "AccidentYear",
            "development": "DevMonths",
            "value": "PaidLoss",
        }
        page = lead_client.get(run.get_absolute_url()).content.decode()
        assert 'id="rerun-with-changes"' in page

    def test_a_bf_run_with_an_uploaded_exposure(
        self, lead_client, engagement, client_triangle, django_capture_on_commit_callbacks
    ):
        premium = "\n".join(
            ["AccidentYear,EarnedPremium", *(f"{1900 + i},{2000 + 50 * i}" for i in range(10))]
        )
        exposure = SimpleUploadedFile("premium.csv", premium.encode(), content_type="text/csv")
        response = queue_from_method(
            lead_client,
            engagement,
            client_triangle,
            django_capture_on_commit_callbacks,
            name="Client: BF",
            method="bornhuetter_ferguson",
            exposure_file=exposure,
            apriori_loss_ratio="0.7",
        )
        assert response.status_code == 302, response.context["form"].errors
        run = WorkflowRun.objects.get(name="Client: BF")
        stored = Artefact.objects.get(file_name="premium.csv")
        assert run.input_params["exposure_artefact"] == str(stored.pk)
        assert run.status == "waiting_approval" and run.output_summary["method"] == (
            "bornhuetter_ferguson"
        )

    def test_an_exposure_file_that_cannot_be_used_is_refused_before_it_is_stored(
        self, lead_client, engagement, client_triangle
    ):
        premium = "AccidentYear,EarnedPremium\n1900,2000\n1901,2100\n"  # 2 of 10 origins
        exposure = SimpleUploadedFile("short.csv", premium.encode(), content_type="text/csv")
        before = database_state()
        response = lead_client.post(
            url("workflows_analysis_method", engagement.pk, client_triangle.pk),
            method_data(
                method="bornhuetter_ferguson", exposure_file=exposure, apriori_loss_ratio="0.7"
            ),
        )
        assert response.status_code == 200
        [error] = response.context["form"].errors["exposure_file"]
        assert error == (
            "the exposure has no value for the triangle's origin(s) 1902, 1903, 1904, 1905, "
            "1906, 1907, 1908, 1909"
        )
        assert database_state() == before

    def test_bf_without_exposure_is_refused_next_to_the_field(
        self, lead_client, engagement, client_triangle
    ):
        before = database_state()
        response = lead_client.post(
            url("workflows_analysis_method", engagement.pk, client_triangle.pk),
            method_data(method="bornhuetter_ferguson", apriori_loss_ratio="0.7"),
        )
        assert response.status_code == 200
        assert response.context["form"].errors["exposure_artefact"] == [
            "Choose the exposure (e.g. earned premium by origin), or upload its file."
        ]
        assert database_state() == before

    def test_an_override_needs_its_reason(self, lead_client, engagement, client_triangle):
        response = lead_client.post(
            url("workflows_analysis_method", engagement.pk, client_triangle.pk),
            method_data(factor_0="2.5"),
        )
        assert response.context["form"].errors["reason_0"] == [
            "Give the reason for the selected factor."
        ]

    def test_a_selected_tail_needs_its_factor(self, lead_client, engagement, client_triangle):
        response = lead_client.post(
            url("workflows_analysis_method", engagement.pk, client_triangle.pk),
            method_data(tail="constant"),
        )
        assert response.context["form"].errors["tail_factor"] == [
            "Give the tail factor you select (at least 1)."
        ]

    def test_a_fitted_tail_shows_in_the_panel(self, lead_client, engagement, client_triangle):
        panel_url = url("workflows_analysis_panel", engagement.pk, client_triangle.pk)
        panel = lead_client.post(panel_url, method_data(tail="bondy")).context["panel"]
        assert panel.tail.startswith("1.") and "Bondy" in panel.tail
        assert panel.problem == ""


class TestRerunWithChanges:
    @pytest.fixture
    def first(self, lead_client, engagement, client_triangle, django_capture_on_commit_callbacks):
        queue_from_method(
            lead_client, engagement, client_triangle, django_capture_on_commit_callbacks
        )
        return WorkflowRun.objects.get(name="Client: chain ladder")

    def test_opens_pre_filled_and_queues_a_linked_run(
        self, lead_client, first, django_capture_on_commit_callbacks
    ):
        rerun = url("workflows_workflowrun_rerun", first.pk)
        form = lead_client.get(rerun).context["form"]
        assert form.initial["method"] == "chain_ladder" and form.initial["average"] == "volume"
        data = {
            "name": "Client: judgment",
            "method": "chain_ladder",
            "average": "volume",
            "exclude": ["1901|12"],
            "factor_1": "1.5",
            "reason_1": "Claims handling changed in 1905",
            "average_2": "simple",
            "tail": "constant",
            "tail_factor": "1.02",
            "tail_reason": "Benchmark",
        }
        with django_capture_on_commit_callbacks(execute=True):
            response = lead_client.post(rerun, data)
        assert response.status_code == 302, response.context["form"].errors
        new = WorkflowRun.objects.get(name="Client: judgment")
        assert new.rerun_of == first and new.status == "waiting_approval"
        assert new.input_params["exclude"] == [["1901", 12]]
        assert new.input_params["selected_factors"] == {
            "24": {"factor": 1.5, "reason": "Claims handling changed in 1905"}
        }
        assert new.input_params["averages"] == {"36": "simple"}
        assert new.input_params["tail"] == {
            "method": "constant",
            "factor": 1.02,
            "reason": "Benchmark",
        }
        assert new.description.startswith(f"Re-run of “{first}” with changed averages, exclude")
        first.refresh_from_db()
        assert first.input_params.get("exclude") is None  # the first run never changes
        assert Approval.objects.filter(workflow_run=new).exists()

    def test_a_rerun_that_changes_nothing_is_refused(self, lead_client, first):
        before = database_state()
        data = {"name": "Same", "method": "chain_ladder", "average": "volume"}
        response = lead_client.post(url("workflows_workflowrun_rerun", first.pk), data)
        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == [RERUN_UNCHANGED.format(run=first)]
        assert database_state() == before

    def test_a_refusal_names_the_field_not_the_parameter(self, lead_client, first):
        # The run compared with a prior run that is gone: the service refuses the re-run
        # naming the parameter (prior_run, as the API's clients know it); the form says
        # "Prior run", as people read it.
        WorkflowRun.objects.filter(pk=first.pk).update(
            input_params={**first.input_params, "prior_run": str(uuid.uuid4())}
        )
        before = database_state()
        data = {"name": "Changed", "method": "chain_ladder", "average": "simple"}
        response = lead_client.post(url("workflows_workflowrun_rerun", first.pk), data)
        assert response.status_code == 200
        [error] = response.context["form"].non_field_errors()
        assert error.startswith("Prior run: client "), error
        assert "prior_run" not in error and "input_params" not in error
        assert database_state() == before


def test_a_message_about_a_parameter_starts_with_the_fields_label():
    assert words("prior_run must be the id (a UUID) of a completed reserving run") == (
        "Prior run must be the id (a UUID) of a completed reserving run"
    )
    assert words("n_periods must be a whole number").startswith("Latest origins used must")
    assert words("tail_factor must be at least 1", {"tail_factor": "Tail"}) == (
        "Tail must be at least 1"
    )
    assert words("give tail or tail_factor, not both") == "give tail or the tail factor, not both"


class TestTheRunsLiveStatus:
    def test_a_queued_run_polls_and_a_finished_one_reloads(
        self, lead_client, engagement, client_triangle, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=False):
            lead_client.post(
                url("workflows_analysis_method", engagement.pk, client_triangle.pk), method_data()
            )
        run = WorkflowRun.objects.get(name="Client: chain ladder")
        page = lead_client.get(run.get_absolute_url()).content.decode()
        status = url("workflows_workflowrun_status", run.pk)
        assert f'hx-get="{status}" hx-trigger="every 2s"' in page
        assert "Queued: waiting for a worker to start it" in page
        assert "django_htmx/htmx-2.min.js" in page
        fragment = lead_client.get(status, headers={"HX-Request": "true"})
        assert "HX-Refresh" not in fragment and b"Queued" in fragment.content

        run.status = "completed"  # as if a worker had finished it (only the fragment reads it)
        run.save(update_fields=["status"])
        fragment = lead_client.get(status, headers={"HX-Request": "true"})
        assert fragment["HX-Refresh"] == "true" and b"hx-get" not in fragment.content

    def test_a_queued_run_with_no_worker_alive_says_how_to_start_one(
        self, lead_client, engagement, client_triangle, settings
    ):
        run = workflow_run_create(
            engagement=engagement,
            workflow_type="reserve_calculation",
            name="Waiting",
            input_params={
                "triangle_artefact": str(client_triangle.pk),
                "cumulative": True,
                "measure": "paid",
            },
            actor=engagement.lead_actuary,
        )
        workflow_run_queue(run=run, actor=engagement.lead_actuary, enqueue=False)
        settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
        fragment = lead_client.get(url("workflows_workflowrun_status", run.pk))
        assert NO_WORKER_ALIVE in fragment.content.decode()
        settings.TASKS = {
            "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
        }
        fragment = lead_client.get(url("workflows_workflowrun_status", run.pk))
        assert NO_WORKER_ALIVE not in fragment.content.decode()


class TestWhoMay:
    @pytest.mark.parametrize("name", ["start", "columns", "preview", "method", "panel"], ids=str)
    def test_another_team_gets_a_404(self, client, outsider, engagement, client_triangle, name):
        client.force_login(outsider)
        args = (engagement.pk,) if name == "start" else (engagement.pk, client_triangle.pk)
        before = database_state()
        method = client.post if name in ("start", "panel", "method") else client.get
        assert method(url(f"workflows_analysis_{name}", *args), method_data()).status_code == 404
        assert database_state() == before

    def test_a_team_member_without_the_permission_gets_a_404(self, client, actuary, engagement):
        client.force_login(actuary)  # on the team, but not in the Actuaries group
        response = client.get(url("workflows_analysis_start", engagement.pk))
        assert response.status_code in (302, 404)  # the admin sends non-staff to its login

    def test_another_teams_run_cannot_be_rerun_or_followed(
        self,
        client,
        outsider,
        engagement,
        client_triangle,
        lead_client,
        django_capture_on_commit_callbacks,
    ):
        queue_from_method(
            lead_client, engagement, client_triangle, django_capture_on_commit_callbacks
        )
        run = WorkflowRun.objects.get(name="Client: chain ladder")
        client.force_login(outsider)
        for name in ("workflows_workflowrun_rerun", "workflows_workflowrun_status"):
            assert client.get(url(name, run.pk)).status_code == 404
        assert admin_messages is not None


# --- query counts: the same at 10 and at 100 origins ------------------------------------------


@pytest.fixture
def sized(engagement, actuary, request):
    """A triangle of `request.param` origins."""
    origins = request.param
    return upload_triangle(
        engagement, actor=actuary, content=client_file(origins), file_name=f"c{origins}.csv"
    )


PAGES = {
    "start": lambda e, t, r: ("get", url("workflows_analysis_start", e.pk), {}),
    "columns": lambda e, t, r: ("get", url("workflows_analysis_columns", e.pk, t.pk), COLUMNS),
    "preview": lambda e, t, r: ("get", url("workflows_analysis_preview", e.pk, t.pk), COLUMNS),
    "method": lambda e, t, r: ("get", url("workflows_analysis_method", e.pk, t.pk), COLUMNS),
    "panel": lambda e, t, r: ("post", url("workflows_analysis_panel", e.pk, t.pk), method_data()),
    "rerun": lambda e, t, r: ("get", url("workflows_workflowrun_rerun", r.pk), {}),
    "rerun_panel": lambda e, t, r: (
        "post",
        url("workflows_workflowrun_rerun_panel", r.pk),
        method_data(exclude=["1900|12"]),
    ),
    "status": lambda e, t, r: ("get", url("workflows_workflowrun_status", r.pk), {}),
}
QUERIES = {
    "start": 8,
    "columns": 8,
    "preview": 7,
    "method": 9,
    "panel": 7,
    "rerun": 10,
    "rerun_panel": 8,
    "status": 5,
}


@pytest.mark.parametrize("sized", [10, 100], indirect=True, ids=["10-origins", "100-origins"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_query_counts_do_not_grow_with_the_triangle(
    lead_client,
    engagement,
    sized,
    page,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
):
    triangle, run = sized, None
    if page in ("rerun", "rerun_panel", "status"):
        queue_from_method(lead_client, engagement, triangle, django_capture_on_commit_callbacks)
        run = WorkflowRun.objects.get(name="Client: chain ladder")
    verb, address, data = PAGES[page](engagement, triangle, run)
    lead_client.get(address if verb == "get" else url("workflows_analysis_start", engagement.pk))
    with django_assert_num_queries(QUERIES[page]):
        response = getattr(lead_client, verb)(address, data)
    assert response.status_code == 200
