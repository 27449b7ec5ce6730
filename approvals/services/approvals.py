"""Approvals: request, edit, decide (approve, reject), revoke and expire them.

A decision locks, in this order, the engagement, the approval, the artefact and the
run, so two approvers acting at once end with exactly one decision; it carries
through: the artefact is approved or rejected, a run waiting for its workflow
approval completes or fails (`workflows.services.workflow_run_conclude_approval`,
given the decision as plain data).
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from artefacts.choices import ArtefactStatus
from artefacts.models import Artefact
from audit.choices import AuditAction
from audit.services import audit_record
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import format_datetime, status_label
from records.services import (
    apply_changes,
    changes,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    validate,
)
from records.transactions import audited_transaction
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.selectors import workflow_run_require_awaiting_approval
from workflows.services import ApprovalOutcome, workflow_run_conclude_approval

from ..choices import (
    UNRESOLVED_REVIEW_POINT_STATUSES,
    ApprovalStatus,
    ApprovalType,
    ReviewPointSeverity,
)
from ..lineage import lineage_conflict
from ..models import Approval

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
from ..errors import (
    APPROVAL_ALREADY_PENDING,
    APPROVAL_ARTEFACT_CHANGED,
    APPROVAL_ARTEFACT_NOT_IN_REVIEW,
    APPROVAL_ARTEFACT_NOT_REVIEWABLE,
    APPROVAL_DESIGNATED_ONLY,
    APPROVAL_EDIT_NOT_ALLOWED,
    APPROVAL_EXPIRED,
    APPROVAL_EXPIRY_PAST,
    APPROVAL_NEEDS_RUN,
    APPROVAL_NO_SUBJECT,
    APPROVAL_NOT_DUE,
    APPROVAL_NOT_EDITABLE,
    APPROVAL_NOT_INDEPENDENT,
    APPROVAL_OPEN_POINTS,
    APPROVAL_REVOKE_NOT_ALLOWED,
    APPROVAL_RUN_NOT_AWAITING,
    APPROVAL_RUN_ONLY_FOR_WORKFLOW,
    APPROVAL_SUBJECT_MISMATCH,
    ARTEFACT_HAS_PENDING_APPROVAL,
    COI_STATEMENT_REQUIRED,
    NOT_EDITABLE_REASON,
    REASON_LINEAGE,
    REASON_OWN_REQUEST,
)
from .checklists import _completed_checklist, _require_reliance_register
from .qualifications import _qualifications_counted

NEW_APPROVALS = "approvals"
NEW_DECISIONS = "decisions on its approvals"
NEW_REVOCATIONS = "revocations of its approvals"
# Fields the requester may still change while the approval is pending.
EDITABLE_FIELDS = frozenset({"request_notes", "designated_approver", "expires_at", "metadata"})


@audited_transaction
def approval_request(
    *,
    approval_type: str,
    actor: AbstractUser,
    artefact: Artefact | None = None,
    engagement: Engagement | None = None,
    workflow_run: WorkflowRun | None = None,
    designated_approver: AbstractUser | None = None,
    expires_at: datetime.datetime | None = None,
    request_notes: str = "",
    metadata: dict | None = None,
    trace_id: str | None = None,
) -> Approval:
    """Ask for a sign-off on an artefact, a workflow run or the engagement itself.

    A draft artefact goes to pending_review and its version and SHA-256 are pinned
    on the approval; a running run goes to waiting_approval. Refused on a completed
    or archived engagement, and when a designated approver could not decide it.

    A final sign-off is refused while any input data of the engagement has no data
    reliance entry, and without a completed disclosure checklist; the checklist is
    copied into the approval (`Approval.disclosures`) and locked.
    """
    if approval_type == ApprovalType.WORKFLOW_APPROVAL and workflow_run is None and artefact:
        workflow_run = artefact.workflow_run
    if workflow_run is not None and approval_type != ApprovalType.WORKFLOW_APPROVAL:
        raise InvalidInput(
            APPROVAL_RUN_ONLY_FOR_WORKFLOW.format(
                approval_type=ApprovalType(approval_type).label.lower()
            )
        )
    if approval_type == ApprovalType.WORKFLOW_APPROVAL and workflow_run is None:
        raise InvalidInput(APPROVAL_NEEDS_RUN)
    engagement = lock(_subject_engagement(artefact, workflow_run, engagement))
    engagement_require_member(engagement=engagement, user=actor, verb="request approvals on")
    engagement_require_open(engagement=engagement, what=NEW_APPROVALS)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(
            APPROVAL_EXPIRY_PAST.format(expires_at=format_datetime(expires_at)), field="expires_at"
        )
    checklist = None
    if approval_type == ApprovalType.FINAL_SIGN_OFF:
        _require_reliance_register(engagement, verb="request")
        checklist = _completed_checklist(engagement)
    approval = Approval(
        artefact=artefact,
        engagement=engagement,
        workflow_run=workflow_run,
        approval_type=approval_type,
        requested_by=actor,
        request_notes=request_notes,
        designated_approver=designated_approver,
        expires_at=expires_at,
        metadata=metadata or {},
        trace_id=trace_id,
    )
    if artefact is not None:
        artefact = approval.artefact = lock(artefact)
        _prepare_artefact_for_review(approval, artefact, actor=actor)
    if workflow_run is not None:
        workflow_run = approval.workflow_run = lock(workflow_run)
        _prepare_run_for_review(approval, workflow_run, actor=actor)
    if designated_approver is not None:
        _require_may_decide(approval, designated_approver, verb="be the designated approver of")
    if checklist is not None:
        approval.disclosures = checklist.snapshot()
    validate(approval)
    save_with_history(approval, actor=actor, reason="Requested")
    if checklist is not None:
        checklist.freeze(approval=approval)
        save_with_history(checklist, actor=actor, reason="Frozen into final sign-off")
    audit_record(
        action=AuditAction.APPROVAL_REQUEST,
        resource=approval,
        user=actor,
        metadata={"disclosure_checklist": str(checklist.pk)} if checklist else None,
        description=f"Approval requested: {approval}",
        new_value=snapshot(
            approval,
            (
                "approval_type",
                "status",
                "artefact",
                "workflow_run",
                "designated_approver",
                "expires_at",
                "artefact_version",
                "artefact_content_hash",
            ),
        ),
    )
    return approval


def artefact_require_no_pending_approval(*, artefact: Artefact, verb: str) -> None:
    """Refuse to replace, archive or delete (`verb`) an artefact while its review is pending.

    A guard of the artefact services (`artefacts.hooks.artefact_change_guards`).
    """
    pending = artefact.approvals.filter(status=ApprovalStatus.PENDING).first()
    if pending is not None:
        raise Conflict(
            ARTEFACT_HAS_PENDING_APPROVAL.format(verb=verb, artefact=artefact, approval=pending)
        )


def workflow_approval_request(
    *, run: WorkflowRun, actor: AbstractUser, notes: str = "", trace_id: str | None = None
) -> Approval:
    """Ask for the workflow approval of a run the runner finished (its results' sign-off).

    The provider of the workflow runner's `run_awaiting_approval` hook: the runner
    calls it, in the name of the user who queued the run, inside its transaction.
    """
    return approval_request(
        approval_type=ApprovalType.WORKFLOW_APPROVAL,
        workflow_run=run,
        actor=actor,
        request_notes=notes,
        trace_id=trace_id,
    )


@audited_transaction
def approval_update(*, approval: Approval, actor: AbstractUser, data: dict[str, Any]) -> Approval:
    """Change a pending approval's notes, designated approver, expiry or metadata."""
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="edit approvals on")
    if not approval.is_pending:
        raise Conflict(
            APPROVAL_NOT_EDITABLE.format(approval=approval, status=status_label(approval))
        )
    if actor.pk != approval.requested_by_id and not actor.is_superuser:
        raise NotAllowed(APPROVAL_EDIT_NOT_ALLOWED.format(user=actor, approval=approval))
    before = snapshot(approval)
    apply_changes(approval, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    old, new = changes(before, snapshot(approval))
    if not new:
        return approval
    if "expires_at" in new and approval.expires_at and approval.expires_at <= timezone.now():
        raise InvalidInput(
            APPROVAL_EXPIRY_PAST.format(expires_at=format_datetime(approval.expires_at)),
            field="expires_at",
        )
    if "designated_approver" in new and approval.designated_approver is not None:
        _require_may_decide(
            approval, approval.designated_approver, verb="be the designated approver of"
        )
    validate(approval)
    save_edit_and_record(
        approval, actor=actor, action=AuditAction.APPROVAL_UPDATE, old=old, new=new
    )
    return approval


def approval_approve(
    *,
    approval: Approval,
    actor: AbstractUser,
    conflict_of_interest_statement: str,
    notes: str = "",
) -> Approval:
    """Approve a pending approval; approve its artefact or complete its waiting run.

    Refused while any of its review points is unresolved, and (a final sign-off)
    while any input data has no data reliance entry. `conflict_of_interest_statement`
    is required (APS X2: the decider says whether anything impairs their
    independence); a blank one is refused.
    """
    return _decide(
        approval,
        "approve",
        actor=actor,
        notes=notes,
        conflict_of_interest_statement=conflict_of_interest_statement,
    )


def approval_reject(
    *,
    approval: Approval,
    actor: AbstractUser,
    reason: str,
    conflict_of_interest_statement: str,
    notes: str = "",
) -> Approval:
    """Reject a pending approval with a reason; reject its artefact or fail its waiting run.

    Open review points never stop a rejection (they may be its reason). The
    conflict-of-interest statement is required as for approving.
    """
    return _decide(
        approval,
        "reject",
        actor=actor,
        notes=notes,
        reason=reason,
        conflict_of_interest_statement=conflict_of_interest_statement,
    )


@audited_transaction
def approval_revoke(*, approval: Approval, actor: AbstractUser, reason: str) -> Approval:
    """Withdraw a granted approval with a reason; an approved artefact goes back to review.

    Its approver, the engagement's lead actuary or reviewer, or a superuser may
    revoke. A workflow run it completed stays completed (runs never reopen).
    """
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="revoke approvals on")
    approval.check_move("revoke")
    entitled = {approval.approver_id, engagement.lead_actuary_id, engagement.reviewer_id}
    if actor.pk not in entitled and not actor.is_superuser:
        raise NotAllowed(APPROVAL_REVOKE_NOT_ALLOWED.format(user=actor, approval=approval))
    engagement_require_open(engagement=engagement, what=NEW_REVOCATIONS)
    artefact = lock(approval.artefact) if approval.artefact_id else None
    move_and_record(
        approval,
        "revoke",
        actor=actor,
        action=AuditAction.APPROVAL_REVOKE,
        description=f"Approval revoked: {approval}",
        user=actor,
        reason=reason,
    )
    if artefact is not None and artefact.status == ArtefactStatus.APPROVED:
        move_and_record(artefact, "return_to_review", actor=actor, action=None)
    return approval


