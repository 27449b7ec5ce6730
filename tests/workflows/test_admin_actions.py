"""Workflow run admin: lifecycle buttons and actions, add/change/delete through the services."""

import pytest
from django.urls import reverse

from artefacts.choices import ArtefactType
from audit.choices import AuditAction
from engagements.services import engagement_activate, engagement_complete
from tests.factories import SuperUserFactory
from tests.factories.states import (
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    final_sign_off,
    run_in,
    runnable_run_in,
)
from workflows.models import WorkflowRun
from workflows.services import workflow_run_cancel, workflow_run_pause, workflow_run_start

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:workflows_workflowrun_changelist")
ADD = reverse("admin:workflows_workflowrun_add")
MOVES = ("queue", "start", "pause", "resume", "cancel")


@pytest.fixture
def admin_user(db):
    return SuperUserFactory(username="admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def run(engagement, actuary):
    return run_in(engagement, actor=actuary)


def change_url(run):
    return reverse("admin:workflows_workflowrun_change", args=(run.pk,))


def move_url(run, move):
    return reverse("admin:workflows_workflowrun_move", args=(run.pk, move))


@pytest.fixture
def runnable(engagement, actuary):
    return runnable_run_in(engagement, actor=actuary)


@pytest.mark.parametrize(
    ("steps", "shown"),
    [
        # A custom run is worked on outside the back office: never queued or started here.
        ([], {"cancel"}),
        ([workflow_run_start], {"pause", "cancel"}),
        ([workflow_run_start, workflow_run_pause], {"resume", "cancel"}),
        ([workflow_run_cancel], set()),
    ],
    ids=["pending", "running", "paused", "cancelled"],
)
def test_the_change_page_shows_only_the_moves_valid_now(admin_client, run, actuary, steps, shown):
    for step in steps:
        run = step(run=run, actor=actuary)
    html = admin_client.get(change_url(run)).content.decode()
    for move in MOVES:
        assert (move_url(run, move) in html) == (move in shown), move


def test_a_runnable_run_offers_queue_never_start(admin_client, runnable):
    html = admin_client.get(change_url(runnable)).content.decode()
    assert move_url(runnable, "queue") in html and move_url(runnable, "cancel") in html
    assert move_url(runnable, "start") not in html


@pytest.mark.parametrize("kind", ["custom", "runnable"])
def test_start_is_no_move_of_the_admin(admin_client, run, runnable, kind):
    target = run if kind == "custom" else runnable
    before = database_state()
    assert admin_client.post(move_url(target, "start")).status_code == 404
    assert database_state() == before


def test_start_is_no_admin_action(admin_client):
    actions = admin_client.get(CHANGELIST).context["action_form"].fields["action"].choices
    names = {name for name, _label in actions}
    assert "move_queue" in names and "move_start" not in names


def test_queue_button_records_who_queued_the_run(
    admin_client, admin_user, runnable, django_capture_on_commit_callbacks
):
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=False):
        response = admin_client.post(move_url(runnable, "queue"))
    assert response.status_code == 302
    runnable.refresh_from_db()
    assert runnable.status == "queued" and runnable.queued_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.WORKFLOW_UPDATE and event.user == admin_user


def test_a_refused_move_shows_the_message_and_changes_nothing(admin_client, run):
    before = database_state()
    response = admin_client.post(move_url(run, "resume"))
    [(level, text)] = admin_messages(response)
    assert level == "error"
    assert text.startswith(f"Cannot resume workflow run “{run}”: it is pending")
    assert database_state() == before


def test_the_queue_action_reports_each_refusal(admin_client, engagement, actuary):
    # Only a run the runner executes, with its inputs, can be queued.
    run = runnable_run_in(engagement, actor=actuary)
    running = run_in(engagement, actor=actuary, start=True, name="Already running")
    response = admin_client.post(
        CHANGELIST, {"action": "move_queue", "_selected_action": [run.pk, running.pk]}
    )
    run.refresh_from_db()
    running.refresh_from_db()
    assert (run.status, running.status) == ("queued", "running")
    messages = admin_messages(response)
    assert ("success", "Queue: done for 1 workflow run.") in messages
    refused = [text for level, text in messages if level == "error"]
    assert len(refused) == 1 and refused[0].startswith("Already running: Cannot queue")


