"""Every write to workflow runs: create, edit, lifecycle moves, progress, provenance.

Team members with a working role (lead, actuary, reviewer) and superusers run an
engagement's workflows. Each function locks the run, checks the actor, calls the
run's lifecycle method, saves with a history change reason and records the audit
event (workflow_create, workflow_update for edits, queueing, pausing, resuming and
waiting for approval; workflow_start/complete/fail/cancel); progress updates are
kept by the history only, so a long run does not flood the AuditLog.

A run waiting for approval is released only by the decision on its
workflow_approval: the approval services pass that decision as an `ApprovalOutcome`
(plain data) to `workflow_run_conclude_approval`, never completing it directly.

Runs of a type with an implementation (`workflows.registry`) have their input_params
checked when created, edited and queued (missing parameters are refused like bad
ones: there are no placeholder runs of these types); queueing one enqueues its
background task (`workflows.tasks`) once the transaction commits, and the worker
drives it through these same services (`workflows.runner`, with `by_runner=True`).
Nobody else starts such a run or records its progress, results or failure, through
any door (API, admin, scripts): a run must not be a status someone types in. The
runner records each run's provenance when it starts (inputs, parameters, code and
library versions).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import transaction

from audit.choices import AuditAction, Severity
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import Conflict, InvalidInput
from records.formatting import status_label
from records.services import (
    apply_changes,
    changes,
    create_and_record,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    validate,
)
from records.transactions import audited_transaction

from ..choices import WorkflowStatus
from ..models import WorkflowRun
from ..registry import implementation_for, runnable_types, validate_input_params
from ..selectors import workflow_run_require_awaiting_approval

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser


logger = logging.getLogger(__name__)

# Fields a plain edit may change while the run has not started.
EDITABLE_FIELDS = frozenset(
    {
        "workflow_type",
        "name",
        "description",
        "period",
        "step_count",
        "input_params",
        "agent_name",
    }
)
EDITABLE_STATUSES = frozenset({WorkflowStatus.PENDING, WorkflowStatus.QUEUED})
NEW_RUNS = "workflow runs"
RUN_WORK = "work on its workflow runs"

RUN_NOT_EDITABLE = (
    "Cannot edit workflow run “{run}”: it is {status} (a run may be edited only "
    "while pending or queued; its record is kept as it ran)."
)
NOT_EDITABLE_REASON = "they are set by the run itself"
RUN_AWAITS_APPROVAL = (
    "Cannot complete workflow run “{run}” directly: it is waiting for approval; "
    "decide its workflow approval instead."
)
RUN_ERROR_REQUIRED = "Say why workflow run “{run}” failed: an error message is required."
RUN_NOT_RUNNING = "Cannot record progress of workflow run “{run}”: it is {status}, not running."
RUN_STEP_OUT_OF_RANGE = (
    "Step {step} is out of range for workflow run “{run}” ({count} steps): "
    "the current step must be between 0 and the step count."
)
RUN_REJECTED = "Rejected by {approver}: {reason}"
RUN_NOT_RUNNABLE = (
    "Cannot queue workflow run “{run}”: the back office does not run {workflow_type} "
    "workflows itself (it runs {runnable}); record the work done elsewhere with start, "
    "progress and complete instead."
)
RUN_NOT_RUNNABLE_EDIT = (
    "Cannot make queued workflow run “{run}” a {workflow_type} run: the back office does not "
    "run {workflow_type} workflows itself (it runs {runnable})."
)
RUN_NOT_DELETABLE = (
    "Cannot delete workflow run “{run}”: it is {status}; cancel it first (only finished "
    "runs may be deleted)."
)
RUN_REPORTED_BY_RUNNER = (
    "Cannot {verb} workflow run “{run}” by hand: the back office runs {workflow_type} "
    "workflows itself, and only its runner {does}."
)
RUNNER_STARTS = "starts them (queue the run instead)"
RUNNER_RECORDS = "records their {what}"
RUN_PROVENANCE_RECORDED = (
    "The provenance of workflow run “{run}” is already recorded: it is what the run ran "
    "with, and it never changes."
)
RERUN_ELSEWHERE = (
    "Workflow run “{run}” belongs to another engagement than “{engagement}”: a re-run "
    "stays in the engagement of the run it re-runs."
)
RUN_PROVENANCE_NOT_RUNNING = (
    "Cannot record the provenance of workflow run “{run}”: it is {status}, not running."
)


@audited_transaction
def workflow_run_create(
    *,
    engagement: Engagement,
    workflow_type: str,
    name: str,
    actor: AbstractUser,
    description: str = "",
    period: str = "",
    step_count: int = 0,
    input_params: dict | None = None,
    agent_name: str = "",
    trace_id: str | None = None,
    rerun_of: WorkflowRun | None = None,
) -> WorkflowRun:
    """Create a pending run in an engagement that still accepts work.

    A run of a type the runner executes needs valid input_params from the start.
    `rerun_of` is the run of the same engagement this one re-runs with changes
    (`workflow_run_rerun`).
    """
    engagement = lock(engagement)
    if rerun_of is not None and rerun_of.engagement_id != engagement.pk:
        raise InvalidInput(RERUN_ELSEWHERE.format(run=rerun_of, engagement=engagement))
    engagement_require_member(engagement=engagement, user=actor, verb="add workflow runs to")
    engagement_require_open(engagement=engagement, what=NEW_RUNS)
    implementation = implementation_for(workflow_type)
    if implementation is not None or input_params:
        input_params = validate_input_params(
            workflow_type=workflow_type, input_params=input_params or {}, engagement=engagement
        )
    if implementation is not None and not step_count:
        step_count = len(implementation.steps)
    run = WorkflowRun(
        engagement=engagement,
        workflow_type=workflow_type,
        name=name,
        description=description,
        period=period,
        step_count=step_count,
        input_params=input_params or {},
        agent_name=agent_name,
        trace_id=trace_id,
        rerun_of=rerun_of,
    )
    validate(run)
    create_and_record(
        run,
        actor=actor,
        action=AuditAction.WORKFLOW_CREATE,
        reason="Created",
        description=f"Workflow run created: {run}",
    )
    return run


@audited_transaction
def workflow_run_update(
    *, run: WorkflowRun, actor: AbstractUser, data: dict[str, Any]
) -> WorkflowRun:
    """Change a pending or queued run's definition (type, name, inputs, …).

    A changed type or changed inputs are checked as at creation; a queued run may
    only become another type the runner can execute.
    """
    run = lock(run)
    engagement_require_member(engagement=run.engagement, user=actor, verb="edit workflow runs of")
    if run.status not in EDITABLE_STATUSES:
        raise Conflict(RUN_NOT_EDITABLE.format(run=run, status=status_label(run)))
    before = snapshot(run)
    apply_changes(run, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    if {"workflow_type", "input_params"} & set(changes(before, snapshot(run))[1]):
        _check_definition(run)
    old, new = changes(before, snapshot(run))
    if new:
        validate(run)
        save_edit_and_record(run, actor=actor, action=AuditAction.WORKFLOW_UPDATE, old=old, new=new)
    return run


@audited_transaction
def workflow_run_queue(
    *, run: WorkflowRun, actor: AbstractUser, enqueue: bool = True
) -> WorkflowRun:
    """Queue the run for a worker: pending → queued; its task is enqueued on commit.

    Refused for a type the runner cannot execute, and for input parameters that no
    longer hold (an artefact deleted since the run was created). The worker acts for
    `actor` (recorded as queued_by): it starts the run as them and asks for its
    sign-off in their name. With `enqueue=False` no task is sent: the caller executes
    the run itself (`run_workflow`, the demo data).
    """
    run = lock(run)
    engagement_require_member(engagement=run.engagement, user=actor, verb="queue workflow runs of")
    run.check_move("queue")
    engagement_require_open(engagement=run.engagement, what=RUN_WORK)
    if implementation_for(run.workflow_type) is None:
        raise Conflict(
            RUN_NOT_RUNNABLE.format(
                run=run, workflow_type=run.workflow_type, runnable=", ".join(runnable_types())
            )
        )
    validate_input_params(
        workflow_type=run.workflow_type, input_params=run.input_params, engagement=run.engagement
    )
    run.queued_by = actor
    move_and_record(run, "queue", actor=actor, action=AuditAction.WORKFLOW_UPDATE)
    if enqueue:
        # Only once the queued state is committed can a worker on another connection see it.
        transaction.on_commit(partial(_enqueue_run, run.pk))
    return run


def workflow_run_start(
    *, run: WorkflowRun, actor: AbstractUser, by_runner: bool = False
) -> WorkflowRun:
    """Start the run and record who started it: pending or queued → running.

    A run of a type the runner executes is started by the runner only (`by_runner`).
    """
    return _run_move(
        run,
        "start",
        actor=actor,
        action=AuditAction.WORKFLOW_START,
        needs_open_engagement=True,
        runner_only=None if by_runner else ("start", RUNNER_STARTS),
    )


def workflow_run_pause(*, run: WorkflowRun, actor: AbstractUser) -> WorkflowRun:
    """Pause the run: running → paused."""
    return _run_move(run, "pause", actor=actor, action=AuditAction.WORKFLOW_UPDATE)


def workflow_run_resume(*, run: WorkflowRun, actor: AbstractUser) -> WorkflowRun:
    """Resume the run: paused → running."""
    return _run_move(
        run, "resume", actor=actor, action=AuditAction.WORKFLOW_UPDATE, needs_open_engagement=True
    )


def workflow_run_await_approval(*, run: WorkflowRun, actor: AbstractUser) -> WorkflowRun:
    """Hold the finished run for sign-off: running → waiting_approval."""
    return _run_move(run, "await_approval", actor=actor, action=AuditAction.WORKFLOW_UPDATE)


def workflow_run_complete(
    *,
    run: WorkflowRun,
    actor: AbstractUser,
    output_summary: dict | None = None,
    by_runner: bool = False,
) -> WorkflowRun:
    """Complete a running run, optionally with its results summary: running → completed.

    The results of a type the runner executes are recorded by the runner only.
    """
    return _run_move(
        run,
        "complete",
        actor=actor,
        action=AuditAction.WORKFLOW_COMPLETE,
        refuse_waiting=True,
        runner_only=None if by_runner else ("complete", RUNNER_RECORDS.format(what="results")),
        output_summary=output_summary,
    )


def workflow_run_fail(
    *,
    run: WorkflowRun,
    actor: AbstractUser,
    error_message: str,
    error_details: dict | None = None,
    by_runner: bool = False,
) -> WorkflowRun:
    """End the run as failed with what went wrong (any non-terminal state → failed).

    The failure of a type the runner executes is recorded by the runner only (cancel
    stops such a run by hand).
    """
    if not error_message or not error_message.strip():
        raise InvalidInput(RUN_ERROR_REQUIRED.format(run=run), field="error_message")
    return _run_move(
        run,
        "fail",
        actor=actor,
        action=AuditAction.WORKFLOW_FAIL,
        severity=Severity.ERROR,
        runner_only=None if by_runner else ("fail", RUNNER_RECORDS.format(what="failures")),
        error_message=error_message.strip(),
        error_details=error_details,
    )


def workflow_run_cancel(*, run: WorkflowRun, actor: AbstractUser) -> WorkflowRun:
    """Cancel the run (any non-terminal state → cancelled)."""
    return _run_move(run, "cancel", actor=actor, action=AuditAction.WORKFLOW_CANCEL)


@audited_transaction
def workflow_run_update_progress(
    *,
    run: WorkflowRun,
    actor: AbstractUser,
    current_step: int,
    step_count: int | None = None,
    metrics: dict | None = None,
    output_summary: dict | None = None,
    by_runner: bool = False,
) -> WorkflowRun:
    """Record how far a running run has got; `metrics` are merged into the run's metrics.

    `output_summary` records results before the run ends (a run that then waits for
    approval keeps them while it waits). The progress of a type the runner executes
    is recorded by the runner only.
    """
    run = lock(run)
    engagement_require_member(
        engagement=run.engagement, user=actor, verb="record progress on workflow runs of"
    )
    if not by_runner:
        _refuse_runner_work(
            run, verb="record progress of", does=RUNNER_RECORDS.format(what="progress")
        )
    if run.status != WorkflowStatus.RUNNING:
        raise Conflict(RUN_NOT_RUNNING.format(run=run, status=status_label(run)))
    count = run.step_count if step_count is None else step_count
    if current_step < 0 or count < 0 or (count and current_step > count):
        raise InvalidInput(RUN_STEP_OUT_OF_RANGE.format(step=current_step, run=run, count=count))
    run.current_step = current_step
    run.step_count = count
    if metrics:
        run.metrics = {**run.metrics, **metrics}
    if output_summary is not None:
        run.output_summary = output_summary
    save_with_history(run, actor=actor, reason=f"Progress: step {current_step} of {count}")
    return run


@audited_transaction
def workflow_run_delete(*, run: WorkflowRun, actor: AbstractUser) -> WorkflowRun:
    """Soft-delete a finished run (hidden, never destroyed); open runs are cancelled first.

    Kept by the history only: the AuditLog has no action for it.
    """
    run = lock(run)
    engagement_require_member(engagement=run.engagement, user=actor, verb="delete workflow runs of")
    if not run.is_terminal:
        # An open run hidden by deletion would let its engagement complete around it.
        raise Conflict(RUN_NOT_DELETABLE.format(run=run, status=status_label(run)))
    run._change_reason = "Deleted"
    run.soft_delete(actor)
    return run


@dataclass(frozen=True)
class ApprovalOutcome:
    """The decision on a run's workflow approval, as the run needs it: plain data.

    The approval services build it when they decide the approval; `approval` is how
    messages name the approval, `approver` who decided it.
    """

    approval_id: uuid.UUID
    approval: str
    approved: bool
    approver: str = ""
    rejection_reason: str = ""
    decision_notes: str = ""


@audited_transaction
def workflow_run_conclude_approval(
    *, run: WorkflowRun, outcome: ApprovalOutcome, actor: AbstractUser
) -> WorkflowRun:
    """Release a run waiting for approval by the decision on its workflow approval.

    Approved: the run completes. Rejected: the run fails with the reviewer's
    reason. Called by the approval services inside the decision's transaction.
    """
    run = lock(run)
    workflow_run_require_awaiting_approval(run=run, approval=outcome.approval)
    metadata = {"approval_id": str(outcome.approval_id)}
    if outcome.approved:
        return move_and_record(
            run, "complete", actor=actor, action=AuditAction.WORKFLOW_COMPLETE, metadata=metadata
        )
    return move_and_record(
        run,
        "fail",
        actor=actor,
        action=AuditAction.WORKFLOW_FAIL,
        severity=Severity.ERROR,
        metadata=metadata,
        error_message=RUN_REJECTED.format(
            approver=outcome.approver, reason=outcome.rejection_reason
        ),
        error_details={
            "approval_id": str(outcome.approval_id),
            "rejection_reason": outcome.rejection_reason,
            "decision_notes": outcome.decision_notes,
        },
    )


@audited_transaction
def workflow_run_record_provenance(
    *, run: WorkflowRun, actor: AbstractUser, provenance: dict[str, Any]
) -> WorkflowRun:
    """Record what a running run runs with: its inputs, parameters and versions (once).

    Called by the runner when it starts the run (`workflows.provenance.run_provenance`);
    kept by the history only, like progress.
    """
    run = lock(run)
    engagement_require_member(
        engagement=run.engagement, user=actor, verb="record the provenance of workflow runs of"
    )
    if run.status != WorkflowStatus.RUNNING:
        raise Conflict(RUN_PROVENANCE_NOT_RUNNING.format(run=run, status=status_label(run)))
    if run.provenance:
        raise Conflict(RUN_PROVENANCE_RECORDED.format(run=run))
    run.provenance = provenance
    save_with_history(run, actor=actor, reason="Provenance recorded")
    return run


def _refuse_runner_work(run: WorkflowRun, *, verb: str, does: str) -> None:
    """Refuse to start or report by hand on a run whose type the background runner executes.

    Such a run is queued, and the runner starts it and records its progress, results
    or failure (`by_runner=True`): its record is what ran, never what someone typed.
    """
    if implementation_for(run.workflow_type) is not None:
        raise Conflict(
            RUN_REPORTED_BY_RUNNER.format(
                verb=verb, run=run, workflow_type=run.workflow_type, does=does
            )
        )


def _check_definition(run: WorkflowRun) -> None:
    """Check an edited run's type and inputs as creation and queueing would."""
    if run.status == WorkflowStatus.QUEUED and implementation_for(run.workflow_type) is None:
        raise Conflict(
            RUN_NOT_RUNNABLE_EDIT.format(
                run=run, workflow_type=run.workflow_type, runnable=", ".join(runnable_types())
            )
        )
    if implementation_for(run.workflow_type) is not None or run.input_params:
        run.input_params = validate_input_params(
            workflow_type=run.workflow_type,
            input_params=run.input_params,
            engagement=run.engagement,
        )


