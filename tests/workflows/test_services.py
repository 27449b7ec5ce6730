"""Workflow run services: create, edit, every lifecycle move, progress, and who may act."""

import pytest

from audit.choices import AuditAction, Severity
from engagements.choices import TeamRole
from engagements.services import engagement_archive, engagement_cancel
from records.exceptions import Conflict, InvalidInput, InvalidTransition, NotAllowed
from tests.factories import EngagementMemberFactory, SuperUserFactory, UserFactory
from tests.factories.states import (
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
    runnable_run_in,
)
from tests.lifecycle import state_words
from workflows.services import (
    workflow_run_await_approval,
    workflow_run_cancel,
    workflow_run_complete,
    workflow_run_create,
    workflow_run_fail,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_resume,
    workflow_run_start,
    workflow_run_update,
    workflow_run_update_progress,
)

pytestmark = pytest.mark.django_db

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
# The spec's lifecycle, written out independently of choices.py.
ALLOWED = {
    "queue": {"pending": "queued"},
    "start": {"pending": "running", "queued": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "await_approval": {"running": "waiting_approval"},
    "complete": {"running": "completed"},  # waiting_approval: only through its approval
    "fail": dict.fromkeys(OPEN, "failed"),
    "cancel": dict.fromkeys(OPEN, "cancelled"),
}
AUDITED = {
    "queue": AuditAction.WORKFLOW_UPDATE,
    "pause": AuditAction.WORKFLOW_UPDATE,
    "resume": AuditAction.WORKFLOW_UPDATE,
    "await_approval": AuditAction.WORKFLOW_UPDATE,
    "start": AuditAction.WORKFLOW_START,
    "complete": AuditAction.WORKFLOW_COMPLETE,
    "fail": AuditAction.WORKFLOW_FAIL,
    "cancel": AuditAction.WORKFLOW_CANCEL,
}
ARGUMENTS = {"fail": {"error_message": "Triangle has negative increments"}}
MOVES = {
    "queue": workflow_run_queue,
    "start": workflow_run_start,
    "pause": workflow_run_pause,
    "resume": workflow_run_resume,
    "await_approval": workflow_run_await_approval,
    "complete": workflow_run_complete,
    "fail": workflow_run_fail,
    "cancel": workflow_run_cancel,
}
# Moves only the runner makes on runs of the types it executes (`by_runner=True`).
RUNNER_MOVES = frozenset({"start", "complete", "fail"})
PATHS = {
    "pending": [],
    "queued": ["queue"],
    "running": ["start"],
    "paused": ["start", "pause"],
    "waiting_approval": ["start", "await_approval"],
    "completed": ["start", "complete"],
    "failed": ["fail"],
    "cancelled": ["cancel"],
}


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role=TeamRole.OBSERVER)
    return observer


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


def run_in_state(state, engagement, actor, *, runnable=False):
    """Return a run brought to `state` through the services.

    `runnable`: a run of a type the runner executes (a data validation), which only the
    runner starts, completes or fails; otherwise a custom run, moved by hand.
    """
    run = runnable_run_in(engagement, actor=actor) if runnable else run_in(engagement, actor=actor)
    for move in PATHS[state]:
        run = MOVES[move](run=run, actor=actor, **arguments(move, runnable=runnable))
    return run


def arguments(move, *, runnable=False):
    """Return the extra arguments of a move (as the runner, on a run of its types)."""
    extra = {"by_runner": True} if runnable and move in RUNNER_MOVES else {}
    return ARGUMENTS.get(move, {}) | extra


def test_a_team_member_creates_a_pending_run_on_record(engagement, reviewer):
    mark = audit_mark()
    # A type the runner does not execute: its input_params are kept as given.
    run = workflow_run_create(
        engagement=engagement,
        workflow_type="csm_calculation",
        name="CSM 2025",
        period="2025-12",
        input_params={"method": "chain_ladder"},
        actor=reviewer,
    )
    run.refresh_from_db()
    assert run.status == "pending" and run.created_by == run.updated_by == reviewer
    assert run.input_params == {"method": "chain_ladder"}
    assert run.history.latest().history_user == reviewer
    assert run.history.latest().history_change_reason == "Created"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.WORKFLOW_CREATE and event.user == reviewer
    assert event.resource_id == run.pk and event.engagement_id == engagement.pk
    assert event.new_value["status"] == "pending"
    assert event.new_value["input_params"] == {"method": "chain_ladder"}


