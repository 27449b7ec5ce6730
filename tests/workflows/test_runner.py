"""The runner: queueing, the at-most-once claim, progress, failure capture, cancel and pause.

A test implementation is registered for a workflow type the back office does not run
itself (cohort grouping), so each test decides what its steps do and observes the run
from inside them.
"""

import threading

import pytest
from django.db import connection

from artefacts.services import artefact_delete
from audit.choices import AuditAction
from engagements.models import EngagementMember
from engagements.services import engagement_member_remove
from records.exceptions import Conflict
from tests.factories import EngagementMemberFactory, UserFactory
from tests.factories.states import (
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
    runnable_run_in,
)
from workflows import runner
from workflows.choices import WorkflowType
from workflows.implementations.base import Step, WorkflowImplementation
from workflows.models import WorkflowRun
from workflows.runner import SKIPPED, execute_run
from workflows.services import (
    workflow_run_cancel,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_resume,
)
from workflows.tasks import execute_workflow_run

pytestmark = pytest.mark.django_db

TEST_TYPE = WorkflowType.COHORT_GROUPING


class Recorder(WorkflowImplementation):
    """Three steps that record what they saw of the run, as committed, while it ran."""

    label = "test workflow"
    steps = (
        Step("first", "First step"),
        Step("second", "Second step"),
        Step("third", "Third step"),
    )
    executed: list[str]
    observed: list[dict]
    during: dict = {}

    def first(self):
        self._do("first")

    def second(self):
        self._do("second")

    def third(self):
        self._do("third")

    def _do(self, name):
        run = WorkflowRun.objects.get(pk=self.run.pk)
        type(self).observed.append(
            {
                "step": name,
                "status": run.status,
                "current_step": run.current_step,
                "metrics_steps": [entry["name"] for entry in run.metrics.get("steps", [])],
            }
        )
        type(self).executed.append(name)
        action = type(self).during.get(name)
        if action is not None:
            action(self)

    def output_summary(self):
        return {"steps_executed": list(type(self).executed), **super().output_summary()}


@pytest.fixture
def recorder(register):
    Recorder.executed, Recorder.observed, Recorder.during = [], [], {}
    return register(TEST_TYPE, Recorder)


@pytest.fixture
def run(engagement, actuary, recorder):
    return run_in(engagement, actor=actuary, workflow_type=TEST_TYPE, name="Test run", step_count=0)


# --- queueing ------------------------------------------------------------------------------


def test_queueing_records_the_queuer_and_enqueues_the_task_on_commit(
    run, actuary, django_capture_on_commit_callbacks
):
    mark = audit_mark()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        workflow_run_queue(run=run, actor=actuary)
    run.refresh_from_db()
    # Nothing runs before the queueing commits.
    assert run.status == "queued" and run.queued_by == actuary and Recorder.executed == []
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.WORKFLOW_UPDATE and event.new_value["status"] == "queued"

    [enqueue] = callbacks
    enqueue()
    run.refresh_from_db()
    assert run.status == "completed" and Recorder.executed == ["first", "second", "third"]
    assert run.output_summary == {"steps_executed": ["first", "second", "third"], "artefacts": []}