@audited_transaction
def approval_expire(*, approval: Approval, actor: AbstractUser | None = None) -> Approval:
    """Mark a pending approval past its expiry date as expired (`actor` None: the system)."""
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    if actor is not None:
        engagement_require_member(engagement=engagement, user=actor, verb="expire approvals on")
    approval.check_move("expire")
    if approval.expires_at is None or approval.expires_at > timezone.now():
        raise Conflict(
            APPROVAL_NOT_DUE.format(approval=approval, expires_at=approval.expires_at or "none")
        )
    return move_and_record(approval, "expire", actor=actor, action=AuditAction.APPROVAL_EXPIRE)


@audited_transaction
def _decide(
    approval: Approval,
    move: str,
    *,
    actor: AbstractUser,
    notes: str,
    conflict_of_interest_statement: str,
    reason: str | None = None,
) -> Approval:
    statement = (conflict_of_interest_statement or "").strip()
    if not statement:
        raise InvalidInput(
            COI_STATEMENT_REQUIRED.format(user=actor, approval=approval),
            field="conflict_of_interest_statement",
        )
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="decide approvals on")
    approval.check_move(move)
    if approval.is_expired:
        when = f" on {format_datetime(approval.expires_at)}" if approval.expires_at else ""
        raise Conflict(APPROVAL_EXPIRED.format(approval=approval, when=when))
    engagement_require_open(engagement=engagement, what=NEW_DECISIONS)
    artefact = lock(approval.artefact) if approval.artefact_id else None
    run = lock(approval.workflow_run) if approval.workflow_run_id else None
    _require_may_decide(approval, actor, verb="decide", artefact=artefact, run=run)
    day = timezone.localdate()
    qualifications = _qualifications_counted(approval, actor, day=day)
    if artefact is not None:
        _require_artefact_unchanged(approval, artefact)
    if run is not None:
        workflow_run_require_awaiting_approval(run=run, approval=str(approval))
    if move == "approve":
        _require_points_resolved(approval)
        if approval.approval_type == ApprovalType.FINAL_SIGN_OFF:
            # Data may have been uploaded since the request: it must be on the register too.
            _require_reliance_register(engagement, verb="approve")
    decision = {
        "approver": actor,
        "notes": notes,
        "qualifications": {"checked_on": day.isoformat(), "qualifications": qualifications},
        "conflict_of_interest_statement": statement,
    }
    if reason is not None:
        decision["reason"] = reason
    move_and_record(
        approval,
        move,
        actor=actor,
        action=AuditAction.APPROVAL_APPROVE if move == "approve" else AuditAction.APPROVAL_REJECT,
        description=f"Approval {'granted' if move == 'approve' else 'refused'}: {approval}",
        metadata={
            "artefact_version": approval.artefact_version,
            "artefact_content_hash": approval.artefact_content_hash,
            "conflict_of_interest_statement": statement,
        },
        **decision,
    )
    if artefact is not None:
        move_and_record(artefact, move, actor=actor, action=None)
    if run is not None:
        workflow_run_conclude_approval(run=run, outcome=_run_outcome(approval), actor=actor)
    return approval


