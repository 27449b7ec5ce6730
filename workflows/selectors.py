"""Reads about workflow runs that other apps build on: which artefacts a run reads as input."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from records.exceptions import Conflict

from .choices import WorkflowStatus
from .models import WorkflowRun

if TYPE_CHECKING:
    from engagements.models import Engagement

# Runs whose results nobody relies on: their inputs are not the engagement's input data.
DISCARDED_STATUSES = frozenset({WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})

RUN_NOT_AWAITING = (
    "Cannot settle workflow run “{run}” with approval “{approval}”: the run is {status}, "
    "not waiting for approval."
)


def run_input_artefact_ids(run: WorkflowRun) -> list[uuid.UUID]:
    """Return the ids of the artefacts `run` reads as input, in parameter order.

    What the runner recorded when it started the run (`WorkflowRun.provenance`) when
    there is a record; otherwise the artefacts its parameters name (a run not yet
    started). Ids that are not UUIDs are left out.
    """
    # Imported here: the registry loads the implementations, which import the artefact
    # services, which read input data through this module.
    from .registry import input_artefact_ids

    provenance = run.provenance or {}
    if "inputs" in provenance:
        values = [item.get("artefact_id") for item in provenance["inputs"]]
    else:
        values = [
            artefact_id
            for _param, artefact_id in input_artefact_ids(
                workflow_type=run.workflow_type, input_params=run.input_params
            )
        ]
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids


def engagement_run_input_ids(engagement: Engagement) -> dict[uuid.UUID, list[WorkflowRun]]:
    """Return {artefact id: the runs reading it} for the engagement's live, not discarded runs.

    Failed and cancelled runs are left out: nothing relies on their results.
    """
    inputs: dict[uuid.UUID, list[WorkflowRun]] = {}
    runs = WorkflowRun.objects.filter(engagement=engagement).exclude(status__in=DISCARDED_STATUSES)
    for run in runs.only("id", "name", "workflow_type", "input_params", "provenance"):
        for artefact_id in run_input_artefact_ids(run):
            inputs.setdefault(artefact_id, []).append(run)
    return inputs


def workflow_run_require_awaiting_approval(*, run: WorkflowRun, approval: str) -> None:
    """Raise Conflict unless the run waits for approval (`approval` names the deciding one)."""
    if run.status != WorkflowStatus.WAITING_APPROVAL:
        raise Conflict(RUN_NOT_AWAITING.format(run=run, approval=approval, status=run.status))