def test_queueing_without_enqueue_sends_no_task(run, actuary, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        workflow_run_queue(run=run, actor=actuary, enqueue=False)
    assert callbacks == []


def test_a_type_without_implementation_is_not_queued(engagement, actuary):
    run = run_in(engagement, actor=actuary, workflow_type=WorkflowType.CSM_CALCULATION)
    before = database_state()
    with pytest.raises(
        Conflict,
        match=r"Cannot queue workflow run “.*”: the back office does not run csm_calculation "
        r"workflows itself \(it runs data_validation, ibnr_estimation, reserve_calculation, "
        r"triangle_analysis\); record the work done elsewhere",
    ):
        workflow_run_queue(run=run, actor=actuary)
    assert database_state() == before


def test_the_step_count_comes_from_the_implementation(run):
    assert run.step_count == 3


# --- the claim: at most once ---------------------------------------------------------------


def test_the_worker_starts_the_run_as_the_user_who_queued_it(run, actuary, reviewer, queue_and_run):
    run = queue_and_run(run, actor=reviewer)
    assert run.started_by == run.queued_by == reviewer and run.started_at is not None
    assert run.created_by == actuary
    assert Recorder.observed[0]["status"] == "running"


def test_a_task_delivered_twice_executes_the_run_once(run, actuary):
    workflow_run_queue(run=run, actor=actuary, enqueue=False)

    first = execute_workflow_run.enqueue(str(run.pk))
    second = execute_workflow_run.enqueue(str(run.pk))

    assert Recorder.executed == ["first", "second", "third"]
    assert first.return_value["outcome"] == "completed"
    assert second.return_value["outcome"] == SKIPPED
    assert "is completed, not queued" in second.return_value["message"]
    run.refresh_from_db()
    assert run.status == "completed"


def test_a_run_that_is_not_queued_is_not_executed(run):
    report = execute_run(run.pk)
    assert report.outcome == SKIPPED and "is pending, not queued" in report.message
    assert Recorder.executed == []


def test_a_missing_run_is_skipped():
    report = execute_run("00000000-0000-0000-0000-000000000000")
    assert report.outcome == SKIPPED and "does not exist" in report.message


# --- progress ------------------------------------------------------------------------------


def test_progress_and_step_metrics_are_committed_after_each_step(run, queue_and_run):
    run = queue_and_run(run)

    assert [(o["step"], o["current_step"], o["metrics_steps"]) for o in Recorder.observed] == [
        ("first", 0, []),
        ("second", 1, ["first"]),
        ("third", 2, ["first", "second"]),
    ]
    assert (run.current_step, run.step_count, run.progress_percent) == (3, 3, 100)
    steps = run.metrics["steps"]
    assert [s["name"] for s in steps] == ["first", "second", "third"]
    assert [s["label"] for s in steps] == ["First step", "Second step", "Third step"]
    assert all(s["seconds"] >= 0 for s in steps)
    assert set(run.metrics["step_seconds"]) == {"first", "second", "third"}
    assert run.metrics["total_seconds"] >= sum(s["seconds"] for s in steps)
    # One committed history row per step: what another connection sees as the run goes.
    reasons = [h.history_change_reason for h in run.history.order_by("history_date")]
    assert reasons == [
        "Created",
        "Queue",
        "Start",
        "Provenance recorded",
        "Progress: step 1 of 3",
        "Progress: step 2 of 3",
        "Progress: step 3 of 3",
        "Complete",
    ]


# --- failure -------------------------------------------------------------------------------


def explode(implementation):
    return 1 / 0


def test_a_failing_step_fails_the_run_with_its_exception(run, queue_and_run):
    Recorder.during = {"second": explode}
    mark = audit_mark()

    run = queue_and_run(run)

    assert run.status == "failed" and run.completed_at is not None
    assert Recorder.executed == ["first", "second"]
    assert run.error_message == (
        "Step 2 of 3 (Second step) failed: ZeroDivisionError: division by zero"
    )
    details = run.error_details
    assert details["step"] == "second" and details["step_number"] == 2
    assert details["step_label"] == "Second step" and details["step_count"] == 3
    assert details["exception_type"] == "ZeroDivisionError"
    assert details["message"] == "division by zero"
    assert "in explode" in details["traceback"]
    assert details["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")
    assert run.current_step == 1
    assert [(s["name"], s.get("failed", False)) for s in run.metrics["steps"]] == [
        ("first", False),
        ("second", True),
    ]
    assert AuditAction.WORKFLOW_FAIL in [event.action for event in audit_events_since(mark)]


def test_a_failing_summary_fails_the_run_after_its_steps(run, register, queue_and_run):
    class BadSummary(Recorder):
        def output_summary(self):
            raise KeyError("ibnr")

    register(TEST_TYPE, BadSummary)
    run = queue_and_run(run)
    assert run.status == "failed" and run.current_step == 3
    assert run.error_message == ("Recording the results after step 3 of 3 failed: KeyError: 'ibnr'")
    assert run.error_details["step"] == "finish"


def test_a_run_whose_input_went_away_fails_at_its_input_check(engagement, actuary):
    triangle = artefact_in(engagement, actor=actuary, artefact_type="triangle")
    run = runnable_run_in(engagement, actor=actuary, triangle=triangle)
    run = workflow_run_queue(run=run, actor=actuary, enqueue=False)
    artefact_delete(artefact=triangle, actor=actuary)  # after queueing, before the worker

    execute_run(run.pk)

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_message.startswith(
        "The input check before step 1 of 3 failed: Invalid input_params (data_validation): "
        f"triangle_artefact: engagement “{engagement}” has no artefact {triangle.pk}"
    )
    assert run.error_details["step"] == "validate_input"
    assert run.provenance == {}  # nothing ran, so nothing is recorded as having run


# --- cancellation and pause ----------------------------------------------------------------


def test_cancelling_a_running_run_stops_it_between_steps(run, reviewer, queue_and_run):
    Recorder.during = {"first": lambda impl: workflow_run_cancel(run=impl.run, actor=reviewer)}

    run = queue_and_run(run)

    assert run.status == "cancelled" and run.updated_by == reviewer
    assert Recorder.executed == ["first"]
    assert run.error_message == "" and run.current_step == 0


def test_cancelling_during_the_last_step_keeps_the_run_cancelled(run, reviewer, queue_and_run):
    Recorder.during = {"third": lambda impl: workflow_run_cancel(run=impl.run, actor=reviewer)}
    report = execute_workflow_run.enqueue(str(run.pk))  # not queued yet: skipped
    assert report.return_value["outcome"] == SKIPPED
    run = queue_and_run(run)
    assert run.status == "cancelled" and Recorder.executed == ["first", "second", "third"]
    assert run.current_step == 2  # the last step's progress was refused: cancelled meanwhile


def test_a_run_cancelled_while_queued_is_never_executed(run, actuary, reviewer):
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    workflow_run_cancel(run=run, actor=reviewer)

    result = execute_workflow_run.enqueue(str(run.pk))

    assert result.return_value["outcome"] == SKIPPED and Recorder.executed == []
    run.refresh_from_db()
    assert run.status == "cancelled"


def test_a_paused_run_waits_between_steps_until_resumed(run, reviewer, queue_and_run, monkeypatch):
    Recorder.during = {"first": lambda impl: workflow_run_pause(run=impl.run, actor=reviewer)}
    looks = []

    def resume_on_second_look(seconds):
        looks.append(seconds)
        if len(looks) == 2:
            workflow_run_resume(run=WorkflowRun.objects.get(pk=run.pk), actor=reviewer)

    monkeypatch.setattr(runner, "_sleep", resume_on_second_look)

    run = queue_and_run(run)

    assert looks == [runner.PAUSE_POLL_SECONDS] * 2
    assert run.status == "completed" and Recorder.executed == ["first", "second", "third"]


def test_a_paused_run_that_is_cancelled_stops(run, reviewer, queue_and_run, monkeypatch):
    Recorder.during = {"first": lambda impl: workflow_run_pause(run=impl.run, actor=reviewer)}
    monkeypatch.setattr(
        runner,
        "_sleep",
        lambda seconds: workflow_run_cancel(run=WorkflowRun.objects.get(pk=run.pk), actor=reviewer),
    )
    run = queue_and_run(run)
    assert run.status == "cancelled" and Recorder.executed == ["first"]


# --- who acts -------------------------------------------------------------------------------


def test_a_queuer_who_left_the_team_is_replaced_by_the_lead_to_fail_the_run(
    engagement, actuary, recorder
):
    colleague = UserFactory(username="colleague")
    EngagementMemberFactory(engagement=engagement, user=colleague, role="actuary")
    run = run_in(engagement, actor=colleague, workflow_type=TEST_TYPE, name="Orphan")
    workflow_run_queue(run=run, actor=colleague, enqueue=False)
    member = EngagementMember.objects.get(engagement=engagement, user=colleague)
    engagement_member_remove(member=member, actor=actuary)

    report = execute_run(run.pk)

    run.refresh_from_db()
    assert report.outcome == run.status == "failed" and Recorder.executed == []
    assert run.error_message.startswith("Could not start the run: ")
    assert "not on its team" in run.error_message
    assert run.updated_by == actuary


def test_an_interrupted_worker_fails_the_run_and_stops(run, actuary):
    def interrupt(implementation):
        raise KeyboardInterrupt

    Recorder.during = {"second": interrupt}
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    with pytest.raises(KeyboardInterrupt):
        execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_message == (
        "The worker stopped during step 2 of 3 (Second step): KeyboardInterrupt."
    )


# --- PostgreSQL: two workers racing for one run --------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_racing_for_a_run_execute_it_once(
    transactional_db, engagement, actuary, recorder
):
    run = run_in(engagement, actor=actuary, workflow_type=TEST_TYPE, name="Raced")
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    barrier = threading.Barrier(2)
    reports = []

    def worker():
        try:
            barrier.wait()
            reports.append(execute_run(run.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(report.outcome for report in reports) == ["completed", SKIPPED]
    assert Recorder.executed == ["first", "second", "third"]
