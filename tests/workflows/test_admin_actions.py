"""Workflow run admin: lifecycle buttons and actions, add/change/delete through the services."""

import pytest
from django.urls import reverse

from audit.choices import AuditAction
from engagements.services import engagement_activate, engagement_complete
from tests.factories import SuperUserFactory
from tests.factories.states import (
    admin_form_data,
    admin_messages,
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


@pytest.mark.parametrize(
    ("steps", "shown"),
    [
        ([], {"queue", "start", "cancel"}),
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


def test_start_button_records_who_started_the_run(admin_client, admin_user, run):
    mark = audit_mark()
    response = admin_client.post(move_url(run, "start"))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "running" and run.started_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.WORKFLOW_START and event.user == admin_user


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


def test_adding_a_run_goes_through_the_service(admin_client, admin_user, engagement):
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        # A runner type without its inputs is refused (tests/workflows/test_admin_workspace.py).
        "workflow_type": "custom",
        "name": "Paid triangle",
        "period": "2025-Q4",
        "step_count": "3",
        "input_params": "{}",
        "metrics": "{}",
    }
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    run = WorkflowRun.objects.get(name="Paid triangle")
    assert run.status == "pending" and run.created_by == admin_user
    assert run.history.latest().history_change_reason == "Created"


def test_adding_a_run_to_a_completed_engagement_is_refused(
    admin_client, engagement, actuary, reviewer
):
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    final_sign_off(engagement, requester=actuary, approver=reviewer)
    engagement_complete(engagement=engagement, actor=actuary)
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        "workflow_type": "custom",
        "name": "Too late",
        "step_count": "0",
        "input_params": "{}",
    }
    before = database_state()
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "is completed: it accepts no new workflow runs" in text
    assert database_state() == before


def test_a_pending_run_is_edited_through_the_service(admin_client, admin_user, run):
    data = admin_form_data(admin_client.get(change_url(run))) | {"name": "Renamed"}
    response = admin_client.post(change_url(run), data)
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.name == "Renamed" and run.updated_by == admin_user
    assert run.history.latest().history_change_reason == "Edited: name"


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
