"""The worker fleet: heartbeats, the reaper's rule, `reap_runs`, and two real workers.

The service tests build a dead worker's heartbeat row by hand (its last heartbeat
older than the dead-after limit) and check what the reaper does with its run. The
PostgreSQL test starts two `run_workers` processes, kills the one executing a run
with SIGKILL, and checks that the survivor's reaper fails the run (and audits it) and
that the survivor executes the next run.
"""

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.models import AuditLog
from tests.workflows.conftest import reserving_params
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkerHeartbeat
from workflows.selectors import NO_WORKER_ALIVE, workers_alive
from workflows.services import workflow_run_pause, workflow_run_queue, workflow_run_start
from workflows.services.workers import FAILED, IDLE, LEFT, REQUEUED, workers_reap

REPO_ROOT = Path(__file__).resolve().parents[2]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


def heartbeat(*, seconds_ago: float, run=None, worker_id="w-1"):
    seen = timezone.now() - datetime.timedelta(seconds=seconds_ago)
    return WorkerHeartbeat.objects.create(
        worker_id=worker_id, hostname="host-a", pid=4242, last_seen_at=seen, run=run
    )


@pytest.fixture
def started_run(create_run, raa, actuary, django_capture_on_commit_callbacks):
    run = create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa))
    with django_capture_on_commit_callbacks():  # queued, but no task sent
        run = workflow_run_queue(run=run, actor=actuary)
    return workflow_run_start(run=run, actor=actuary, by_runner=True)


@pytest.mark.django_db
def test_workers_alive_counts_recent_heartbeats_only(settings):
    settings.TASK_WORKERS = {"DEAD_AFTER": 30}
    heartbeat(seconds_ago=5, worker_id="alive")
    heartbeat(seconds_ago=31, worker_id="dead")
    assert workers_alive() == 1


@pytest.mark.django_db
def test_the_reaper_fails_the_started_run_of_a_dead_worker_and_audits_it(started_run, actuary):
    heartbeat(seconds_ago=300, run=started_run)
    alive = heartbeat(seconds_ago=1, worker_id="w-2")

    [reaped] = workers_reap()

    assert (reaped.worker_id, reaped.outcome, reaped.run_id) == ("w-1", FAILED, str(started_run.pk))
    started_run.refresh_from_db()
    assert started_run.status == WorkflowStatus.FAILED
    assert started_run.error_message.startswith(
        "The worker w-1 on host-a (pid 4242) stopped sending heartbeats at "
    )
    assert "during step 1 of 3: the reaper failed the run." in started_run.error_message
    assert started_run.error_details["exception_type"] == "WorkerLost"
    event = AuditLog.objects.filter(action="workflow_fail").get()
    assert event.resource_id == started_run.pk and event.user == actuary
    assert event.new_value["error_message"] == started_run.error_message
    assert list(WorkerHeartbeat.objects.all()) == [alive]
    assert workers_reap() == []


@pytest.mark.django_db
def test_the_reaper_fails_a_paused_run_too(started_run, actuary):
    run = workflow_run_pause(run=started_run, actor=actuary)
    heartbeat(seconds_ago=300, run=run)
    assert [reaped.outcome for reaped in workers_reap()] == [FAILED]
    run.refresh_from_db()
    assert run.status == WorkflowStatus.FAILED


@pytest.mark.django_db
def test_the_reaper_requeues_a_run_its_dead_worker_had_not_started(
    create_run, raa, actuary, django_capture_on_commit_callbacks
):
    run = create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa))
    with django_capture_on_commit_callbacks():
        run = workflow_run_queue(run=run, actor=actuary)
    heartbeat(seconds_ago=300, run=run)

    with django_capture_on_commit_callbacks() as callbacks:
        [reaped] = workers_reap()

    assert reaped.outcome == REQUEUED
    assert len(callbacks) == 1  # the new task, sent once the reaper commits
    run.refresh_from_db()
    assert run.status == WorkflowStatus.QUEUED
    event = AuditLog.objects.filter(action="workflow_update", resource_id=run.pk).latest("sequence")
    assert event.description.startswith(f"Requeued workflow run “{run}”: the worker w-1")
    assert event.metadata["reaper"] == "requeued"


@pytest.mark.django_db
def test_the_reaper_leaves_ended_runs_and_idle_workers_alone(started_run, actuary):
    heartbeat(seconds_ago=300, worker_id="idle")
    assert [reaped.outcome for reaped in workers_reap()] == [IDLE]
    from workflows.services import workflow_run_cancel

    run = workflow_run_cancel(run=started_run, actor=actuary)
    heartbeat(seconds_ago=300, run=run)
    assert [reaped.outcome for reaped in workers_reap()] == [LEFT]
    run.refresh_from_db()
    assert run.status == WorkflowStatus.CANCELLED
    assert not WorkerHeartbeat.objects.exists()