def _run_outcome(approval: Approval) -> ApprovalOutcome:
    """Return the decision on a workflow approval as the run records it."""
    return ApprovalOutcome(
        approval_id=approval.pk,
        approval=str(approval),
        approved=approval.status == ApprovalStatus.APPROVED,
        approver=str(approval.approver),
        rejection_reason=approval.rejection_reason,
        decision_notes=approval.decision_notes,
    )


def _subject_engagement(
    artefact: Artefact | None, run: WorkflowRun | None, engagement: Engagement | None
) -> Engagement:
    """Return the one engagement the approval's subjects belong to."""
    subjects = [("artefact", artefact), ("workflow run", run)]
    for what, subject in subjects:
        if subject is None:
            continue
        if engagement is not None and subject.engagement_id != engagement.pk:
            raise InvalidInput(
                APPROVAL_SUBJECT_MISMATCH.format(
                    what=what, subject=subject, other=subject.engagement, engagement=engagement
                )
            )
        engagement = subject.engagement
    if engagement is None:
        raise InvalidInput(APPROVAL_NO_SUBJECT)
    return engagement


def _engagement_of(approval: Approval) -> Engagement:
    if approval.engagement_id:
        return approval.engagement
    return approval.artefact.engagement


def _prepare_artefact_for_review(
    approval: Approval, artefact: Artefact, *, actor: AbstractUser
) -> None:
    """Pin the artefact's version and hash on the approval; send a draft for review."""
    if artefact.status not in (ArtefactStatus.DRAFT, ArtefactStatus.PENDING_REVIEW):
        raise Conflict(
            APPROVAL_ARTEFACT_NOT_REVIEWABLE.format(
                artefact=artefact, status=status_label(artefact)
            )
        )
    pending = artefact.approvals.filter(status=ApprovalStatus.PENDING).first()
    if pending is not None:
        raise Conflict(
            APPROVAL_ALREADY_PENDING.format(what="artefact", subject=artefact, approval=pending)
        )
    approval.artefact_version = artefact.version
    approval.artefact_content_hash = artefact.content_hash
    if artefact.status == ArtefactStatus.DRAFT:
        move_and_record(artefact, "submit_for_review", actor=actor, action=None)


