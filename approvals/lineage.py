"""The lineage of an approval's subject, and who in it may not review it (APS X2).

A reviewer must be "not otherwise involved in the work". The work behind an approval
is its lineage, walked here once for every rule that needs it:

- the artefact under review and every earlier version of it (`previous_version`,
  soft-deleted versions included: they were part of the work);
- the workflow run that produced each of those versions, and the run a workflow
  approval releases;
- the input artefacts of each such run (as the runner recorded them, see
  `workflows.selectors.run_input_artefact_ids`), their earlier versions, the runs
  that produced those, and so on (each item once).

Who is involved: whoever uploaded (or, through a run, created) an artefact version,
and whoever created, queued or started a run. An approval on the engagement alone
(a final sign-off) has no lineage beyond its request.

Not to be confused with a run's provenance (`workflows.provenance`): what one run
ran with, recorded for replays (ASOP 56).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from artefacts.models import Artefact
from workflows.models import WorkflowRun
from workflows.selectors import run_input_artefact_ids

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from .models import Approval

INPUT_OF_RUN = ", an input of workflow run “{run}”"


@dataclass(frozen=True)
class LineageItem:
    """One artefact version or workflow run in an approval's lineage, and who made it.

    `people` pairs user ids with what they did ("uploaded", "started", …), the most
    telling first; `description` names the item as a refusal says it.
    """

    kind: str
    record: Artefact | WorkflowRun
    description: str
    people: tuple[tuple[int, str], ...]

    def conflict_of(self, user_id: int) -> str | None:
        """Return "<verb> <item>" if the user took part in this item, else None."""
        verb = next((verb for person, verb in self.people if person == user_id), None)
        return None if verb is None else f"{verb} {self.description}"


def approval_lineage(
    approval: Approval, *, artefact: Artefact | None = None, run: WorkflowRun | None = None
) -> list[LineageItem]:
    """Return everything in the approval's lineage, the subject first.

    `artefact` and `run` (optional) are the subject's rows as the caller holds them
    (locked in a decision); they default to the approval's own.
    """
    walk = _LineageWalk()
    artefact = artefact or approval.artefact
    if artefact is not None:
        walk.artefact(artefact)
    run = run or approval.workflow_run
    if run is not None:
        walk.run(run)
    return walk.items


def lineage_conflict(
    approval: Approval,
    user: AbstractUser,
    *,
    artefact: Artefact | None = None,
    run: WorkflowRun | None = None,
) -> str | None:
    """Return how `user` took part in the approval's lineage ("they started workflow run
    “…”"), or None if they are independent of it."""
    for item in approval_lineage(approval, artefact=artefact, run=run):
        conflict = item.conflict_of(user.pk)
        if conflict is not None:
            return f"they {conflict}"
    return None


def lineage_people(approval: Approval) -> set[int]:
    """Return the ids of everyone who took part in the approval's lineage."""
    return {
        person
        for item in approval_lineage(approval)
        for person, _verb in item.people
        if person is not None
    }


class _LineageWalk:
    """A depth-first walk that visits each artefact version and each run once."""

    def __init__(self):
        self.items: list[LineageItem] = []
        self.seen: set[tuple[str, object]] = set()

    def artefact(self, artefact: Artefact, *, context: str = "") -> None:
        """Visit an artefact, its earlier versions, and the runs that produced them."""
        runs = []
        version = artefact
        while version is not None and ("artefact", version.pk) not in self.seen:
            self.seen.add(("artefact", version.pk))
            # A run creates first versions only; a later version is always someone's upload.
            made_by_run = version.workflow_run_id and not version.previous_version_id
            verb = "created" if made_by_run else "uploaded"
            self.items.append(
                LineageItem(
                    kind="artefact",
                    record=version,
                    description=f"version {version.version} of “{version.name}”{context}",
                    people=_people((version.created_by_id, verb)),
                )
            )
            if version.workflow_run_id:
                runs.append(version.workflow_run_id)
            version = (
                Artefact.all_objects.filter(pk=version.previous_version_id).first()
                if version.previous_version_id
                else None
            )
        for run in WorkflowRun.all_objects.filter(pk__in=runs):
            self.run(run)

    def run(self, run: WorkflowRun) -> None:
        """Visit a run and the artefacts it read as input."""
        if ("run", run.pk) in self.seen:
            return
        self.seen.add(("run", run.pk))
        self.items.append(
            LineageItem(
                kind="workflow_run",
                record=run,
                description=f"workflow run “{run}”",
                people=_people(
                    (run.started_by_id, "started"),
                    (run.queued_by_id, "queued"),
                    (run.created_by_id, "created"),
                ),
            )
        )
        input_ids = run_input_artefact_ids(run)
        inputs = Artefact.all_objects.in_bulk(input_ids)
        for artefact_id in input_ids:
            if artefact_id in inputs:
                self.artefact(inputs[artefact_id], context=INPUT_OF_RUN.format(run=run))


def _people(*pairs: tuple[int | None, str]) -> tuple[tuple[int, str], ...]:
    return tuple((person, verb) for person, verb in pairs if person is not None)