@pytest.mark.parametrize(
    ("who", "kwargs", "error", "match"),
    [
        ("outsider", {}, NotAllowed, "may not add workflow runs to engagement .*not on its team"),
        ("observer", {}, NotAllowed, "role on its team is observer"),
        ("actuary", {"workflow_type": "alchemy"}, InvalidInput, "workflow_type: Value 'alchemy'"),
        ("actuary", {"name": ""}, InvalidInput, "name: This field cannot be blank"),
    ],
)
def test_create_refusals_change_nothing(request, engagement, who, kwargs, error, match):
    actor = request.getfixturevalue(who)
    fields = {"workflow_type": "custom", "name": "Run"} | kwargs
    before = database_state()
    with pytest.raises(error, match=match):
        workflow_run_create(engagement=engagement, actor=actor, **fields)
    assert database_state() == before


def test_a_pending_run_can_be_edited(engagement, actuary):
    run = run_in(engagement, actor=actuary)
    old_name = run.name
    mark = audit_mark()
    run = workflow_run_update(run=run, actor=actuary, data={"name": "Renamed", "step_count": 9})
    run.refresh_from_db()
    assert (run.name, run.step_count) == ("Renamed", 9)
    assert run.history.latest().history_change_reason == "Edited: name, step_count"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.WORKFLOW_UPDATE and event.user == actuary
    assert event.old_value == {"name": old_name, "step_count": 4}
    assert event.new_value == {"name": "Renamed", "step_count": 9}


@pytest.mark.parametrize(
    ("state", "data", "error", "match"),
    [
        ("running", {"name": "x"}, Conflict, "Cannot edit workflow run .*: it is running"),
        ("completed", {"name": "x"}, Conflict, "it is completed"),
        ("pending", {"status": "completed"}, InvalidInput, "Cannot change status of workflow"),
        ("pending", {"started_at": None}, InvalidInput, "Cannot change started_at"),
    ],
)
def test_edit_refusals_change_nothing(engagement, actuary, state, data, error, match):
    run = run_in_state(state, engagement, actuary)
    before = database_state()
    with pytest.raises(error, match=match):
        workflow_run_update(run=run, actor=actuary, data=data)
    assert database_state() == before


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(MOVES))
def test_every_move_from_every_state(engagement, actuary, reviewer, move, state):
    # Only runs of the runner's types are queued (and those only the runner moves on).
    runnable = move == "queue" or state == "queued"
    run = run_in_state(state, engagement, actuary, runnable=runnable)
    target = ALLOWED[move].get(state)
    before = database_state()
    mark = audit_mark()
    call = MOVES[move]

    if target is None:
        if move == "complete" and state == "waiting_approval":
            error, match = Conflict, "waiting for approval; decide its workflow approval"
        else:
            error, match = (
                InvalidTransition,
                rf"Cannot {move.replace('_', ' ')} .*: it is {state_words(state)} ",
            )
        with pytest.raises(error, match=match):
            call(run=run, actor=reviewer, **arguments(move, runnable=runnable))
        assert database_state() == before
        return

    result = call(run=run, actor=reviewer, **arguments(move, runnable=runnable))

    run.refresh_from_db()
    assert result.status == run.status == target
    assert run.updated_by == reviewer
    assert run.history.latest().history_user == reviewer
    events = audit_events_since(mark)
    if move not in AUDITED:
        assert events == []
        return
    [event] = events
    assert event.action == AUDITED[move] and event.user == reviewer
    assert event.resource_type == "workflowrun" and event.resource_id == run.pk
    assert event.engagement_id == engagement.pk
    assert event.old_value["status"] == state and event.new_value["status"] == target


def test_start_records_who_started_the_run_and_when(engagement, actuary, reviewer):
    run = workflow_run_start(run=run_in(engagement, actor=actuary), actor=reviewer)
    run.refresh_from_db()
    assert run.started_by == reviewer and run.started_at is not None
    assert run.history.latest().history_change_reason == "Start"