def _prepare_run_for_review(approval: Approval, run: WorkflowRun, *, actor: AbstractUser) -> None:
    """Hold a running run for its workflow approval (one pending approval per run)."""
    if run.status not in (WorkflowStatus.RUNNING, WorkflowStatus.WAITING_APPROVAL):
        raise Conflict(APPROVAL_RUN_NOT_AWAITING.format(run=run, status=status_label(run)))
    pending = run.approvals.filter(status=ApprovalStatus.PENDING).first()
    if pending is not None:
        raise Conflict(
            APPROVAL_ALREADY_PENDING.format(what="workflow run", subject=run, approval=pending)
        )
    if run.status == WorkflowStatus.RUNNING:
        move_and_record(run, "await_approval", actor=actor, action=None)


def _require_may_decide(
    approval: Approval,
    user: AbstractUser,
    *,
    verb: str,
    artefact: Artefact | None = None,
    run: WorkflowRun | None = None,
) -> None:
    """Raise NotAllowed unless `user` is on the team, independent of the work and designated.

    Independent: not the requester, and nowhere in the approval's lineage
    (`approvals.lineage`); the refusal names the item they took part in.
    """
    engagement_require_member(
        engagement=approval.engagement, user=user, verb=f"{verb} approvals on"
    )
    reason = None
    if user.pk == approval.requested_by_id:
        reason = REASON_OWN_REQUEST
    else:
        conflict = lineage_conflict(approval, user, artefact=artefact, run=run)
        if conflict is not None:
            reason = REASON_LINEAGE.format(conflict=conflict)
    if reason is not None:
        raise NotAllowed(
            APPROVAL_NOT_INDEPENDENT.format(user=user, verb=verb, approval=approval, reason=reason)
        )
    designated = approval.designated_approver_id
    if designated is not None and designated != user.pk:
        raise NotAllowed(
            APPROVAL_DESIGNATED_ONLY.format(
                user=user, approval=approval, designated=approval.designated_approver
            )
        )


