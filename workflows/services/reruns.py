"""Starting analyses in one step, and re-running a run with changed choices.

`workflow_run_submit` creates a run and queues it for a worker in one transaction
(the guided "New reserving analysis" ends with it): both happen, or neither.

`workflow_run_rerun` is how judgment is applied to a result: runs never change, so a
re-run is a new run of the same type and engagement with the changed input_params,
linked to the run it came from (`rerun_of`) and saying in its description which
choices changed. A re-run that changes nothing is refused: Replay re-executes a run
as it was.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engagements.selectors import engagement_require_member
from records.exceptions import Conflict
from records.services import lock
from records.transactions import audited_transaction

from ..models import WorkflowRun
from ..registry import implementation_for, runnable_types, validate_input_params
from .runs import workflow_run_create, workflow_run_queue

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from engagements.models import Engagement

RERUN_NOT_RUNNABLE = (
    "Cannot re-run workflow run “{run}”: the back office does not run {workflow_type} "
    "runs (it runs {runnable})."
)
RERUN_UNCHANGED = (
    "The re-run of workflow run “{run}” changes none of its choices: change a selection, "
    "or use Replay to re-execute the run as it was."
)
RERUN_DESCRIPTION = "Re-run of “{run}” with changed {changes}."
RERUN_NAME = "{name} (re-run)"


@audited_transaction
def workflow_run_submit(
    *,
    engagement: Engagement,
    workflow_type: str,
    name: str,
    input_params: dict[str, Any],
    actor: AbstractUser,
    period: str = "",
    description: str = "",
    rerun_of: WorkflowRun | None = None,
) -> WorkflowRun:
    """Create a run and queue it for a worker: both in one transaction, or neither."""
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=workflow_type,
        name=name,
        period=period,
        description=description,
        input_params=input_params,
        actor=actor,
        rerun_of=rerun_of,
    )
    return workflow_run_queue(run=run, actor=actor)


@audited_transaction
def workflow_run_rerun(
    *,
    run: WorkflowRun,
    actor: AbstractUser,
    input_params: dict[str, Any],
    name: str = "",
) -> WorkflowRun:
    """Queue a new run of `run`'s type and engagement with changed input_params.

    The new run is linked to `run` (`rerun_of`) and its description names the
    parameters that changed; `run` itself is left as it is.
    """
    source = lock(run)
    engagement_require_member(
        engagement=source.engagement, user=actor, verb="re-run workflow runs of"
    )
    if implementation_for(source.workflow_type) is None:
        raise Conflict(
            RERUN_NOT_RUNNABLE.format(
                run=source,
                workflow_type=source.workflow_type,
                runnable=", ".join(runnable_types()),
            )
        )
    params = validate_input_params(
        workflow_type=source.workflow_type,
        input_params=input_params,
        engagement=source.engagement,
    )
    changed = changed_params(source.input_params or {}, params)
    if not changed:
        raise Conflict(RERUN_UNCHANGED.format(run=source))
    return workflow_run_submit(
        engagement=source.engagement,
        workflow_type=source.workflow_type,
        name=(name or RERUN_NAME.format(name=source.name))[:255],
        period=source.period,
        description=RERUN_DESCRIPTION.format(run=source, changes=", ".join(changed)),
        input_params=params,
        actor=actor,
        rerun_of=source,
    )


def changed_params(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Return the names of the parameters whose values differ, sorted."""
    return sorted(name for name in {*before, *after} if before.get(name) != after.get(name))
