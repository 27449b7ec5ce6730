"""Every write to approvals and professional qualifications: the professional-standards rules.

Reviews of actuarial work must be independent, qualified and on record:

- nobody decides an approval they requested, nor one on an artefact they created
  or a workflow run they started; a designated approver is the only one who may
  decide;
- sign-offs (`SIGN_OFF_TYPES`) need a professional qualification valid on the
  decision date, and every decision snapshots the approver's valid
  qualifications;
- an artefact approval pins the artefact's version and SHA-256 when requested,
  and a decision is refused if they no longer match;
- the decision carries through: the artefact is approved or rejected, a run
  waiting for its workflow approval completes or fails.

Each decision locks, in this order, the engagement, the approval, the artefact and
the run, so two approvers acting at once end with exactly one decision.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from artefacts.choices import ArtefactStatus
from artefacts.models import Artefact
from audit.choices import AuditAction
from audit.services import audit_record
from config.exceptions import Conflict, InvalidInput, NotAllowed
from config.services import (
    apply_changes,
    changes,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    validate,
)
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.services import RUN_NOT_AWAITING, workflow_run_conclude_approval

from .choices import SIGN_OFF_TYPES, ApprovalStatus, ApprovalType
from .models import Approval, ProfessionalQualification

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

NEW_APPROVALS = "approvals"
NEW_DECISIONS = "decisions on its approvals"
NEW_REVOCATIONS = "revocations of its approvals"
# Fields the requester may still change while the approval is pending.
EDITABLE_FIELDS = frozenset({"request_notes", "designated_approver", "expires_at", "metadata"})
QUALIFICATION_FIELDS = frozenset(
    {"designation", "issuing_body", "membership_number", "valid_from", "valid_until"}
)
ADD_QUALIFICATION_PERMISSION = "approvals.add_professionalqualification"
CHANGE_QUALIFICATION_PERMISSION = "approvals.change_professionalqualification"

APPROVAL_NO_SUBJECT = "An approval needs a subject: an artefact, a workflow run or an engagement."
APPROVAL_SUBJECT_MISMATCH = (
    "The {what} “{subject}” belongs to engagement “{other}”, not “{engagement}”: "
    "an approval has one engagement."
)
APPROVAL_NEEDS_RUN = (
    "A workflow approval needs the workflow run it releases (give the run, or an "
    "artefact produced by it)."
)
APPROVAL_RUN_ONLY_FOR_WORKFLOW = (
    "Only a workflow approval releases a workflow run; request a {approval_type} on the "
    "run's artefact or on the engagement instead."
)
APPROVAL_EXPIRY_PAST = "An approval cannot expire in the past ({expires_at})."
APPROVAL_ARTEFACT_NOT_REVIEWABLE = (
    "Cannot request approval of artefact “{artefact}”: it is {status} (only draft or "
    "pending-review artefacts can be reviewed; upload a new version instead)."
)
APPROVAL_ALREADY_PENDING = (
    "Cannot request another approval of {what} “{subject}”: approval “{approval}” is still pending."
)
APPROVAL_RUN_NOT_AWAITING = (
    "Cannot request a workflow approval of run “{run}”: it is {status} (only a running "
    "run, or one waiting for approval, can be submitted)."
)
APPROVAL_NOT_INDEPENDENT = "{user} may not {verb} approval “{approval}”: {reason}."
REASON_OWN_REQUEST = "they requested it (reviews must be independent)"
REASON_OWN_ARTEFACT = "they created artefact “{artefact}” (reviews must be independent)"
REASON_OWN_RUN = "they started workflow run “{run}” (reviews must be independent)"
APPROVAL_DESIGNATED_ONLY = (
    "{user} may not decide approval “{approval}”: only its designated approver, "
    "{designated}, may decide it."
)
APPROVAL_QUALIFICATION_REQUIRED = (
    "{user} may not decide approval “{approval}”: a {approval_type} needs an approver "
    "holding a professional qualification valid on {day}, and they hold none."
)
APPROVAL_EXPIRED = "Cannot decide approval “{approval}”: it expired{when}."
APPROVAL_ARTEFACT_CHANGED = (
    "Cannot decide approval “{approval}”: artefact “{artefact}” changed since the approval "
    "was requested (requested on version {version}, SHA-256 {requested_hash}; now version "
    "{current_version}, SHA-256 {current_hash}). Request a new approval."
)
APPROVAL_ARTEFACT_NOT_IN_REVIEW = (
    "Cannot decide approval “{approval}”: artefact “{artefact}” is {status}, not pending review."
)
APPROVAL_REVOKE_NOT_ALLOWED = (
    "{user} may not revoke approval “{approval}”: only its approver, the engagement's "
    "lead actuary or reviewer, or a superuser may revoke it."
)
APPROVAL_NOT_DUE = (
    "Cannot expire approval “{approval}”: it is not past its expiry date ({expires_at})."
)
APPROVAL_NOT_EDITABLE = (
    "Cannot edit approval “{approval}”: it is {status} (only pending approvals may be edited)."
)
APPROVAL_EDIT_NOT_ALLOWED = (
    "{user} may not edit approval “{approval}”: only its requester or a superuser may."
)
NOT_EDITABLE_REASON = "they are fixed when the approval is requested or decided"
QUALIFICATION_NOT_ALLOWED = (
    "{user} may not record professional qualifications: this needs the “{permission}” permission."
)
QUALIFICATION_OWN = (
    "{user} may not record or change their own professional qualification: another "
    "person must verify it."
)
QUALIFICATION_FIXED_REASON = "a qualification belongs to one person"


@transaction.atomic
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
        raise InvalidInput(APPROVAL_EXPIRY_PAST.format(expires_at=expires_at))
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
    validate(approval)
    save_with_history(approval, actor=actor, reason="Requested")
    audit_record(
        action=AuditAction.APPROVAL_REQUEST,
        resource=approval,
        user=actor,
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


@transaction.atomic
def approval_update(*, approval: Approval, actor: AbstractUser, data: dict[str, Any]) -> Approval:
    """Change a pending approval's notes, designated approver, expiry or metadata."""
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="edit approvals on")
    if not approval.is_pending:
        raise Conflict(APPROVAL_NOT_EDITABLE.format(approval=approval, status=approval.status))
    if actor.pk != approval.requested_by_id and not actor.is_superuser:
        raise NotAllowed(APPROVAL_EDIT_NOT_ALLOWED.format(user=actor, approval=approval))
    before = snapshot(approval)
    apply_changes(approval, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    old, new = changes(before, snapshot(approval))
    if not new:
        return approval
    if "expires_at" in new and approval.expires_at and approval.expires_at <= timezone.now():
        raise InvalidInput(APPROVAL_EXPIRY_PAST.format(expires_at=approval.expires_at))
    if "designated_approver" in new and approval.designated_approver is not None:
        _require_may_decide(
            approval, approval.designated_approver, verb="be the designated approver of"
        )
    validate(approval)
    save_edit_and_record(
        approval, actor=actor, action=AuditAction.APPROVAL_UPDATE, old=old, new=new
    )
    return approval


def approval_approve(*, approval: Approval, actor: AbstractUser, notes: str = "") -> Approval:
    """Approve a pending approval; approve its artefact or complete its waiting run."""
    return _decide(approval, "approve", actor=actor, notes=notes)


def approval_reject(
    *, approval: Approval, actor: AbstractUser, reason: str, notes: str = ""
) -> Approval:
    """Reject a pending approval with a reason; reject its artefact or fail its waiting run."""
    return _decide(approval, "reject", actor=actor, notes=notes, reason=reason)


@transaction.atomic
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


@transaction.atomic
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


@transaction.atomic
def qualification_create(
    *,
    user: AbstractUser,
    designation: str,
    issuing_body: str,
    valid_from: datetime.date,
    actor: AbstractUser,
    membership_number: str = "",
    valid_until: datetime.date | None = None,
) -> ProfessionalQualification:
    """Record a user's professional qualification, verified by someone else."""
    _require_may_certify(actor, user, permission=ADD_QUALIFICATION_PERMISSION)
    qualification = ProfessionalQualification(
        user=user,
        designation=designation,
        issuing_body=issuing_body,
        membership_number=membership_number,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    validate(qualification)
    save_with_history(qualification, actor=actor, reason="Recorded", created=True)
    audit_record(
        action=AuditAction.PERMISSION_CHANGE,
        resource=qualification,
        user=actor,
        description=f"Qualification recorded for {user}: {qualification}",
        new_value=snapshot(qualification, ("user", *QUALIFICATION_FIELDS)),
    )
    return qualification


@transaction.atomic
def qualification_update(
    *, qualification: ProfessionalQualification, actor: AbstractUser, data: dict[str, Any]
) -> ProfessionalQualification:
    """Change a professional qualification (e.g. its end date), verified by someone else."""
    qualification = lock(qualification)
    _require_may_certify(actor, qualification.user, permission=CHANGE_QUALIFICATION_PERMISSION)
    before = snapshot(qualification)
    apply_changes(
        qualification, data=data, allowed=QUALIFICATION_FIELDS, reason=QUALIFICATION_FIXED_REASON
    )
    old, new = changes(before, snapshot(qualification))
    if not new:
        return qualification
    validate(qualification)
    save_with_history(qualification, actor=actor, reason="Edited: " + ", ".join(sorted(new)))
    audit_record(
        action=AuditAction.PERMISSION_CHANGE,
        resource=qualification,
        user=actor,
        description=f"Qualification changed for {qualification.user}: {qualification}",
        old_value=old,
        new_value=new,
    )
    return qualification


def qualifications_valid_on(
    *, user: AbstractUser, day: datetime.date
) -> QuerySet[ProfessionalQualification]:
    """Return the user's professional qualifications valid on `day`."""
    return ProfessionalQualification.objects.filter(user=user, valid_from__lte=day).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gte=day)
    )


