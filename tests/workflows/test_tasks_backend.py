"""The task backend: chosen by settings, the database backend by default, its worker for real.

The PostgreSQL test runs django-tasks-db's own worker (the loop behind `manage.py
db_worker --batch`) in this process on a really queued run, committed as in
production: the queueing commits, the task row is written on commit, the worker
claims it and the run ends waiting for approval.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.tasks import task_backends
from django.tasks.backends.immediate import ImmediateBackend
from django_tasks_db import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from tests.workflows.conftest import reserving_params
from workflows.choices import WorkflowType
from workflows.services import workflow_run_queue
from workflows.tasks import execute_workflow_run

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
TASK_PATH = "workflows.tasks.execute_workflow_run"


def base_setting(**environment):
    """Return TASKS as config.settings.base builds it from `environment`."""
    code = "import config.settings.base as s; print(s.TASKS['default']['BACKEND'])"
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "true", **environment}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_database_backend_is_the_default():
    assert base_setting() == "django_tasks_db.DatabaseBackend"


def test_tasks_backend_names_another_backend():
    backend = "django.tasks.backends.immediate.ImmediateBackend"
    assert base_setting(TASKS_BACKEND=backend) == backend


def test_the_tests_run_tasks_at_once():
    assert isinstance(task_backends["default"], ImmediateBackend)


@pytest.mark.django_db
def test_queueing_writes_a_task_row_that_a_worker_picks_up(
    settings, create_run, raa, actuary, django_capture_on_commit_callbacks
):
    settings.TASKS = DATABASE_TASKS
    assert isinstance(task_backends["default"], DatabaseBackend)
    run = create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa))

    with django_capture_on_commit_callbacks(execute=True):
        workflow_run_queue(run=run, actor=actuary)

    [row] = DBTaskResult.objects.all()
    assert (row.task_path, row.status, row.queue_name) == (TASK_PATH, "READY", "default")
    assert row.args_kwargs == {"args": [str(run.pk)], "kwargs": {}}
    run.refresh_from_db()
    assert run.status == "queued"  # nothing runs until a worker takes the task


@pytest.mark.postgres
@pytest.mark.slow
def test_the_database_worker_executes_a_queued_run_once(
    transactional_db, settings, create_run, raa, actuary
):
    settings.TASKS = DATABASE_TASKS
    run = create_run(
        WorkflowType.RESERVE_CALCULATION, reserving_params(raa, allow_negative_development=True)
    )
    # Autocommit: the queueing commits and its on-commit hook writes the task row.
    workflow_run_queue(run=run, actor=actuary)
    # The same task delivered a second time.
    execute_workflow_run.enqueue(str(run.pk))
    runs = DBTaskResult.objects.filter(task_path=TASK_PATH)  # not the notifications' tasks
    assert runs.filter(status="READY").count() == 2

    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"test-{os.getpid()}",
        excluded_queue_names=[],
    ).run()

    results = list(runs.order_by("enqueued_at"))
    assert [result.status for result in results] == ["SUCCESSFUL", "SUCCESSFUL"]
    assert [result.task_result.return_value["outcome"] for result in results] == [
        "waiting_approval",
        "skipped",
    ]
    run.refresh_from_db()
    assert run.status == "waiting_approval" and run.started_by == actuary
    assert run.output_summary["totals"]["ibnr"] == pytest.approx(52_135, abs=1)
    assert [step["name"] for step in run.metrics["steps"]] == [
        "load_triangle",
        "fit_chain_ladder",
        "write_tables",
        "draw_chart",
    ]
    assert run.approvals.get().approval_type == "workflow_approval"
    assert run.history.filter(history_change_reason="Start").count() == 1