def test_complete_stores_the_output_summary(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    mark = audit_mark()
    run = workflow_run_complete(run=run, actor=actuary, output_summary={"ibnr": 1250000})
    run.refresh_from_db()
    assert run.output_summary == {"ibnr": 1250000} and run.completed_at is not None
    [event] = audit_events_since(mark)
    assert event.new_value["output_summary"] == {"ibnr": 1250000}


def test_fail_records_the_error_as_an_error_event(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    mark = audit_mark()
    workflow_run_fail(
        run=run, actor=actuary, error_message="  Divide by zero ", error_details={"step": 3}
    )
    run.refresh_from_db()
    assert run.error_message == "Divide by zero" and run.error_details == {"step": 3}
    [event] = audit_events_since(mark)
    assert event.severity == Severity.ERROR
    assert event.new_value["error_message"] == "Divide by zero"


def test_fail_needs_an_error_message(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    before = database_state()
    with pytest.raises(InvalidInput, match="an error message is required"):
        workflow_run_fail(run=run, actor=actuary, error_message="  ")
    assert database_state() == before


@pytest.mark.parametrize("move", list(MOVES))
@pytest.mark.parametrize("who", ["observer", "outsider"])
def test_only_working_team_members_move_runs(request, engagement, actuary, observer, move, who):
    actor = request.getfixturevalue(who)
    run = run_in_state("running" if move != "start" else "pending", engagement, actuary)
    before = database_state()
    with pytest.raises(NotAllowed, match=f"may not {move.replace('_', ' ')} workflow runs of"):
        MOVES[move](run=run, actor=actor, **ARGUMENTS.get(move, {}))
    assert database_state() == before


def test_superusers_may_move_any_run(engagement, actuary):
    run = run_in(engagement, actor=actuary)
    assert workflow_run_start(run=run, actor=SuperUserFactory()).status == "running"


@pytest.mark.parametrize("move", ["queue", "start"])
def test_runs_of_an_archived_engagement_do_not_start(engagement, actuary, move):
    run = run_in(engagement, actor=actuary)
    engagement = engagement_cancel(engagement=engagement, actor=actuary)
    engagement_archive(engagement=engagement, actor=actuary)
    before = database_state()
    with pytest.raises(Conflict, match="is archived: it accepts no new work on its workflow runs"):
        MOVES[move](run=run, actor=actuary)
    assert database_state() == before
    # Winding down is still possible.
    assert workflow_run_cancel(run=run, actor=actuary).status == "cancelled"


def test_progress_is_recorded_and_metrics_merged(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    workflow_run_update_progress(run=run, actor=actuary, current_step=1, metrics={"tokens": 10})
    run = workflow_run_update_progress(
        run=run, actor=actuary, current_step=3, step_count=6, metrics={"api_calls": 2}
    )
    run.refresh_from_db()
    assert (run.current_step, run.step_count, run.progress_percent) == (3, 6, 50)
    assert run.metrics == {"tokens": 10, "api_calls": 2}
    assert run.history.latest().history_change_reason == "Progress: step 3 of 6"


@pytest.mark.parametrize(
    ("state", "step", "count", "error", "match"),
    [
        ("running", 5, None, InvalidInput, "Step 5 is out of range .* \\(4 steps\\)"),
        ("running", -1, None, InvalidInput, "Step -1 is out of range"),
        ("paused", 1, None, Conflict, "it is paused, not running"),
        ("pending", 1, None, Conflict, "it is pending, not running"),
    ],
)
def test_progress_refusals_change_nothing(engagement, actuary, state, step, count, error, match):
    run = run_in_state(state, engagement, actuary)
    before = database_state()
    with pytest.raises(error, match=match):
        workflow_run_update_progress(run=run, actor=actuary, current_step=step, step_count=count)
    assert database_state() == before


# --- input parameters of runs the back office executes (issue 7) -------------------------


def test_progress_may_record_results_before_the_run_ends(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    workflow_run_update_progress(
        run=run, actor=actuary, current_step=4, output_summary={"ibnr": 52135}
    )
    run.refresh_from_db()
    assert run.output_summary == {"ibnr": 52135} and run.status == "running"


def test_an_edit_checks_changed_input_params(engagement, actuary):
    run = runnable_run_in(engagement, actor=actuary)
    before = database_state()
    with pytest.raises(
        InvalidInput,
        match=r"Invalid input_params \(data_validation\): triangle_artefact is required",
    ) as refusal:
        workflow_run_update(run=run, actor=actuary, data={"input_params": {"measure": "paid"}})
    assert refusal.value.field == "input_params"
    assert database_state() == before


@pytest.mark.parametrize("input_params", [None, {}, {"measure": "paid", "cumulative": True}])
@pytest.mark.parametrize("workflow_type", ["reserve_calculation", "data_validation"])
def test_runs_of_runnable_types_are_never_placeholders(
    engagement, actuary, workflow_type, input_params
):
    before = database_state()
    with pytest.raises(InvalidInput, match="triangle_artefact is required") as refusal:
        workflow_run_create(
            engagement=engagement,
            workflow_type=workflow_type,
            name="Placeholder",
            input_params=input_params,
            actor=actuary,
        )
    assert refusal.value.field == "input_params"
    assert database_state() == before


def test_a_pending_run_cannot_become_a_runnable_type_without_inputs(engagement, actuary):
    run = run_in(engagement, actor=actuary)
    before = database_state()
    with pytest.raises(InvalidInput, match="triangle_artefact is required"):
        workflow_run_update(run=run, actor=actuary, data={"workflow_type": "triangle_analysis"})
    assert database_state() == before


@pytest.mark.parametrize(
    ("move", "state", "kwargs", "match"),
    [
        ("start", "pending", {}, "Cannot start workflow run .* by hand: .* starts them"),
        ("start", "queued", {}, "Cannot start workflow run .* by hand"),
        ("complete", "running", {}, "only its runner records their results"),
        ("fail", "running", {"error_message": "x"}, "only its runner records their failures"),
        ("fail", "queued", {"error_message": "x"}, "only its runner records their failures"),
    ],
)
def test_runner_work_is_never_typed_in(engagement, actuary, move, state, kwargs, match):
    run = run_in_state(state, engagement, actuary, runnable=True)
    before = database_state()
    with pytest.raises(Conflict, match=match):
        MOVES[move](run=run, actor=actuary, **kwargs)
    with pytest.raises(Conflict, match="only its runner records their progress"):
        workflow_run_update_progress(run=run, actor=actuary, current_step=1)
    assert database_state() == before
    # Cancelling is how people stop such a run.
    assert workflow_run_cancel(run=run, actor=actuary).status == "cancelled"


def test_a_queued_run_cannot_become_a_type_the_runner_does_not_run(engagement, actuary):
    run = workflow_run_queue(run=runnable_run_in(engagement, actor=actuary), actor=actuary)
    with pytest.raises(Conflict, match=r"Cannot make queued workflow run .* a csm_calculation run"):
        workflow_run_update(run=run, actor=actuary, data={"workflow_type": "csm_calculation"})
    # A pending run may: it is then a record of work done elsewhere.
    pending = run_in(engagement, actor=actuary, name="Other")
    workflow_run_update(run=pending, actor=actuary, data={"workflow_type": "csm_calculation"})


def test_queueing_checks_the_input_params_again(engagement, actuary):
    from artefacts.services import artefact_delete
    from tests.workflows.conftest import reserving_params, upload_triangle

    triangle = upload_triangle(
        engagement,
        actor=actuary,
        content=b"origin,development,value\n2019,12,100\n2019,24,150\n2020,12,110\n2021,12,120\n",
    )
    run = run_in(
        engagement,
        actor=actuary,
        workflow_type="data_validation",
        input_params=reserving_params(triangle),
    )
    artefact_delete(artefact=triangle, actor=actuary)
    before = database_state()
    with pytest.raises(InvalidInput, match=r"triangle_artefact: engagement .* has no artefact"):
        workflow_run_queue(run=run, actor=actuary)
    assert database_state() == before