def _enqueue_run(run_id) -> None:
    """Send the run's task to the task backend (called once the queueing has committed)."""
    # Imported here: the task module imports the runner, which imports this module.
    from ..tasks import execute_workflow_run

    try:
        result = execute_workflow_run.enqueue(str(run_id))
    except Exception:
        # The run is committed as queued; `run_workflow <id>` can still execute it.
        logger.exception("Could not enqueue workflow run %s; run it with run_workflow", run_id)
        return
    logger.info("Workflow run %s enqueued as task %s", run_id, result.id)


@audited_transaction
def _run_move(
    run: WorkflowRun,
    move: str,
    *,
    actor: AbstractUser,
    action: str | None,
    severity: str | None = None,
    needs_open_engagement: bool = False,
    refuse_waiting: bool = False,
    runner_only: tuple[str, str] | None = None,
    **move_arguments: Any,
) -> WorkflowRun:
    run = lock(run)
    engagement_require_member(
        engagement=run.engagement, user=actor, verb=f"{move.replace('_', ' ')} workflow runs of"
    )
    if runner_only is not None:
        verb, does = runner_only
        _refuse_runner_work(run, verb=verb, does=does)
    run.check_move(move)
    if refuse_waiting and run.status == WorkflowStatus.WAITING_APPROVAL:
        raise Conflict(RUN_AWAITS_APPROVAL.format(run=run))
    if needs_open_engagement:
        engagement_require_open(engagement=run.engagement, what=RUN_WORK)
    if move == "start":
        run.started_by = actor
    return move_and_record(
        run, move, actor=actor, action=action, severity=severity, **move_arguments
    )
