"""The reaper: settle the work of workers that died (no heartbeat for the dead-after limit).

A worker (`manage.py run_workers`) refreshes its heartbeat every few seconds, even
while a step runs. One that stops without cleaning up (`kill -9`, out of memory, power
loss) leaves its row behind, and its run as it was. The reaper, run by every live
worker every WORKER_REAP_INTERVAL seconds and by `manage.py reap_runs`, applies one
rule to each dead worker's run (docs/operators/workers.md):

- started (running or paused): **failed**, acting as the user who queued it (else the
  one who started it, else the lead actuary), with WORKER_LOST as its error message in
  the run and in the audit log. A half-executed run is never resumed or restarted: its
  steps may have written artefacts already. Queue a new run to compute it again.
- still queued (the worker died after taking the task, before starting the run):
  **requeued**: a new task is sent once the reaper commits, and the audit log records it.
- ended, or waiting for approval: left as it is.

The dead worker's task row is marked failed and its heartbeat row deleted. Heartbeats
are taken with SKIP LOCKED, so reapers running at once on several workers never
settle one worker twice.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from audit.choices import AuditAction, Severity
from audit.services import audit_record
from records.exceptions import DomainError
from records.services import lock
from records.transactions import audited_transaction

from ..choices import WorkflowStatus
from ..models import WorkerHeartbeat, WorkflowRun
from ..selectors import worker_settings, workers_dead
from .runs import _enqueue_run, workflow_run_fail

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

logger = logging.getLogger(__name__)

WORKER_LOST = (
    "The worker {worker} on {host} (pid {pid}) stopped sending heartbeats at {last_seen} "
    "(none for over {dead_after:g} s) during step {step} of {count}: the reaper failed the "
    "run. Queue a new run to compute it again."
)
RUN_REQUEUED = (
    "Requeued workflow run “{run}”: the worker {worker} on {host} (pid {pid}) took its task "
    "and stopped sending heartbeats at {last_seen}, before starting it."
)
RUN_NOBODY_TO_FAIL = (
    "Could not fail workflow run “{run}” whose worker {worker} died: neither the user who "
    "queued it, nor the one who started it, nor the lead actuary may ({reason})."
)
TASK_EXCEPTION = "workflows.services.workers.WorkerLost"

FAILED = "failed"
REQUEUED = "requeued"
LEFT = "left"
IDLE = "idle"


@dataclass(frozen=True)
class ReapedWorker:
    """One dead worker the reaper settled, and what it did with its run."""

    worker_id: str
    hostname: str
    pid: int
    last_seen_at: datetime.datetime
    run_id: str | None
    outcome: str
    message: str = ""


def workers_reap(*, now: datetime.datetime | None = None) -> list[ReapedWorker]:
    """Settle every worker silent for longer than the dead-after limit; return what was done.

    Each dead worker is settled in a transaction of its own: its heartbeat row locked
    (skipped if another reaper has it), its run locked, then the audit event.
    """
    reaped = []
    while True:
        with audited_transaction():
            heartbeat = (
                workers_dead(now=now)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("run__engagement__lead_actuary", "run__queued_by")
                .first()
            )
            if heartbeat is None:
                return reaped
            outcome = _settle(heartbeat, now=now or timezone.now())
            heartbeat.delete()
        logger.warning(
            "Reaped dead %s (last heartbeat %s): run %s %s. %s",
            heartbeat,
            heartbeat.last_seen_at.isoformat(),
            outcome.run_id or "-",
            outcome.outcome,
            outcome.message,
        )
        reaped.append(outcome)


def _settle(heartbeat: WorkerHeartbeat, *, now: datetime.datetime) -> ReapedWorker:
    """Apply the rule to the dead worker's run and task; return what was done."""
    outcome, message = IDLE, ""
    run = heartbeat.run
    if run is not None:
        run = lock(run)
        if run.status in (WorkflowStatus.RUNNING, WorkflowStatus.PAUSED):
            outcome, message = _fail(run, heartbeat)
        elif run.status == WorkflowStatus.QUEUED:
            outcome, message = REQUEUED, _requeue(run, heartbeat)
        else:
            outcome = LEFT
    if heartbeat.task_id is not None:
        DBTaskResult.objects.filter(pk=heartbeat.task_id, status="RUNNING").update(
            status="FAILED",
            finished_at=now,
            exception_class_path=TASK_EXCEPTION,
            traceback=message or f"The {heartbeat} stopped sending heartbeats.",
        )
    return ReapedWorker(
        worker_id=heartbeat.worker_id,
        hostname=heartbeat.hostname,
        pid=heartbeat.pid,
        last_seen_at=heartbeat.last_seen_at,
        run_id=str(run.pk) if run is not None else None,
        outcome=outcome,
        message=message,
    )


def _fail(run: WorkflowRun, heartbeat: WorkerHeartbeat) -> tuple[str, str]:
    """Fail the started run of a dead worker, as the first of its people who may."""
    message = WORKER_LOST.format(
        worker=heartbeat.worker_id,
        host=heartbeat.hostname,
        pid=heartbeat.pid,
        last_seen=f"{heartbeat.last_seen_at:%Y-%m-%d %H:%M:%S %Z}",
        dead_after=worker_settings()["DEAD_AFTER"],
        step=min(run.current_step + 1, run.step_count) if run.step_count else 0,
        count=run.step_count,
    )
    details = {
        "step": "worker_lost",
        "step_number": run.current_step + 1,
        "step_count": run.step_count,
        "exception_type": "WorkerLost",
        "message": message,
        "worker_id": heartbeat.worker_id,
        "hostname": heartbeat.hostname,
        "pid": heartbeat.pid,
        "last_heartbeat": heartbeat.last_seen_at.isoformat(),
    }
    refusal: DomainError | None = None
    for actor in _people_of(run):
        try:
            workflow_run_fail(
                run=run, actor=actor, error_message=message, error_details=details, by_runner=True
            )
        except DomainError as error:
            refusal = error
            continue
        return FAILED, message
    problem = RUN_NOBODY_TO_FAIL.format(
        run=run, worker=heartbeat.worker_id, reason=refusal.message if refusal else "nobody"
    )
    logger.error(problem)
    return LEFT, problem


def _requeue(run: WorkflowRun, heartbeat: WorkerHeartbeat) -> str:
    """Send a new task for a queued run whose task died with its worker; audit it."""
    message = RUN_REQUEUED.format(
        run=run,
        worker=heartbeat.worker_id,
        host=heartbeat.hostname,
        pid=heartbeat.pid,
        last_seen=f"{heartbeat.last_seen_at:%Y-%m-%d %H:%M:%S %Z}",
    )
    audit_record(
        action=AuditAction.WORKFLOW_UPDATE,
        resource=run,
        user=run.queued_by,
        description=message,
        severity=Severity.WARNING,
        metadata={"reaper": REQUEUED, "worker_id": heartbeat.worker_id},
    )
    transaction.on_commit(partial(_enqueue_run, run.pk))
    return message


def _people_of(run: WorkflowRun) -> list[AbstractUser]:
    """Return who may record the run's failure, in order: queuer, starter, lead actuary."""
    people = (run.queued_by, run.started_by, run.engagement.lead_actuary)
    return list(dict.fromkeys(person for person in people if person is not None))
