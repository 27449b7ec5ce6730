"""Reads about workflow runs that other apps build on: which artefacts a run reads as input.

Also which triangles a new run may read (`triangle_inputs`): the admin's run form and
the guided analysis offer the same ones.

The artefacts app reaches three of them through its hooks (`artefacts.hooks`, registered
by `WorkflowsConfig.ready()`): the inputs of an engagement's runs (its input data), the
runs that may support a data reliance entry, and why a run cannot support one. And the
worker fleet's liveness (`workers_alive`), which the dashboard and /healthz show.
"""

from __future__ import annotations

import datetime
import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from artefacts.choices import RETIRED_STATUSES, ArtefactType
from artefacts.models import Artefact
from engagements.selectors import scope_to_user
from records.exceptions import Conflict
from records.formatting import status_label

from .choices import OPEN_STATUSES, WorkflowStatus, WorkflowType
from .models import WorkerHeartbeat, WorkflowRun
from .registry import input_artefact_ids

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from engagements.models import Engagement

# Runs whose results nobody relies on: their inputs are not the engagement's input data.
DISCARDED_STATUSES = frozenset({WorkflowStatus.FAILED, WorkflowStatus.CANCELLED})

RELIANCE_RUN_NOT_VALIDATION = (
    "Workflow run “{run}” is a {workflow_type} run: the checks of a data reliance entry are "
    "supported by a data_validation run."
)
RELIANCE_RUN_ELSEWHERE = (
    "Workflow run “{run}” belongs to another engagement than artefact “{artefact}”."
)
RELIANCE_RUN_NOT_COMPLETED = (
    "Data validation run “{run}” is {status}: only a completed run's results support the checks."
)
RELIANCE_RUN_OTHER_INPUT = (
    "Data validation run “{run}” did not check artefact “{artefact}” (it read another "
    "artefact or version): link the run that validated this one."
)
ENGAGEMENT_HAS_OPEN_RUNS = (
    "Cannot complete engagement “{engagement}”: {count} workflow run(s) still open "
    "({states}); finish or cancel them first."
)
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
        raise Conflict(
            RUN_NOT_AWAITING.format(run=run, approval=approval, status=status_label(run))
        )


def validation_runs() -> QuerySet[WorkflowRun]:
    """Return the runs whose results may support a data reliance entry: completed validations."""
    return WorkflowRun.objects.filter(
        workflow_type=WorkflowType.DATA_VALIDATION, status=WorkflowStatus.COMPLETED
    )


def validation_run_problem(run: WorkflowRun, artefact: Artefact) -> str | None:
    """Return why `run` cannot support the data reliance entry of `artefact`, or None.

    It must be a completed data_validation run of the artefact's engagement that read
    this very artefact (version) as input.
    """
    if run.workflow_type != WorkflowType.DATA_VALIDATION:
        return RELIANCE_RUN_NOT_VALIDATION.format(run=run, workflow_type=run.workflow_type)
    if run.engagement_id != artefact.engagement_id:
        return RELIANCE_RUN_ELSEWHERE.format(run=run, artefact=artefact)
    if run.status != WorkflowStatus.COMPLETED:
        return RELIANCE_RUN_NOT_COMPLETED.format(run=run, status=status_label(run))
    if artefact.pk not in run_input_artefact_ids(run):
        return RELIANCE_RUN_OTHER_INPUT.format(run=run, artefact=artefact)
    return None


def engagement_require_no_open_runs(engagement: Engagement) -> None:
    """Raise Conflict while any workflow run of the engagement is still open.

    A completion check of the engagement services (`engagements.hooks.completion_checks`).
    """
    open_states = list(
        WorkflowRun.objects.filter(engagement=engagement, status__in=OPEN_STATUSES).values_list(
            "status", flat=True
        )
    )
    if open_states:
        raise Conflict(
            ENGAGEMENT_HAS_OPEN_RUNS.format(
                engagement=engagement,
                count=len(open_states),
                states=", ".join(sorted(set(open_states))),
            )
        )


def triangle_inputs(engagement_id: uuid.UUID | None, user) -> QuerySet[Artefact]:
    """Return the triangles a run may read: uploaded triangle input data the user may see.

    Only artefacts of type Triangle that no run produced and that are still in use
    (not superseded, archived or deleted), of the engagement when one is given. With
    no `user` the caller has checked who may see the engagement.
    """
    choices = Artefact.objects.filter(
        artefact_type=ArtefactType.TRIANGLE, workflow_run__isnull=True
    ).exclude(status__in=RETIRED_STATUSES)
    if user is not None:
        choices = scope_to_user(choices, user)
    choices = choices.select_related("engagement")
    if engagement_id is not None:
        choices = choices.filter(engagement_id=engagement_id)
    return choices.order_by("engagement__client_code", "-created_at")


# --- the worker fleet ----------------------------------------------------------------

WORKER_DEFAULTS = {
    "POLL_INTERVAL": 0.2,
    "CONCURRENCY": 1,
    "HEARTBEAT_INTERVAL": 5.0,
    "DEAD_AFTER": 30.0,
    "REAP_INTERVAL": 30.0,
}
# What the dashboard, the run page and /healthz say when no worker is alive.
NO_WORKER_ALIVE = (
    "No worker is running: queued workflow runs wait until one starts. Start one with "
    "`python manage.py run_workers` (or `make run`, which starts the web server and a worker)."
)


def worker_settings() -> dict[str, float]:
    """Return the worker options (settings.TASK_WORKERS over the defaults)."""
    return {**WORKER_DEFAULTS, **getattr(settings, "TASK_WORKERS", {})}


def workers_alive(*, now: datetime.datetime | None = None) -> int:
    """Return how many workers recorded a heartbeat within the dead-after limit."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=worker_settings()["DEAD_AFTER"])
    return WorkerHeartbeat.objects.filter(last_seen_at__gte=cutoff).count()


def workers_dead(*, now: datetime.datetime | None = None) -> QuerySet[WorkerHeartbeat]:
    """Return the heartbeats of workers silent for longer than the dead-after limit."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=worker_settings()["DEAD_AFTER"])
    return WorkerHeartbeat.objects.filter(last_seen_at__lt=cutoff).order_by("last_seen_at")


def workers_needed() -> bool:
    """Return whether runs wait for a worker process (the database task backend)."""
    backend = settings.TASKS.get("default", {}).get("BACKEND", "")
    return backend.startswith("django_tasks_db.")


def worker_warning() -> str:
    """Return NO_WORKER_ALIVE when runs wait for a worker and none is alive, else ""."""
    return NO_WORKER_ALIVE if workers_needed() and not workers_alive() else ""
