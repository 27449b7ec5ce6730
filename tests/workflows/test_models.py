import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.factories import WorkflowRunFactory
from tests.lifecycle import check_every_move
from workflows.models import WorkflowRun

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
NON_TERMINAL = ("pending", "queued", "running", "paused", "waiting_approval")
ALLOWED = {
    "queue": {"pending": "queued"},
    "start": {"pending": "running", "queued": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "await_approval": {"running": "waiting_approval"},
    "complete": {"running": "completed", "waiting_approval": "completed"},
    "fail": dict.fromkeys(NON_TERMINAL, "failed"),
    "cancel": dict.fromkeys(NON_TERMINAL, "cancelled"),
}
CALLS = {
    "fail": lambda run: run.fail("Triangle unreadable", {"step": "load"}),
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(ALLOWED))
def test_workflow_run_lifecycle(state, move):
    run = WorkflowRunFactory()
    call = CALLS.get(move, lambda r: getattr(r, move)())
    check_every_move(run, state, move, ALLOWED[move].get(state), call)


def test_run_saves_and_reloads_with_defaults():
    run = WorkflowRun.objects.get(pk=WorkflowRunFactory(step_count=0).pk)
    assert run.status == "pending"
    assert run.current_step == 0 and run.step_count == 0
    assert run.input_params == {} and run.metrics == {}
    assert run.output_summary is None and run.error_details is None
    assert run.trace_id is None


def test_start_and_complete_stamp_times_and_summary():
    run = WorkflowRunFactory()
    run.start()
    assert run.started_at is not None and run.completed_at is None
    run.complete(output_summary={"total_ibnr": 52135.2})
    assert run.completed_at >= run.started_at
    assert run.output_summary == {"total_ibnr": 52135.2}


def test_fail_records_error():
    run = WorkflowRunFactory()
    run.start()
    run.fail("boom", {"exception": "ValueError"})
    assert run.error_message == "boom"
    assert run.error_details == {"exception": "ValueError"}
    assert run.completed_at is not None


def test_duration_seconds():
    run = WorkflowRunFactory.build()
    assert run.duration_seconds is None
    run.started_at = timezone.now()
    assert run.duration_seconds is None
    run.completed_at = run.started_at + datetime.timedelta(seconds=90)
    assert run.duration_seconds == 90


@pytest.mark.parametrize(
    ("step_count", "current_step", "percent"),
    [(0, 0, 0), (0, 3, 0), (4, 0, 0), (4, 1, 25), (3, 2, 67), (4, 4, 100), (4, 9, 100)],
)
def test_progress_percent_is_clamped(step_count, current_step, percent):
    run = WorkflowRunFactory.build(step_count=step_count, current_step=current_step)
    assert run.progress_percent == percent


@pytest.mark.parametrize("field", ["step_count", "current_step"])
def test_negative_steps_are_refused_by_the_database(field):
    run = WorkflowRunFactory()
    setattr(run, field, -1)
    with pytest.raises(IntegrityError), transaction.atomic():
        run.save()


def test_completed_before_started_is_refused_by_the_database():
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkflowRunFactory(started_at=now, completed_at=now - datetime.timedelta(seconds=1))


def test_soft_delete_hides_run(user):
    run = WorkflowRunFactory()
    run.soft_delete(user)
    assert not WorkflowRun.objects.filter(pk=run.pk).exists()
    assert not run.engagement.workflow_runs.exists()
    assert WorkflowRun.all_objects.filter(pk=run.pk, is_deleted=True).exists()
