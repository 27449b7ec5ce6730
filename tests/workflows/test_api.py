"""REST API of workflow runs: CRUD, every move, work reported from elsewhere, scoping."""

import pytest

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request
from audit.choices import AuditAction
from engagements.services import engagement_activate, engagement_complete
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    count_queries,
    ids,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    results,
    reviewer_client,
    reviewer_user,
    teammate,
    teammate_client,
    worker,
)
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    UserFactory,
    WorkflowRunFactory,
)
from tests.factories.states import (
    NO_CONFLICT,
    audit_events_since,
    audit_mark,
    final_sign_off,
    run_in,
    runnable_run_in,
)
from workflows.models import WorkflowRun
from workflows.services import (
    workflow_run_cancel,
    workflow_run_complete,
    workflow_run_fail,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_start,
)

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "reviewer_client",
    "reviewer_user",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

RUNS = f"{API}/workflow-runs/"
STATES = (
    "pending",
    "queued",
    "running",
    "paused",
    "waiting_approval",
    "completed",
    "failed",
    "cancelled",
)
OPEN = ("pending", "queued", "running", "paused", "waiting_approval")
# The lifecycle moves the API offers on every run, written out from the spec.
ALLOWED = {
    "queue": {"pending": "queued"},
    "start": {"pending": "running", "queued": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "cancel": dict.fromkeys(OPEN, "cancelled"),
}
AUDITED = {
    "queue": AuditAction.WORKFLOW_UPDATE,
    "start": AuditAction.WORKFLOW_START,
    "pause": AuditAction.WORKFLOW_UPDATE,
    "resume": AuditAction.WORKFLOW_UPDATE,
    "cancel": AuditAction.WORKFLOW_CANCEL,
}


def detail(run, suffix=""):
    return f"{RUNS}{run.pk}/{suffix}"


def run_in_state(state, engagement, *, lead, reviewer, runnable=False):
    """Return a run of the engagement brought to `state` through the services.

    `runnable`: a run of a type the runner executes (a data validation), started and
    failed as the runner does it; otherwise a custom run, moved by hand.
    """
    run = runnable_run_in(engagement, actor=lead) if runnable else run_in(engagement, actor=lead)
    if state == "pending":
        return run
    if state == "queued":
        return workflow_run_queue(run=run, actor=lead, enqueue=False)
    if state == "cancelled":
        return workflow_run_cancel(run=run, actor=lead)
    run = workflow_run_start(run=run, actor=lead, by_runner=runnable)
    if state == "paused":
        run = workflow_run_pause(run=run, actor=lead)
    elif state == "failed":
        run = workflow_run_fail(
            run=run, actor=lead, error_message="Triangle unreadable", by_runner=runnable
        )
    elif state in ("waiting_approval", "completed"):
        approval = approval_request(
            approval_type=ApprovalType.WORKFLOW_APPROVAL, workflow_run=run, actor=lead
        )
        if state == "completed":
            approval_approve(
                approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
            )
    run.refresh_from_db()
    assert run.status == state
    return run


# --- reading and scoping ------------------------------------------------------------------


def test_list_and_detail_are_scoped_to_your_engagements(
    engagement, lead, lead_client, outsider_client
):
    mine = run_in(engagement, actor=lead)
    hidden = WorkflowRunFactory(engagement=EngagementFactory())
    assert ids(lead_client.get(RUNS)) == {str(mine.pk)}
    assert ids(outsider_client.get(RUNS)) == set()
    assert_error(outsider_client.get(detail(mine)), 404, "not_found")
    assert_error(lead_client.get(detail(hidden)), 404, "not_found")


def test_detail_shows_progress_and_allowed_moves(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, start=True)
    body = lead_client.get(detail(run)).json()
    assert body["status"] == "running"
    assert body["started_by"] == lead.pk
    assert body["progress_percent"] == 0
    assert body["duration_seconds"] is None
    assert body["available_moves"] == ["pause", "await_approval", "complete", "fail", "cancel"]


def test_anonymous_is_refused(engagement, lead, api_client):
    run = run_in(engagement, actor=lead)
    assert_error(api_client.get(detail(run)), 401, "not_authenticated")
    assert_error(api_client.post(detail(run, "start/")), 401, "not_authenticated")


# --- create, edit, delete -----------------------------------------------------------------


def test_create_a_pending_run_and_record_it(engagement, lead, lead_client):
    mark = audit_mark()
    response = lead_client.post(
        RUNS,
        {
            "engagement": str(engagement.pk),
            "workflow_type": "ifrs17_measurement",
            "name": "CSM roll-forward",
            "period": "2025-Q4",
            "input_params": {"cohort": 2023},
            "agent_name": "ifrs17-agent",
        },
        HTTP_X_TRACE_ID="trace-123",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["created_by"], body["trace_id"]) == (
        "pending",
        lead.pk,
        "trace-123",
    )
    run = WorkflowRun.objects.get(pk=body["id"])
    assert run.history.latest().history_user == lead
    (event,) = audit_events_since(mark)
    assert (event.action, event.user, event.trace_id) == (
        AuditAction.WORKFLOW_CREATE,
        lead,
        "trace-123",
    )


def test_create_checks_the_inputs_of_runnable_workflows(engagement, lead_client):
    response = lead_client.post(
        RUNS,
        {
            "engagement": str(engagement.pk),
            "workflow_type": "reserve_calculation",
            "name": "Chain ladder",
            "input_params": {"triangle_artefact": "00000000-0000-0000-0000-000000000000"},
        },
    )
    body = assert_error(response, 400, "invalid", match="Invalid input_params")
    assert body["errors"] == {"input_params": [body["detail"]]}


@pytest.mark.parametrize("input_params", [None, {}, {"cumulative": True, "measure": "paid"}])
def test_runs_of_runnable_types_are_never_placeholders(engagement, lead_client, input_params):
    before = WorkflowRun.objects.count()
    body = {"engagement": str(engagement.pk), "workflow_type": "reserve_calculation", "name": "CL"}
    if input_params is not None:
        body["input_params"] = input_params
    response = lead_client.post(RUNS, body, format="json")
    error = assert_error(response, 400, "invalid", match="triangle_artefact is required")
    assert set(error["errors"]) == {"input_params"}
    assert WorkflowRun.objects.count() == before


def test_a_run_of_another_type_needs_no_input_params(engagement, lead_client):
    response = lead_client.post(
        RUNS, {"engagement": str(engagement.pk), "workflow_type": "csm_calculation", "name": "CSM"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["input_params"] == {}


def test_create_refuses_hidden_engagements_and_bad_types(outsider_client):
    hidden = EngagementFactory()
    response = outsider_client.post(
        RUNS,
        {"engagement": str(hidden.pk), "workflow_type": "magic", "name": "x", "step_count": -1},
    )
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"engagement", "workflow_type", "step_count"}
    assert "does not exist" in body["errors"]["engagement"][0]


@pytest.fixture
def observer_client(engagement):
    """An observer on the team who holds only view permissions."""
    observer = UserFactory(username="observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role="observer")
    return client_for(reader(observer))


@pytest.fixture
def observer_worker_client(engagement):
    """An observer on the team who holds every worker permission (the role still refuses)."""
    observer = UserFactory(username="busy-observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role="observer")
    return client_for(worker(observer))


def test_create_needs_the_add_permission(engagement, observer_client):
    response = observer_client.post(
        RUNS, {"engagement": str(engagement.pk), "workflow_type": "custom", "name": "x"}
    )
    assert_error(response, 403, "permission_denied")


def test_create_needs_a_working_role(engagement, observer_worker_client):
    response = observer_worker_client.post(
        RUNS, {"engagement": str(engagement.pk), "workflow_type": "custom", "name": "x"}
    )
    assert_error(response, 403, "not_allowed", match="their role on its team is observer")


@pytest.mark.parametrize(
    "field",
    [
        "status",
        "started_at",
        "started_by",
        "queued_by",
        "current_step",
        "output_summary",
        "error_message",
        "metrics",
        "trace_id",
        "created_by",
    ],
)
def test_read_only_fields_are_refused(engagement, lead, lead_client, field):
    run = run_in(engagement, actor=lead)
    body = assert_error(lead_client.patch(detail(run), {field: None}), 400, "invalid")
    assert set(body["errors"]) == {field}


def test_edit_a_pending_run(engagement, lead, teammate_client, teammate):
    run = run_in(engagement, actor=lead)
    mark = audit_mark()
    response = teammate_client.patch(detail(run), {"name": "Renamed", "step_count": 7})
    assert response.status_code == 200, response.content
    run.refresh_from_db()
    assert (run.name, run.step_count, run.updated_by) == ("Renamed", 7, teammate)
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.WORKFLOW_UPDATE, teammate)


def test_engagement_of_a_run_never_changes(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead)
    body = assert_error(
        lead_client.patch(detail(run), {"engagement": str(engagement.pk)}), 400, "invalid"
    )
    assert body["errors"]["engagement"] == [
        "This field is set when the object is created and cannot be changed."
    ]


def test_a_started_run_is_not_editable(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, start=True)
    assert_error(lead_client.patch(detail(run), {"name": "x"}), 409, "conflict", match="running")


def test_delete_only_finished_runs(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead)
    assert_error(lead_client.delete(detail(run)), 409, "conflict", match="cancel it first")
    workflow_run_cancel(run=run, actor=lead)
    assert lead_client.delete(detail(run)).status_code == 204
    assert WorkflowRun.all_objects.get(pk=run.pk).deleted_by == lead


# --- lifecycle ------------------------------------------------------------------------------

CASES = [(state, move) for move in ALLOWED for state in STATES]


@pytest.mark.parametrize(
    ("state", "move"), CASES, ids=[f"{move}-from-{state}" for state, move in CASES]
)
def test_every_move_from_every_state(
    engagement, lead, reviewer_user, teammate, teammate_client, state, move
):
    # Only the runner's types can be queued; the runner alone starts those.
    runnable = move == "queue" or state == "queued"
    run = run_in_state(state, engagement, lead=lead, reviewer=reviewer_user, runnable=runnable)
    mark = audit_mark()
    response = teammate_client.post(detail(run, f"{move}/"))
    run.refresh_from_db()
    target = ALLOWED[move].get(state)
    if move == "start" and runnable:
        assert_error(response, 409, "conflict", match="only its runner starts them")
        assert run.status == state
        assert audit_events_since(mark) == []
    elif target:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == target == run.status
        events = [e for e in audit_events_since(mark) if e.resource_type == "workflowrun"]
        assert [(event.action, event.user) for event in events] == [(AUDITED[move], teammate)]
    else:
        body = assert_error(response, 409, "invalid_transition")
        assert body["status"] == state == run.status
        assert audit_events_since(mark) == []


def test_queue_hands_the_run_to_the_runner(
    engagement, lead, lead_client, django_capture_on_commit_callbacks
):
    run = runnable_run_in(engagement, actor=lead)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = lead_client.post(detail(run, "queue/"))
    assert response.json()["queued_by"] == lead.pk
    assert len(callbacks) == 1  # the task is enqueued once the queueing commits


def test_queue_refuses_types_the_runner_does_not_run(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, workflow_type="custom")
    assert_error(lead_client.post(detail(run, "queue/")), 409, "conflict", match="does not run")


def test_moves_need_the_change_permission_and_a_working_role(
    engagement, lead, observer_client, observer_worker_client
):
    run = run_in(engagement, actor=lead, workflow_type="custom")
    assert_error(observer_client.post(detail(run, "start/")), 403, "permission_denied")
    assert_error(
        observer_worker_client.post(detail(run, "start/")),
        403,
        "not_allowed",
        match="may not start workflow runs",
    )


def test_moves_outside_your_teams_are_not_found(engagement, lead, outsider_client):
    run = run_in(engagement, actor=lead)
    assert_error(outsider_client.post(detail(run, "start/")), 404, "not_found")
    # Bad input to a hidden run is not found either: its existence is checked first.
    for move, body in (("progress/", {"current_step": -1}), ("fail/", {})):
        assert_error(outsider_client.post(detail(run, move), body), 404, "not_found")


def test_a_completed_engagement_takes_no_new_runs(engagement, lead, reviewer_user, lead_client):
    engagement_activate(engagement=engagement, actor=lead)
    final_sign_off(engagement, requester=lead, approver=reviewer_user)
    engagement_complete(engagement=engagement, actor=lead)
    response = lead_client.post(
        RUNS, {"engagement": str(engagement.pk), "workflow_type": "custom", "name": "Late"}
    )
    assert_error(response, 409, "conflict", match="accepts no new workflow runs")


# --- work reported from elsewhere ----------------------------------------------------------


def test_progress_complete_and_fail_for_work_done_elsewhere(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, workflow_type="ifrs17_measurement", start=True)
    response = lead_client.post(
        detail(run, "progress/"), {"current_step": 2, "step_count": 4, "metrics": {"tokens": 10}}
    )
    assert response.status_code == 200, response.content
    assert (response.json()["progress_percent"], response.json()["metrics"]) == (50, {"tokens": 10})
    mark = audit_mark()
    response = lead_client.post(detail(run, "complete/"), {"output_summary": {"csm": 47067}})
    assert response.json()["status"] == "completed"
    assert response.json()["output_summary"] == {"csm": 47067}
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.WORKFLOW_COMPLETE, lead)

    failing = run_in(engagement, actor=lead, workflow_type="custom", start=True)
    response = lead_client.post(
        detail(failing, "fail/"), {"error_message": "Model diverged", "error_details": {"step": 3}}
    )
    assert (response.json()["status"], response.json()["error_message"]) == (
        "failed",
        "Model diverged",
    )


def test_fail_needs_a_message(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, workflow_type="custom", start=True)
    body = assert_error(lead_client.post(detail(run, "fail/"), {}), 400, "invalid")
    assert set(body["errors"]) == {"error_message"}
    body = assert_error(
        lead_client.post(detail(run, "fail/"), {"error_message": " "}), 400, "invalid"
    )
    assert set(body["errors"]) == {"error_message"}


def test_progress_is_checked(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, workflow_type="custom", start=True)
    body = assert_error(
        lead_client.post(detail(run, "progress/"), {"current_step": "two"}), 400, "invalid"
    )
    assert set(body["errors"]) == {"current_step"}
    assert_error(
        lead_client.post(detail(run, "progress/"), {"current_step": 9, "step_count": 4}),
        400,
        "invalid",
        match="out of range",
    )


@pytest.mark.parametrize("move", ["start", "progress", "complete", "fail"])
def test_runner_work_is_never_typed_in(engagement, lead, lead_client, move):
    run = runnable_run_in(engagement, actor=lead)
    if move != "start":
        run = workflow_run_queue(run=run, actor=lead, enqueue=False)
        run = workflow_run_start(run=run, actor=lead, by_runner=True)  # the runner claims it
    status = run.status
    body = {"progress": {"current_step": 1}, "fail": {"error_message": "x"}}.get(move, {})
    assert_error(
        lead_client.post(detail(run, f"{move}/"), body), 409, "conflict", match="only its runner"
    )
    run.refresh_from_db()
    assert run.status == status


def test_a_waiting_run_is_released_only_by_its_approval(
    engagement, lead, reviewer_user, lead_client
):
    run = run_in_state("waiting_approval", engagement, lead=lead, reviewer=reviewer_user)
    response = lead_client.post(detail(run, "complete/"), {})
    assert_error(response, 409, "conflict", match="decide its workflow approval")


# --- query counts ---------------------------------------------------------------------------


def test_list_runs_a_fixed_number_of_queries(
    engagement, lead_client, django_assert_max_num_queries
):
    for _ in range(100):
        WorkflowRunFactory(engagement=engagement)
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(6):
            assert len(results(lead_client.get(RUNS, {"page_size": page_size}))) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(RUNS, {"page_size": s})
        )
    assert counts[1] == counts[100]


# --- the headline figures of the run lists ----------------------------------------------------


def reported_reserves(engagement, lead, number: int) -> WorkflowRun:
    """Return a run done elsewhere that reported reserving totals (a chain ladder)."""
    run = run_in(engagement, actor=lead, start=True, name=f"Reserves {number}")
    summary = {
        "method": "chain_ladder",
        "measure": "paid",
        "totals": {"latest": 1000.0 + number, "ultimate": 1500.0 + number, "ibnr": 500},
    }
    return workflow_run_complete(run=run, actor=lead, output_summary=summary)


def test_the_list_shows_method_ultimate_and_ibnr(
    engagement, lead, lead_client, django_assert_max_num_queries
):
    from tests.openapi_shapes import assert_shape

    for number in range(20):
        reported_reserves(engagement, lead, number)
    other = run_in(engagement, actor=lead, name="No results")
    counts = {}
    for page_size in (1, 21):
        with django_assert_max_num_queries(6):
            rows = results(lead_client.get(RUNS, {"page_size": page_size, "ordering": "name"}))
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(RUNS, {"page_size": s})
        )
    assert counts[1] == counts[21]
    by_name = {row["name"]: row["result_headline"] for row in rows}
    assert by_name["No results"] is None
    assert by_name["Reserves 7"] == {
        "method": "chain_ladder",
        "measure": "paid",
        "latest": 1007.0,
        "ultimate": 1507.0,
        "ibnr": 500.0,
    }
    assert_shape(by_name["Reserves 7"], "RunResultHeadline", complete=True)
    detail = lead_client.get(f"{RUNS}{other.pk}/").json()
    assert detail["result_headline"] is None


def test_a_summary_without_numeric_totals_has_no_headline(engagement, lead, lead_client):
    run = run_in(engagement, actor=lead, start=True)
    summary = {"totals": {"latest": "a lot", "ultimate": 2, "ibnr": 1}}
    run = workflow_run_complete(run=run, actor=lead, output_summary=summary)
    assert lead_client.get(f"{RUNS}{run.pk}/").json()["result_headline"] is None