def _require_artefact_unchanged(approval: Approval, artefact: Artefact) -> None:
    """Raise Conflict unless the artefact is the version, with the bytes, that was requested."""
    if (
        artefact.version != approval.artefact_version
        or artefact.content_hash != approval.artefact_content_hash
    ):
        raise Conflict(
            APPROVAL_ARTEFACT_CHANGED.format(
                approval=approval,
                artefact=artefact,
                version=approval.artefact_version,
                requested_hash=approval.artefact_content_hash[:12] or "none",
                current_version=artefact.version,
                current_hash=artefact.content_hash[:12] or "none",
            )
        )
    if artefact.status != ArtefactStatus.PENDING_REVIEW:
        raise Conflict(
            APPROVAL_ARTEFACT_NOT_IN_REVIEW.format(
                approval=approval, artefact=artefact, status=status_label(artefact)
            )
        )


def _require_points_resolved(approval: Approval) -> None:
    """Raise Conflict, with how many and how severe, while any review point is unresolved."""
    severities = list(
        approval.review_points.filter(status__in=UNRESOLVED_REVIEW_POINT_STATUSES).values_list(
            "severity", flat=True
        )
    )
    if severities:
        counts = ", ".join(
            f"{severities.count(severity)} {severity}"
            for severity in ReviewPointSeverity.values[::-1]
            if severity in severities
        )
        raise Conflict(
            APPROVAL_OPEN_POINTS.format(approval=approval, count=len(severities), severities=counts)
        )
