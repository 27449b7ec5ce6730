"""Reserving demo data: two bundled triangles and real chain ladder runs on them.

`load_reserving_demo` uploads the RAA and GenIns triangles that ship with the
chainladder package as triangle artefacts and runs a reserve calculation on each,
synchronously, through the same runner the background worker uses: the RAA run is
left waiting for its workflow approval; the GenIns run is approved by the reviewer
(when one is given) and so completed. Idempotent: triangles are found again by their
sample name, runs by their name; what exists already is left alone.

The samples do not say whether they hold paid or incurred amounts; the demo labels
RAA incurred and GenIns paid (the label changes no number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile

from approvals.choices import ApprovalStatus
from approvals.services import approval_approve
from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from artefacts.services import artefact_create
from records.exceptions import Conflict
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkflowRun
from workflows.runner import execute_run
from workflows.services import workflow_run_create, workflow_run_queue

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from engagements.models import Engagement

# The artefact metadata key that marks a demo triangle (and names its sample).
SAMPLE_KEY = "demo_sample"
DEMO_RUN_FAILED = (
    "The reserving demo run “{run}” did not finish ({status}): {message} "
    "The demo data were not loaded."
)
APPROVAL_NOTES = "Demo sign-off: chain ladder reviewed against Mack (1993)."
CONFLICT_OF_INTEREST_STATEMENT = (
    "I took no part in preparing this work and have no interest in its outcome."
)


@dataclass(frozen=True)
class DemoTriangle:
    """A bundled sample triangle uploaded as a triangle artefact."""

    sample: str
    file_name: str
    name: str
    layout: str
    measure: str
    allow_negative_development: bool = False


@dataclass(frozen=True)
class DemoRun:
    """A reserve calculation on one demo triangle; `approve`: the reviewer signs it off."""

    name: str
    sample: str
    approve: bool


DEMO_TRIANGLES = (
    # RAA has one negative development (1982, 72 to 84 months): accepted explicitly.
    DemoTriangle(
        "raa",
        "raa_triangle_long.csv",
        "RAA general liability triangle (demo)",
        layout="long",
        measure="incurred",
        allow_negative_development=True,
    ),
    DemoTriangle(
        "genins",
        "genins_triangle_wide.csv",
        "GenIns triangle, Taylor & Ashe (demo)",
        layout="wide",
        measure="paid",
    ),
)
DEMO_RUNS = (
    DemoRun("Chain ladder with Mack: RAA (demo)", "raa", approve=False),
    DemoRun("Chain ladder with Mack: GenIns (demo)", "genins", approve=True),
)


@dataclass
class ReservingDemo:
    """What the demo holds: its triangle artefacts, its runs, and what this call created."""

    triangles: dict[str, Artefact] = field(default_factory=dict)
    runs: list[WorkflowRun] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


def load_reserving_demo(
    *, engagement: Engagement, actor: AbstractUser, reviewer: AbstractUser | None = None
) -> ReservingDemo:
    """Upload the demo triangles and run reserve calculations on them (idempotent).

    `actor` uploads the triangles and queues the runs (so the sign-off requests are
    theirs); `reviewer`, who must be someone else on the team, approves the GenIns
    run. Raise Conflict if a run does not reach its sign-off.
    """
    demo = ReservingDemo()
    for spec in DEMO_TRIANGLES:
        demo.triangles[spec.sample] = _triangle(engagement, actor, spec, demo)
    specs = {spec.sample: spec for spec in DEMO_TRIANGLES}
    for run_spec in DEMO_RUNS:
        demo.runs.append(
            _run(
                engagement,
                actor,
                reviewer,
                run_spec,
                triangle=demo.triangles[run_spec.sample],
                triangle_spec=specs[run_spec.sample],
                demo=demo,
            )
        )
    return demo


def _triangle(
    engagement: Engagement, actor: AbstractUser, spec: DemoTriangle, demo: ReservingDemo
) -> Artefact:
    existing = Artefact.objects.filter(
        engagement=engagement, **{f"metadata__{SAMPLE_KEY}": spec.sample}
    ).first()
    if existing is not None:
        return existing
    # Imported here: building the sample CSV loads chainladder.
    from workflows.reserving import SAMPLE_TRIANGLES, sample_triangle_csv

    artefact = artefact_create(
        engagement=engagement,
        upload=ContentFile(
            sample_triangle_csv(spec.sample, layout=spec.layout), name=spec.file_name
        ),
        actor=actor,
        name=spec.name,
        artefact_type=ArtefactType.TRIANGLE,
        description=f"Cumulative triangle, {spec.layout} layout. {SAMPLE_TRIANGLES[spec.sample]}",
        metadata={SAMPLE_KEY: spec.sample, "layout": spec.layout, "measure": spec.measure},
    )
    demo.created.append(f"triangle {spec.sample}")
    return artefact


def _run(
    engagement: Engagement,
    actor: AbstractUser,
    reviewer: AbstractUser | None,
    spec: DemoRun,
    *,
    triangle: Artefact,
    triangle_spec: DemoTriangle,
    demo: ReservingDemo,
) -> WorkflowRun:
    run = WorkflowRun.objects.filter(
        engagement=engagement, workflow_type=WorkflowType.RESERVE_CALCULATION, name=spec.name
    ).first()
    if run is None:
        run = workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.RESERVE_CALCULATION,
            name=spec.name,
            description="Demo: chain ladder with Mack's standard errors on a bundled triangle.",
            input_params={
                "triangle_artefact": str(triangle.pk),
                "layout": triangle_spec.layout,
                "cumulative": True,
                "measure": triangle_spec.measure,
                "allow_negative_development": triangle_spec.allow_negative_development,
                "average": "volume",
            },
            actor=actor,
        )
        # No task: the demo executes the run here, through the worker's own code path.
        workflow_run_queue(run=run, actor=actor, enqueue=False)
        report = execute_run(run.pk)
        run.refresh_from_db()
        if run.status != WorkflowStatus.WAITING_APPROVAL:
            raise Conflict(
                DEMO_RUN_FAILED.format(run=run, status=run.status, message=report.message)
            )
        demo.created.append(f"run {spec.name}")
    if spec.approve and reviewer is not None and run.status == WorkflowStatus.WAITING_APPROVAL:
        approval = run.approvals.get(status=ApprovalStatus.PENDING)
        approval_approve(
            approval=approval,
            actor=reviewer,
            notes=APPROVAL_NOTES,
            conflict_of_interest_statement=CONFLICT_OF_INTEREST_STATEMENT,
        )
        run.refresh_from_db()
        demo.created.append(f"approval of {spec.name}")
    return run