@transaction.atomic
def _decide(
    approval: Approval,
    move: str,
    *,
    actor: AbstractUser,
    notes: str,
    reason: str | None = None,
) -> Approval:
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="decide approvals on")
    approval.check_move(move)
    if approval.is_expired:
        when = f" on {approval.expires_at:%Y-%m-%d %H:%M}" if approval.expires_at else ""
        raise Conflict(APPROVAL_EXPIRED.format(approval=approval, when=when))
    engagement_require_open(engagement=engagement, what=NEW_DECISIONS)
    artefact = lock(approval.artefact) if approval.artefact_id else None
    run = lock(approval.workflow_run) if approval.workflow_run_id else None
    _require_may_decide(approval, actor, verb="decide", artefact=artefact, run=run)
    day = timezone.localdate()
    qualifications = [q.snapshot() for q in qualifications_valid_on(user=actor, day=day)]
    if approval.approval_type in SIGN_OFF_TYPES and not qualifications:
        raise NotAllowed(
            APPROVAL_QUALIFICATION_REQUIRED.format(
                user=actor,
                approval=approval,
                approval_type=approval.get_approval_type_display().lower(),
                day=day.isoformat(),
            )
        )
    if artefact is not None:
        _require_artefact_unchanged(approval, artefact)
    if run is not None and run.status != WorkflowStatus.WAITING_APPROVAL:
        raise Conflict(RUN_NOT_AWAITING.format(run=run, approval=approval, status=run.status))
    decision = {
        "approver": actor,
        "notes": notes,
        "qualifications": {"checked_on": day.isoformat(), "qualifications": qualifications},
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
        },
        **decision,
    )
    if artefact is not None:
        move_and_record(artefact, move, actor=actor, action=None)
    if run is not None:
        workflow_run_conclude_approval(run=run, approval=approval, actor=actor)
    return approval


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
            APPROVAL_ARTEFACT_NOT_REVIEWABLE.format(artefact=artefact, status=artefact.status)
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
        raise Conflict(APPROVAL_RUN_NOT_AWAITING.format(run=run, status=run.status))
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
    """Raise NotAllowed unless `user` is on the team, independent of the work and designated."""
    engagement_require_member(
        engagement=approval.engagement, user=user, verb=f"{verb} approvals on"
    )
    artefact = artefact or approval.artefact
    runs = [r for r in (run or approval.workflow_run, artefact and artefact.workflow_run) if r]
    reason = None
    if user.pk == approval.requested_by_id:
        reason = REASON_OWN_REQUEST
    elif artefact is not None and user.pk == artefact.created_by_id:
        reason = REASON_OWN_ARTEFACT.format(artefact=artefact)
    else:
        started = next((r for r in runs if r.started_by_id == user.pk), None)
        if started is not None:
            reason = REASON_OWN_RUN.format(run=started)
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
                approval=approval, artefact=artefact, status=artefact.status
            )
        )


def _require_may_certify(actor: AbstractUser, user: AbstractUser, *, permission: str) -> None:
    if not actor.is_authenticated or not actor.has_perm(permission):
        raise NotAllowed(
            QUALIFICATION_NOT_ALLOWED.format(user=actor, permission=permission.split(".")[-1])
        )
    if actor.pk == user.pk:
        raise NotAllowed(QUALIFICATION_OWN.format(user=actor))