def test_adding_a_run_goes_through_the_service(admin_client, admin_user, engagement, actuary):
    triangle = artefact_in(engagement, actor=actuary, artefact_type=ArtefactType.TRIANGLE)
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        "workflow_type": "data_validation",
        "name": "Paid triangle",
        "period": "2025-Q4",
        "triangle_artefact": triangle.pk,
        "cumulative": "true",
        "measure": "paid",
    }
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    run = WorkflowRun.objects.get(name="Paid triangle")
    assert run.status == "pending" and run.created_by == admin_user
    # Set by the service: the runner's step count, the parameters with their defaults.
    assert run.step_count == 3 and run.input_params["triangle_artefact"] == str(triangle.pk)
    assert run.history.latest().history_change_reason == "Created"


def test_adding_a_run_to_a_completed_engagement_is_refused(
    admin_client, engagement, actuary, reviewer
):
    triangle = artefact_in(engagement, actor=actuary, artefact_type=ArtefactType.TRIANGLE)
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    final_sign_off(engagement, requester=actuary, approver=reviewer)
    engagement_complete(engagement=engagement, actor=actuary)
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        "workflow_type": "data_validation",
        "name": "Too late",
        "triangle_artefact": triangle.pk,
        "cumulative": "true",
        "measure": "paid",
    }
    before = database_state()
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "is completed: it accepts no new workflow runs" in text
    assert database_state() == before


def test_a_pending_run_is_edited_through_the_service(admin_client, admin_user, runnable):
    run = runnable
    data = admin_form_data(admin_client.get(change_url(run))) | {"name": "Renamed"}
    response = admin_client.post(change_url(run), data)
    assert response.status_code == 302, admin_messages(response)
    run.refresh_from_db()
    assert run.name == "Renamed" and run.updated_by == admin_user
    assert run.history.latest().history_change_reason == "Edited: name"


def test_a_run_of_a_type_without_a_runner_is_read_only(admin_client, run):
    page = admin_client.get(change_url(run))
    assert "name" not in page.context["adminform"].form.fields
    assert "triangle_artefact" not in page.context["adminform"].form.fields


def test_the_form_offers_only_runnable_types_and_no_internal_fields(admin_client):
    form = admin_client.get(ADD).context["adminform"].form
    offered = {value for value, _label in form.fields["workflow_type"].choices if value}
    assert offered == {
        "data_validation",
        "triangle_analysis",
        "reserve_calculation",
        "ibnr_estimation",
    }
    for internal in ("agent_name", "step_count", "input_params", "metrics", "output_summary"):
        assert internal not in form.fields, internal


def test_a_started_run_is_read_only(admin_client, run, actuary):
    run = workflow_run_start(run=run, actor=actuary)
    page = admin_client.get(change_url(run))
    assert "name" not in page.context["adminform"].form.fields
    before = database_state()
    assert admin_client.post(change_url(run), admin_form_data(page)).status_code == 302
    assert database_state() == before


def test_open_runs_cannot_be_deleted_finished_ones_can(admin_client, run, actuary):
    delete = reverse("admin:workflows_workflowrun_delete", args=(run.pk,))
    before = database_state()
    response = admin_client.post(delete, {"post": "yes"})
    [(level, text)] = admin_messages(response)
    assert level == "error" and "it is pending; cancel it first" in text
    assert database_state() == before

    workflow_run_cancel(run=run, actor=actuary)
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert WorkflowRun.all_objects.get(pk=run.pk).is_deleted
    assert not WorkflowRun.objects.filter(pk=run.pk).exists()
