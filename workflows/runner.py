"""Execute a queued workflow run: claim it once, run its steps with visible progress, end it.

The worker's task (`workflows.tasks`), the `run_workflow` command and the demo data
all come through `execute_run`:

1. Claim: in one transaction the run is locked (`select_for_update`; on SQLite an
   exclusive transaction) and started only if it is still queued, so a task
   delivered twice, or picked up by two workers, executes the run at most once; the
   later delivery sees it is no longer queued and returns.
   Once its input parameters are checked again, the run's provenance is recorded:
   the id, version and SHA-256 of every input artefact, the parameters' hash, and the
   versions of the code and libraries (`workflows.provenance`).
2. Steps: the implementation's steps run in order outside any long transaction.
   Before each step the status is read again from the database: a cancelled (or
   failed) run stops there; a paused one waits until it is resumed or cancelled.
   After each step current_step and the step's duration (metrics) are committed,
   so progress shows while the run goes on.
3. End: completed with its output_summary, or, when the results need sign-off,
   waiting_approval with a workflow_approval requested in the name of the user who
   queued the run (the reviewer who decides must be someone else); a step that
   raises fails the run with error_message and error_details (exception type,
   message, traceback, the step).

Every state change goes through `workflows.services` (and, for the sign-off request,
the app that provides the `run_awaiting_approval` hook: `approvals`), acting as the
user who queued the run.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from django_tasks_db.utils import exclusive_transaction

from records.exceptions import Conflict, DomainError, InvalidInput
from records.formatting import status_label
from records.services import lock
from records.transactions import audited_transaction

from .choices import TERMINAL_STATUSES, WorkflowStatus
from .hooks import run_awaiting_approval
from .models import WorkflowRun
from .provenance import run_provenance
from .registry import implementation_for, validate_input_params
from .services import (
    workflow_run_complete,
    workflow_run_fail,
    workflow_run_record_provenance,
    workflow_run_start,
    workflow_run_update_progress,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from .implementations.base import Step, WorkflowImplementation

logger = logging.getLogger(__name__)

# How often a paused run's worker looks whether it was resumed or cancelled.
PAUSE_POLL_SECONDS = 2.0
# Tracebacks are kept whole up to this size; a longer one keeps its end (the raise).
MAX_TRACEBACK_CHARS = 20_000

SKIPPED = "skipped"
# The pseudo-step that checks input_params again before the first real step.
VALIDATE_STEP = "validate_input"
VALIDATE_LABEL = "Check the input parameters"
# The pseudo-step after the last one: summary, sign-off request or completion.
FINISH_STEP = "finish"
FINISH_LABEL = "Record the results"

RUN_MISSING = "Workflow run {run_id} does not exist (or was deleted): nothing to execute."
RUN_NOT_QUEUED = (
    "Workflow run “{run}” is {status}, not queued: another delivery of its task, or "
    "another worker, has it already (a run is executed at most once)."
)
RUN_NO_ACTOR = (
    "Workflow run “{run}” cannot be started: neither the user who queued it nor the "
    "engagement's lead actuary may work on it ({reason})."
)
RUN_NOT_STARTABLE = "Could not start the run: {reason}"
RUN_NO_IMPLEMENTATION = "No implementation runs {workflow_type} workflows."
STEP_FAILED = "Step {number} of {count} ({label}) failed: {message}"
INPUT_FAILED = "The input check before step 1 of {count} failed: {message}"
FINISH_FAILED = "Recording the results after step {count} of {count} failed: {message}"
WORKER_STOPPED = "The worker stopped during step {number} of {count} ({label}): {kind}."
STOPPED_BY_STATUS = "Stopped before step {number} of {count}: the run is {status}."
STOPPED_AT_END = "Stopped after the last step ({count} of {count}): the run is {status}."


@dataclass(frozen=True)
class RunReport:
    """How one execution ended: the run's final status, or `skipped` if not executed."""

    run_id: str
    outcome: str
    message: str = ""
    approval_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (the task's return value)."""
        return asdict(self)


Listener = Callable[[str], None]


def execute_run(run_id: Any, *, listener: Listener | None = None) -> RunReport:
    """Execute the queued run `run_id` once; return how it ended.

    `listener` (optional) is told each step as it starts and ends, for an operator
    watching (`run_workflow`). Refusals and failures are recorded on the run, not
    raised; only an interruption of the worker itself (KeyboardInterrupt, SystemExit)
    propagates, after the run is marked failed.
    """
    say = listener or (lambda message: None)
    claimed = _claim(run_id)
    if isinstance(claimed, RunReport):
        say(claimed.message)
        return claimed
    run, actor = claimed
    return _Execution(run, actor, say).execute()


# --- claiming --------------------------------------------------------------------------


def _claim(run_id: Any) -> tuple[WorkflowRun, AbstractUser] | RunReport:
    """Start the run if it is still queued; else return why it is skipped."""
    try:
        with exclusive_transaction():
            run = WorkflowRun.objects.select_for_update(no_key=True).filter(pk=run_id).first()
            if run is None:
                message = RUN_MISSING.format(run_id=run_id)
                logger.warning(message)
                return RunReport(str(run_id), SKIPPED, message)
            if run.status != WorkflowStatus.QUEUED:
                message = RUN_NOT_QUEUED.format(run=run, status=status_label(run))
                logger.info(message)
                return RunReport(str(run.pk), SKIPPED, message)
            actor = run.queued_by or run.engagement.lead_actuary
            return workflow_run_start(run=run, actor=actor, by_runner=True), actor
    except DomainError as refusal:
        # The queuer left the team, or the engagement closed, while the run was queued.
        return _fail_unstarted(run_id, refusal)


def _fail_unstarted(run_id: Any, refusal: DomainError) -> RunReport:
    """Fail a queued run that could not be started, acting as its queuer or the lead."""
    run = WorkflowRun.objects.select_related("queued_by", "engagement__lead_actuary").get(pk=run_id)
    message = RUN_NOT_STARTABLE.format(reason=refusal.message)
    details = {"step": "start", "exception_type": _type_name(refusal), "message": refusal.message}
    for actor in dict.fromkeys(filter(None, (run.queued_by, run.engagement.lead_actuary))):
        try:
            run = workflow_run_fail(
                run=run, actor=actor, error_message=message, error_details=details, by_runner=True
            )
        except DomainError as error:
            refusal = error
            continue
        logger.error("Workflow run %s failed before it started: %s", run.pk, refusal.message)
        return RunReport(str(run.pk), run.status, message)
    message = RUN_NO_ACTOR.format(run=run, reason=refusal.message)
    logger.error(message)
    return RunReport(str(run.pk), SKIPPED, message)


# --- executing -------------------------------------------------------------------------


class _Execution:
    """One execution of a claimed (running) run."""

    def __init__(self, run: WorkflowRun, actor: AbstractUser, say: Listener):
        self.run = run
        self.actor = actor
        self.say = say
        self.started = time.perf_counter()
        self.step_metrics: list[dict[str, Any]] = []
        implementation = implementation_for(run.workflow_type)
        self.implementation_class = implementation
        self.steps: tuple[Step, ...] = implementation.steps if implementation else ()

    def execute(self) -> RunReport:
        run, count = self.run, len(self.steps)
        self.say(f"Started workflow run “{run}” ({run.workflow_type}, {count} steps).")
        if self.implementation_class is None:
            problem = InvalidInput(RUN_NO_IMPLEMENTATION.format(workflow_type=run.workflow_type))
            return self._fail(problem, number=0, name=VALIDATE_STEP, label=VALIDATE_LABEL)
        try:
            params = validate_input_params(
                workflow_type=run.workflow_type,
                input_params=run.input_params,
                engagement=run.engagement,
            )
        except InvalidInput as error:
            return self._fail(error, number=0, name=VALIDATE_STEP, label=VALIDATE_LABEL)
        try:
            self.run = run = workflow_run_record_provenance(
                run=run, actor=self.actor, provenance=run_provenance(run, params)
            )
        except (DomainError, LookupError) as error:
            return self._fail(error, number=0, name=VALIDATE_STEP, label=VALIDATE_LABEL)
        implementation = self.implementation_class(run=run, actor=self.actor, params=params)

        for number, step in enumerate(self.steps, start=1):
            status = self._status_before_step()
            if status != WorkflowStatus.RUNNING:
                return self._stopped(status, number)
            self.say(f"[{number}/{count}] {step.label} …")
            step_started = time.perf_counter()
            try:
                getattr(implementation, step.name)()
            except (KeyboardInterrupt, SystemExit) as interruption:
                self._record_interruption(interruption, number, step)
                raise
            except Exception as error:
                self._add_step_metrics(step, step_started, failed=True)
                return self._fail(error, number=number, name=step.name, label=step.label)
            seconds = self._add_step_metrics(step, step_started)
            self.say(f"[{number}/{count}] {step.label}: done in {seconds:.2f} s")
            stopped = self._commit_progress(number)
            if stopped is not None:
                return stopped
        return self._finish(implementation)

    def _commit_progress(self, number: int) -> RunReport | None:
        """Commit current_step and the metrics; return a report if the run was stopped."""
        while True:
            try:
                self.run = workflow_run_update_progress(
                    run=self.run,
                    actor=self.actor,
                    current_step=number,
                    step_count=len(self.steps),
                    metrics=self._metrics(),
                    by_runner=True,
                )
                return None
            except Conflict:
                # Paused, cancelled or failed while the step ran: wait out a pause, and
                # stop otherwise (what the step wrote stays, linked to the run).
                status = self._status_before_step()
                if status != WorkflowStatus.RUNNING:
                    return self._stopped(status, number + 1)

    # -- ending -------------------------------------------------------------------------

    def _finish(self, implementation: WorkflowImplementation) -> RunReport:
        """End the run: completed, or waiting for its sign-off; stopped if cancelled."""
        count = len(self.steps)
        try:
            summary = implementation.output_summary()
            notes = (
                implementation.approval_notes() if self.implementation_class.needs_approval else ""
            )
        except Exception as error:
            return self._fail(error, number=count, name=FINISH_STEP, label=FINISH_LABEL)
        while True:
            status = self._status_before_step()
            if status != WorkflowStatus.RUNNING:
                return self._stopped(status, count + 1)
            try:
                if self.implementation_class.needs_approval:
                    return self._await_approval(summary, notes)
                self.run = workflow_run_complete(
                    run=self.run, actor=self.actor, output_summary=summary, by_runner=True
                )
                break
            except DomainError as refusal:
                if self._status() == WorkflowStatus.RUNNING:
                    # Refused for another reason than a pause or cancel (e.g. the
                    # engagement closed): the run cannot end well.
                    return self._fail(refusal, number=count, name=FINISH_STEP, label=FINISH_LABEL)
                # Paused or cancelled between the status check and the move: look again.
        message = f"Completed in {self._total_seconds():.2f} s."
        self.say(message)
        return RunReport(str(self.run.pk), WorkflowStatus.COMPLETED, message)

    def _await_approval(self, summary: dict[str, Any], notes: str) -> RunReport:
        """Keep the results on the run and ask for its workflow approval (run → waiting)."""
        with audited_transaction():
            # The decision's lock order: the engagement first, then its run.
            lock(self.run.engagement)
            self.run = workflow_run_update_progress(
                run=self.run,
                actor=self.actor,
                current_step=len(self.steps),
                output_summary=summary,
                by_runner=True,
            )
            approval = run_awaiting_approval(
                run=self.run, actor=self.actor, notes=notes, trace_id=self.run.trace_id
            )
        self.run.refresh_from_db()
        message = (
            f"Waiting for approval after {self._total_seconds():.2f} s: workflow approval "
            f"{approval.pk} requested by {self.actor}."
        )
        self.say(message)
        return RunReport(
            str(self.run.pk), WorkflowStatus.WAITING_APPROVAL, message, str(approval.pk)
        )

    def _fail(self, error: BaseException, *, number: int, name: str, label: str) -> RunReport:
        """Fail the run with what went wrong, unless it was cancelled meanwhile."""
        status = self._status()
        if status in TERMINAL_STATUSES:
            return self._stopped(status, number)
        count = len(self.steps)
        template = {VALIDATE_STEP: INPUT_FAILED, FINISH_STEP: FINISH_FAILED}.get(name, STEP_FAILED)
        message = template.format(
            number=number, count=count, label=label, message=_error_text(error)
        )
        details = {
            "step": name,
            "step_label": label,
            "step_number": number,
            "step_count": count,
            "exception_type": _type_name(error),
            "message": str(error),
            "traceback": _traceback_text(error),
        }
        if self.step_metrics and status == WorkflowStatus.RUNNING:
            # Keep the durations of the steps that ran, the failing one included.
            self.run = workflow_run_update_progress(
                run=self.run,
                actor=self.actor,
                current_step=count if name == FINISH_STEP else number - 1,
                metrics=self._metrics(),
                by_runner=True,
            )
        self.run = workflow_run_fail(
            run=self.run,
            actor=self.actor,
            error_message=message,
            error_details=details,
            by_runner=True,
        )
        logger.warning("Workflow run %s failed: %s", self.run.pk, message)
        self.say(message)
        return RunReport(str(self.run.pk), WorkflowStatus.FAILED, message)

    def _stopped(self, status: str, number: int) -> RunReport:
        template = STOPPED_AT_END if number > len(self.steps) else STOPPED_BY_STATUS
        message = template.format(number=number, count=len(self.steps), status=status)
        logger.info("Workflow run %s: %s", self.run.pk, message)
        self.say(message)
        return RunReport(str(self.run.pk), status, message)

    def _record_interruption(self, interruption: BaseException, number: int, step: Step) -> None:
        """Fail the run the worker is abandoning, so it is not left running for ever."""
        message = WORKER_STOPPED.format(
            number=number, count=len(self.steps), label=step.label, kind=_type_name(interruption)
        )
        try:
            workflow_run_fail(
                run=self.run,
                actor=self.actor,
                error_message=message,
                error_details={
                    "step": step.name,
                    "step_label": step.label,
                    "step_number": number,
                    "step_count": len(self.steps),
                    "exception_type": _type_name(interruption),
                    "message": str(interruption),
                },
                by_runner=True,
            )
        except Exception:
            logger.exception("Could not record the interruption of workflow run %s", self.run.pk)

    # -- status and metrics -------------------------------------------------------------

    def _status(self) -> str:
        """Return the run's status as committed in the database now."""
        return WorkflowRun.objects.values_list("status", flat=True).get(pk=self.run.pk)

    def _status_before_step(self) -> str:
        """Return the status, waiting while the run is paused."""
        status = self._status()
        if status == WorkflowStatus.PAUSED:
            self.say("Paused: waiting until the run is resumed or cancelled.")
        while status == WorkflowStatus.PAUSED:
            _sleep(PAUSE_POLL_SECONDS)
            status = self._status()
        return status

    def _add_step_metrics(self, step: Step, started: float, *, failed: bool = False) -> float:
        seconds = time.perf_counter() - started
        entry = {"name": step.name, "label": step.label, "seconds": round(seconds, 6)}
        if failed:
            entry["failed"] = True
        self.step_metrics.append(entry)
        return seconds

    def _total_seconds(self) -> float:
        return time.perf_counter() - self.started

    def _metrics(self) -> dict[str, Any]:
        return {
            "steps": list(self.step_metrics),
            "step_seconds": {entry["name"]: entry["seconds"] for entry in self.step_metrics},
            "total_seconds": round(self._total_seconds(), 6),
            "queued_by": str(self.actor),
        }


# --- replaying ---------------------------------------------------------------------------


def replay_steps(
    run: WorkflowRun, *, actor: AbstractUser, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """Execute the run's steps again in replay mode (nothing stored); return what they made.

    Return the outputs (name, file name, SHA-256 of the bytes) and, if a step raised,
    (step number and label, error text). The run itself is not touched: the caller
    (`workflows.services.workflow_run_replay`) checked it and records the outcome.
    """
    implementation_class = implementation_for(run.workflow_type)
    implementation = implementation_class(run=run, actor=actor, params=params, replay=True)
    count = len(implementation_class.steps)
    for number, step in enumerate(implementation_class.steps, start=1):
        try:
            getattr(implementation, step.name)()
        except Exception as error:
            logger.warning("Replay of workflow run %s failed at step %s", run.pk, step.name)
            return implementation.artefacts, (
                f"{number} of {count} ({step.label})",
                _error_text(error),
            )
    return implementation.artefacts, None


def _sleep(seconds: float) -> None:
    """Wait between looks at a paused run (a seam tests replace)."""
    time.sleep(seconds)


def _type_name(error: BaseException) -> str:
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _error_text(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return text if isinstance(error, DomainError) else f"{type(error).__name__}: {text}"


def _traceback_text(error: BaseException) -> str:
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= MAX_TRACEBACK_CHARS else "…" + text[-MAX_TRACEBACK_CHARS:]
