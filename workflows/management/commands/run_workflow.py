"""Run one workflow run in the foreground, for operators, and print its progress.

A pending run is queued first, as the user given with --user (default: the user who
created it), without sending it to the task queue; a queued run is executed as is.
The run then goes through the same code as the background worker (`workflows.runner`):
the same claim (if a worker got to it first, this command says so and stops), the
same steps, progress, sign-off request and failure capture.

Exit status: 0 when the run completed or now waits for approval; 1 when it failed,
was cancelled, could not be queued or executed, or does not exist.
"""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from records.exceptions import DomainError
from records.formatting import status_label
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.runner import SKIPPED, execute_run
from workflows.services import workflow_run_queue

NO_SUCH_RUN = "No workflow run with id {run_id}."
NO_SUCH_USER = "No active user named {username!r}."
NO_QUEUER = "Workflow run “{run}” has no creator on record: name who queues it with --user."
NOT_RUNNABLE = (
    "Workflow run “{run}” is {status}: only pending or queued runs can be run "
    "(a run is executed at most once)."
)
QUEUE_REFUSED = "Cannot queue workflow run “{run}”: {reason}"
QUEUED = "Queued workflow run “{run}” ({run_id}) as {user}."
NOT_EXECUTED = "Workflow run “{run}” was not executed: {reason}"
ENDED_BADLY = "Workflow run “{run}” {status}: {message}"
SUCCEEDED = "Workflow run “{run}” is {status}."
# Statuses after which the command exits 0.
SUCCESS_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL})


class Command(BaseCommand):
    help = (
        "Run one workflow run in the foreground (queueing it first if pending) and print "
        "its progress; exit 1 unless it completes or waits for approval."
    )

    def add_arguments(self, parser):
        """Declare the run id and --user."""
        parser.add_argument("run_id", help="The id (UUID) of the workflow run.")
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help="Who queues a pending run (and so acts in it); default: its creator.",
        )

    def handle(self, *args, run_id, user=None, **options):
        """Queue the run if pending, execute it, print how it ended."""
        run = self._run(run_id)
        if run.status == WorkflowStatus.PENDING:
            actor = self._queuer(run, user)
            try:
                run = workflow_run_queue(run=run, actor=actor, enqueue=False)
            except DomainError as refusal:
                raise CommandError(QUEUE_REFUSED.format(run=run, reason=refusal.message)) from None
            self.stdout.write(QUEUED.format(run=run, run_id=run.pk, user=actor))
        elif run.status != WorkflowStatus.QUEUED:
            raise CommandError(NOT_RUNNABLE.format(run=run, status=status_label(run)))

        report = execute_run(run.pk, listener=self.stdout.write)
        if report.outcome == SKIPPED:
            raise CommandError(NOT_EXECUTED.format(run=run, reason=report.message))
        if report.outcome not in SUCCESS_STATUSES:
            raise CommandError(
                ENDED_BADLY.format(
                    run=run, status=_outcome_words(report.outcome), message=report.message
                )
            )
        self.stdout.write(
            self.style.SUCCESS(SUCCEEDED.format(run=run, status=_outcome_words(report.outcome)))
        )

    def _run(self, run_id: str) -> WorkflowRun:
        try:
            run = WorkflowRun.objects.filter(pk=uuid.UUID(run_id)).first()
        except ValueError:
            run = None
        if run is None:
            raise CommandError(NO_SUCH_RUN.format(run_id=run_id))
        return run

    def _queuer(self, run: WorkflowRun, username: str | None):
        if username is None:
            if run.created_by is None:
                raise CommandError(NO_QUEUER.format(run=run))
            return run.created_by
        actor = get_user_model().objects.filter(username=username, is_active=True).first()
        if actor is None:
            raise CommandError(NO_SUCH_USER.format(username=username))
        return actor


def _outcome_words(outcome: str) -> str:
    """Return a run's outcome as people read it ("waiting for approval", not its code)."""
    return str(dict(WorkflowStatus.choices).get(outcome, outcome)).lower()
