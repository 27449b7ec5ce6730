"""Replaying a finished run: re-execute it on its recorded inputs, store nothing, record the result.

Evidence for model validation (ASOP 56): the inputs are verified against the run's
provenance, the steps run again in replay mode and each output's SHA-256 is
compared with what the run stored; a ReplayRecord and a workflow_replay audit
event keep the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artefacts.models import Artefact
from artefacts.services import artefact_open_for_download
from audit.choices import AuditAction, Severity
from audit.services import audit_record
from engagements.selectors import engagement_require_member
from records.exceptions import Conflict, DomainError, InvalidInput
from records.formatting import status_label
from records.services import (
    save_with_history,
)
from records.transactions import audited_transaction

from ..choices import WorkflowStatus
from ..models import ReplayRecord, WorkflowRun
from ..registry import implementation_for, validate_input_params

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser


# How a replay's check of an input's bytes is named in the artefact_access audit event.
ACCESS_REPLAY_INPUT = "replay input check"

REPLAY_NOT_RUNNABLE = (
    "Cannot replay workflow run “{run}”: the back office does not run {workflow_type} "
    "workflows itself, so there is nothing it could re-execute."
)
REPLAY_NOT_FINISHED = (
    "Cannot replay workflow run “{run}”: it is {status} (only a run that produced its "
    "results, completed or waiting for approval, can be replayed)."
)
REPLAY_NO_PROVENANCE = (
    "Cannot replay workflow run “{run}”: it has no recorded provenance (it ran before "
    "inputs and versions were recorded), so its inputs cannot be verified."
)
REPLAY_INPUT_MISSING = (
    "Cannot replay workflow run “{run}”: its input “{name}” (version {version}, artefact "
    "{artefact_id}) no longer exists or was deleted."
)
REPLAY_INPUT_CHANGED = (
    "Cannot replay workflow run “{run}”: its input “{name}” (version {version}) changed "
    "since the run (recorded SHA-256 {recorded}, now {current})."
)
REPLAY_INPUT_UNREADABLE = (
    "Cannot replay workflow run “{run}”: its input “{name}” (version {version}) cannot be "
    "read as recorded: {problem}"
)
REPLAY_PARAMETERS_CHANGED = (
    "Cannot replay workflow run “{run}”: its parameters no longer hash to the recorded "
    "SHA-256 ({recorded}, now {current})."
)
REPLAY_FAILED = "The replay of workflow run “{run}” failed at step {step}: {message}"
REPLAY_DESCRIPTION = "Workflow run replayed: {run} ({outcome})"


def workflow_run_replay(*, run: WorkflowRun, actor: AbstractUser) -> ReplayRecord:
    """Re-execute a finished run on its recorded inputs, store nothing, and record the outcome.

    First the recorded inputs are verified: each still exists, with the recorded
    version and SHA-256, and its bytes match (Conflict naming the input otherwise;
    nothing is recorded then). The parameters must hash as recorded. The run's steps
    then execute in replay mode (outputs are hashed, never stored) and each output's
    SHA-256 is compared with the artefact the run stored. The ReplayRecord keeps the
    comparison per artefact and the environment's differences from the run's; a
    workflow_replay audit event records it (warning when something did not match).
    A step that raises makes a replay that did not match, with its error.

    Any working member of the team may replay, also once the engagement is completed:
    a replay changes no work product, it adds evidence for model validation.
    """
    # Imported here: the runner imports this package (and tests replace the environment).
    from ..provenance import canonical_json_hash, environment, environment_differences
    from ..runner import replay_steps

    run = WorkflowRun.objects.select_related("engagement").get(pk=run.pk)
    engagement_require_member(engagement=run.engagement, user=actor, verb="replay workflow runs of")
    if implementation_for(run.workflow_type) is None:
        raise Conflict(REPLAY_NOT_RUNNABLE.format(run=run, workflow_type=run.workflow_type))
    if run.status not in (WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL):
        raise Conflict(REPLAY_NOT_FINISHED.format(run=run, status=status_label(run)))
    provenance = run.provenance or {}
    if "parameters" not in provenance or "environment" not in provenance:
        raise Conflict(REPLAY_NO_PROVENANCE.format(run=run))
    inputs = _verified_inputs(run, provenance.get("inputs") or [], actor=actor)
    try:
        params = validate_input_params(
            workflow_type=run.workflow_type,
            input_params=run.input_params,
            engagement=run.engagement,
        )
    except InvalidInput as error:
        raise Conflict(REPLAY_FAILED.format(run=run, step="0", message=error.message)) from None
    recorded_hash = provenance["parameters"].get("sha256")
    if canonical_json_hash(params) != recorded_hash:
        raise Conflict(
            REPLAY_PARAMETERS_CHANGED.format(
                run=run, recorded=recorded_hash, current=canonical_json_hash(params)
            )
        )

    replayed, failure = replay_steps(run, actor=actor, params=params)
    outputs = _compare_outputs(run, replayed) if failure is None else []
    current = environment()
    record = ReplayRecord(
        run=run,
        replayed_by=actor,
        matched=failure is None and all(output["match"] for output in outputs),
        inputs=inputs,
        outputs=outputs,
        environment={
            "replay": current,
            "original": provenance["environment"],
            "differences": environment_differences(provenance["environment"], current),
        },
        error_message=(
            REPLAY_FAILED.format(run=run, step=failure[0], message=failure[1]) if failure else ""
        ),
    )
    with audited_transaction():
        save_with_history(record, actor=actor, reason="Replayed", created=True)
        outcome = "all outputs matched" if record.matched else "outputs did not match"
        audit_record(
            action=AuditAction.WORKFLOW_REPLAY,
            resource=run,
            user=actor,
            severity=Severity.INFO if record.matched else Severity.WARNING,
            description=REPLAY_DESCRIPTION.format(run=run, outcome=outcome),
            new_value={"replay_record": str(record.pk), "matched": record.matched},
            metadata={
                "outputs": outputs,
                "environment_differences": record.environment["differences"],
                "error_message": record.error_message,
            },
        )
    return record


def _verified_inputs(
    run: WorkflowRun, recorded: list[dict[str, Any]], *, actor: AbstractUser
) -> list[dict[str, Any]]:
    """Return the recorded inputs once each exists unchanged; raise Conflict naming one that not.

    Each input's bytes are read back and checked against the SHA-256 (an
    artefact_access event; a critical one if they are missing or changed).
    """
    verified = []
    for item in recorded:
        names = {"run": run, "name": item.get("name"), "version": item.get("version")}
        artefact = Artefact.objects.filter(pk=item.get("artefact_id")).first()
        if artefact is None:
            raise Conflict(
                REPLAY_INPUT_MISSING.format(artefact_id=item.get("artefact_id"), **names)
            )
        if artefact.content_hash != item.get("content_hash") or artefact.version != item.get(
            "version"
        ):
            raise Conflict(
                REPLAY_INPUT_CHANGED.format(
                    recorded=item.get("content_hash"), current=artefact.content_hash, **names
                )
            )
        try:
            handle = artefact_open_for_download(
                artefact=artefact, actor=actor, purpose=ACCESS_REPLAY_INPUT
            )
        except DomainError as refusal:
            raise Conflict(
                REPLAY_INPUT_UNREADABLE.format(problem=refusal.message, **names)
            ) from None
        handle.close()
        verified.append({**item, "verified": True})
    return verified


def _compare_outputs(run: WorkflowRun, replayed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return, per output artefact, the original and the replay's SHA-256 and whether they match.

    Outputs are paired by file name (the implementations name their files), in order.
    """
    original = list((run.output_summary or {}).get("artefacts") or [])
    if not original:
        original = [
            {
                "id": str(artefact.pk),
                "name": artefact.name,
                "artefact_type": artefact.artefact_type,
                "file_name": artefact.file_name,
                "content_hash": artefact.content_hash,
            }
            for artefact in run.artefacts.filter(previous_version__isnull=True).order_by(
                "created_at"
            )
        ]
    remaining = list(replayed)
    outputs = []
    for stored in original:
        twin = next((r for r in remaining if r["file_name"] == stored.get("file_name")), None)
        if twin is not None:
            remaining.remove(twin)
        replay_hash = twin["content_hash"] if twin else None
        outputs.append(
            {
                "artefact_id": stored.get("id"),
                "name": stored.get("name"),
                "file_name": stored.get("file_name"),
                "original_hash": stored.get("content_hash"),
                "replay_hash": replay_hash,
                "match": replay_hash is not None and replay_hash == stored.get("content_hash"),
            }
        )
    # Outputs the replay made that the run never stored.
    outputs.extend(
        {
            "artefact_id": None,
            "name": extra["name"],
            "file_name": extra["file_name"],
            "original_hash": None,
            "replay_hash": extra["content_hash"],
            "match": False,
        }
        for extra in remaining
    )
    return outputs
