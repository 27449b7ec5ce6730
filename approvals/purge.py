"""The purge rules of soft-deleted engagements, workflow runs and artefacts (`audit.purge`).

They belong here because what keeps such a row is the approved work it holds or
serves (a signed-off artefact, the versions and runs it builds on, an engagement
holding approved work): approvals is the one app that sees artefacts, runs and
their sign-offs together. Registered in `ApprovalsConfig.ready()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q

from artefacts.choices import ArtefactStatus
from artefacts.files import artefact_storage
from artefacts.models import Artefact
from audit.choices import AuditAction
from engagements.purge import REASON_ENGAGEMENT_CLOSED, closed_engagement_reason
from records.formatting import status_label
from records.services import snapshot
from workflows.models import WorkflowRun

from .choices import ApprovalStatus
from .models import Approval

if TYPE_CHECKING:
    from audit.purge import PurgeRun
    from engagements.models import Engagement

REASON_APPROVED = "it is approved"
REASON_SIGNED_OFF = "it carries an approved sign-off"
REASON_BUILT_ON = "version {version} ({artefact_id}) builds on it"
REASON_RUN_SOURCE = "{count} artefact(s) or approval(s) name it as their source"
REASON_APPROVED_WORK = "it holds approved work (an approved artefact or sign-off)"

# Stages: what points to a row is purged before it.
ARTEFACT_STAGE = 10
RUN_STAGE = 20
ENGAGEMENT_STAGE = 90


# --- what is kept -------------------------------------------------------------------------


def artefact_kept(artefact: Artefact, run: PurgeRun) -> str:
    """Return why a deleted artefact stays: closed engagement, approved, signed off, built on."""
    if reason := closed_engagement_reason(artefact.engagement):
        return reason
    if artefact.status == ArtefactStatus.APPROVED:
        return REASON_APPROVED
    if artefact.approvals.filter(status=ApprovalStatus.APPROVED).exists():
        return REASON_SIGNED_OFF
    # Any later version that stays (approved or not) keeps the whole chain below it.
    successor = (
        Artefact.all_objects.filter(previous_version=artefact)
        .exclude(pk__in=run.purged_ids(Artefact))
        .first()
    )
    if successor is not None:
        return REASON_BUILT_ON.format(version=successor.version, artefact_id=successor.pk)
    return ""


def run_kept(workflow_run: WorkflowRun, run: PurgeRun) -> str:
    """Return why a deleted workflow run stays: closed engagement, or named as a source."""
    if reason := closed_engagement_reason(workflow_run.engagement):
        return reason
    gone = run.purged_ids(Artefact)
    count = (
        Artefact.all_objects.filter(workflow_run=workflow_run).exclude(pk__in=gone).count()
        + Approval.objects.filter(workflow_run=workflow_run).exclude(artefact_id__in=gone).count()
    )
    return REASON_RUN_SOURCE.format(count=count) if count else ""


def engagement_kept(engagement: Engagement, run: PurgeRun) -> str:
    """Return why a deleted engagement stays: it is closed, or it holds approved work."""
    if closed_engagement_reason(engagement):
        return REASON_ENGAGEMENT_CLOSED.format(status=status_label(engagement))
    approved_artefacts = Artefact.all_objects.filter(
        engagement=engagement, status=ArtefactStatus.APPROVED
    )
    sign_offs = Approval.objects.filter(
        Q(engagement=engagement) | Q(artefact__engagement=engagement),
        status=ApprovalStatus.APPROVED,
    )
    if approved_artefacts.exists() or sign_offs.exists():
        return REASON_APPROVED_WORK
    return ""


# --- purging ------------------------------------------------------------------------------


def artefact_purge(artefact: Artefact, run: PurgeRun, *, cascade_of=None) -> None:
    """Delete the artefact (unless its engagement's deletion did) and record it.

    Its file is removed once no remaining artefact row names the same bytes.
    """
    run.mark_purged(artefact)
    if artefact.file:
        name = artefact.file.name
        run.free_file(
            name,
            storage=artefact_storage(),
            still_used=lambda: (
                Artefact.all_objects.filter(file=name)
                .exclude(pk__in=run.purged_ids(Artefact))
                .exists()
            ),
        )
    if run.dry_run:
        return
    before, pk = snapshot(artefact), artefact.pk
    if cascade_of is None:
        artefact.delete()
    run.record(
        AuditAction.ARTEFACT_DELETE,
        artefact,
        pk,
        f"Artefact purged: {artefact}",
        before,
        engagement_id=artefact.engagement_id,
        cascade_of=cascade_of,
    )


def run_purge(workflow_run: WorkflowRun, run: PurgeRun) -> None:
    """Delete the workflow run (its history's deletion record is its trail)."""
    if not run.dry_run:
        # As workflow_run_delete: the AuditLog has no action for runs.
        workflow_run.delete()


def engagement_purge(engagement: Engagement, run: PurgeRun) -> None:
    """Delete the engagement with everything in it; record it and each of its artefacts."""
    artefacts = list(Artefact.all_objects.filter(engagement=engagement).order_by("pk"))
    contents = {
        "team_members": engagement.team.count(),
        "workflow_runs": WorkflowRun.all_objects.filter(engagement=engagement).count(),
        "artefacts": len(artefacts),
        "approvals": Approval.objects.filter(
            Q(engagement=engagement) | Q(artefact__engagement=engagement)
        ).count(),
    }
    run.count_inside(sum(contents.values()))
    before, pk = snapshot(engagement), engagement.pk
    if not run.dry_run:
        engagement.delete()
    for artefact in artefacts:
        artefact_purge(artefact, run, cascade_of=engagement)
    if not run.dry_run:
        run.record(
            AuditAction.ENGAGEMENT_DELETE,
            engagement,
            pk,
            f"Engagement purged with everything in it: {engagement}",
            before,
            engagement_id=pk,
            contents=contents,
        )