@pytest.mark.django_db
def test_reap_runs_says_what_it_did(started_run, capsys):
    call_command("reap_runs")
    assert capsys.readouterr().out == "No dead workers. 0 alive.\n"
    heartbeat(seconds_ago=300, run=started_run)
    call_command("reap_runs")
    out = capsys.readouterr().out
    assert out.startswith("Dead worker w-1 on host-a (pid 4242, last heartbeat ")
    assert out.endswith(f"run {started_run.pk} failed.\n")


def test_no_worker_message_says_how_to_start_one():
    assert "python manage.py run_workers" in NO_WORKER_ALIVE


@pytest.mark.django_db
def test_the_dashboard_says_when_no_worker_is_alive(admin_client, settings):
    settings.TASKS = DATABASE_TASKS
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert 'id="dashboard-no-worker"' in page and "run_workers" in page

    heartbeat(seconds_ago=1)
    assert (
        'id="dashboard-no-worker"' not in admin_client.get(reverse("admin:index")).content.decode()
    )


@pytest.mark.django_db
def test_no_banner_when_runs_need_no_worker(admin_client):
    # The test settings run tasks at once (the immediate backend): no worker is needed.
    assert (
        'id="dashboard-no-worker"' not in admin_client.get(reverse("admin:index")).content.decode()
    )


# --- two real workers, one killed ------------------------------------------------------

# A worker whose data validation's first step takes ten minutes for runs named "slow…".
WORKER_SCRIPT = """
import sys, time
import django
django.setup()
from workflows.implementations.reserving import DataValidation
original = DataValidation.load_file
def load_file(self):
    if self.run.name.startswith("slow"):
        time.sleep(600)
    return original(self)
DataValidation.load_file = load_file
from django.core.management import call_command
call_command("run_workers", "--worker-id", sys.argv[1], "--interval", "0.1")
"""


def start_worker(worker_id: str, media_root) -> subprocess.Popen:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DEBUG": "false",
        "SECRET_KEY": "test-only-secret-key",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "MEDIA_ROOT": str(media_root),
        "WORKER_HEARTBEAT_INTERVAL": "0.5",
        "WORKER_DEAD_AFTER": "3",
        "WORKER_REAP_INTERVAL": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, worker_id],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(predicate, *, timeout: float = 60, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_worker_is_reaped_by_the_other_which_runs_the_next_run(
    transactional_db, settings, create_run, raa, actuary, media_root
):
    settings.TASKS = DATABASE_TASKS
    settings.TASK_WORKERS = {"DEAD_AFTER": 3}
    workers = [start_worker(name, media_root) for name in ("worker-a", "worker-b")]
    try:
        wait_for(lambda: workers_alive() == 2, what="two heartbeats")
        slow = create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa), name="slow run")
        workflow_run_queue(run=slow, actor=actuary)  # autocommit: the task row is written
        busy = wait_for(
            lambda: WorkerHeartbeat.objects.filter(run=slow).first(), what="a worker on the run"
        )
        slow.refresh_from_db()
        assert slow.status == WorkflowStatus.RUNNING

        os.kill(busy.pid, signal.SIGKILL)

        def failed():
            slow.refresh_from_db()
            return slow.status == WorkflowStatus.FAILED

        wait_for(failed, timeout=30, what="the reaper to fail the run")
        assert f"The worker {busy.worker_id} on " in slow.error_message
        assert "stopped sending heartbeats" in slow.error_message
        assert AuditLog.objects.filter(action="workflow_fail", resource_id=slow.pk).exists()
        task = DBTaskResult.objects.get(pk=busy.task_id)
        assert task.status == "FAILED"
        [survivor] = WorkerHeartbeat.objects.all()
        assert survivor.worker_id != busy.worker_id
        assert workers_alive() == 1

        quick = create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa), name="quick run")
        workflow_run_queue(run=quick, actor=actuary)

        def finished():
            quick.refresh_from_db()
            return quick.is_terminal or quick.status == WorkflowStatus.WAITING_APPROVAL

        wait_for(finished, timeout=60, what="the survivor to execute the next run")
        assert quick.status in (WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
    # The survivor stopped cleanly: its heartbeat went with it.
    assert not WorkerHeartbeat.objects.exists()
