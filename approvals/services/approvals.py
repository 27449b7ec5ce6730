"""Every write to approvals and professional qualifications: the professional-standards rules.

Reviews of actuarial work must be independent, qualified and on record:

- nobody decides an approval they requested, nor one on work they took part in:
  anything in its provenance (`approvals.provenance`: the artefact and its earlier
  versions, the runs that produced them, those runs' inputs) they uploaded,
  created, queued or started; a designated approver is the only one who may
  decide;
- the decider records a conflict-of-interest statement with the decision;
- sign-offs (`SIGN_OFF_TYPES`) need a professional qualification valid on the
  decision date, and every decision snapshots the approver's valid
  qualifications;
- an artefact approval pins the artefact's version and SHA-256 when requested,
  and a decision is refused if they no longer match;
- review points (APS X2): whoever may decide an approval raises challenges on it,
  the preparer answers, the reviewer resolves or reopens; an approval is not
  approved while any point is unresolved, and the resolved points export as a
  review memo (Markdown and Word artefacts);
- a final sign-off needs every input data artefact in the data reliance register
  (ASOP 23) and a completed disclosure checklist (ASOP 41), which is frozen into
  the approval when it is requested;
- the decision carries through: the artefact is approved or rejected, a run
  waiting for its workflow approval completes or fails.

Each decision locks, in this order, the engagement, the approval, the artefact and
the run, so two approvers acting at once end with exactly one decision.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from artefacts.choices import ArtefactStatus, ArtefactType
from artefacts.models import Artefact
from artefacts.selectors import engagement_input_data_without_reliance
from artefacts.services import artefact_create, artefact_new_version
from audit.choices import AuditAction, Severity
from audit.services import audit_record
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import Conflict, InvalidInput, NotAllowed
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
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.selectors import workflow_run_require_awaiting_approval
from workflows.services import ApprovalOutcome, workflow_run_conclude_approval

from . import disclosures
from .choices import (
    SIGN_OFF_TYPES,
    UNRESOLVED_REVIEW_POINT_STATUSES,
    ApprovalStatus,
    ApprovalType,
    DisclosureChecklistStatus,
    MemoFormat,
    ReviewPointSeverity,
    ReviewPointStatus,
)
from .memo import review_memo_docx, review_memo_markdown
from .models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from .provenance import provenance_conflict, provenance_people

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
# Certifying qualifications is its own role (the Certifiers group), never an actuary's
# default: whoever certifies could otherwise make their own approver "qualified".
CERTIFY_QUALIFICATION_PERMISSION = "approvals.certify_professionalqualification"
CERTIFIERS_GROUP = "Certifiers"

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
# `conflict` says how they took part in the work: "they started workflow run “…”".
REASON_PROVENANCE = "{conflict} (reviews must be independent)"
COI_STATEMENT_REQUIRED = (
    "{user} must record a conflict-of-interest statement to decide approval “{approval}”: "
    "say whether anything could impair their independence (or that nothing does)."
)
APPROVAL_DESIGNATED_ONLY = (
    "{user} may not decide approval “{approval}”: only its designated approver, "
    "{designated}, may decide it."
)
APPROVAL_QUALIFICATION_REQUIRED = (
    "{user} may not decide approval “{approval}”: a {approval_type} needs an approver "
    "holding a professional qualification valid on {day}, and they hold none."
)
APPROVAL_QUALIFICATION_TOO_NEW = (
    "{user} may not decide approval “{approval}”: a {approval_type} needs an approver "
    "holding a professional qualification valid on {day}, recorded before the sign-off was "
    "requested ({requested}); {qualifications} was recorded or changed after that and does "
    "not count for it. Request a new approval."
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
    "{user} may not certify professional qualifications: only certifiers may (the "
    "“{group}” group, permission “{permission}”)."
)
QUALIFICATION_OWN = (
    "{user} may not record or change their own professional qualification: another "
    "person must verify it."
)
QUALIFICATION_FIXED_REASON = "a qualification belongs to one person"

NEW_REVIEW_POINTS = "review points"
NEW_MEMOS = "review memos"
NEW_DISCLOSURES = "disclosures"
APPROVAL_OPEN_POINTS = (
    "Cannot approve approval “{approval}”: {count} review point(s) not resolved "
    "({severities}); have each answered and resolved first."
)
REVIEW_POINT_APPROVAL_DECIDED = (
    "Cannot {verb} review points of approval “{approval}”: it is {status} (review points "
    "belong to a pending approval; its record is fixed once decided)."
)
REVIEW_POINT_TEXT_REQUIRED = "Say what the review point is: its text is required."
REVIEW_POINT_SUBJECT_ELSEWHERE = (
    "The {what} “{subject}” belongs to another engagement than approval “{approval}”."
)
REVIEW_POINT_OWN = (
    "{user} may not {verb} review point “{point}”: they {did} it (a challenge is answered "
    "and accepted by different people)."
)
REVIEW_POINT_NOT_PREPARER = (
    "{user} may not respond to review point “{point}”: only the preparer answers it (the "
    "approval's requester, the engagement's lead actuary, or someone who took part in the "
    "work under review)."
)
FINAL_SIGN_OFF_NO_RELIANCE = (
    "Cannot {verb} a final sign-off of engagement “{engagement}”: {count} input data "
    "artefact(s) have no entry in the data reliance register: {artefacts}. Record one for each."
)
FINAL_SIGN_OFF_NO_CHECKLIST = (
    "Cannot request a final sign-off of engagement “{engagement}”: it has no disclosure "
    "checklist; pre-fill one, review it, and have the lead actuary complete it."
)
FINAL_SIGN_OFF_CHECKLIST_DRAFT = (
    "Cannot request a final sign-off of engagement “{engagement}”: its disclosure checklist "
    "is a draft; the lead actuary must complete it first."
)
FINAL_SIGN_OFF_CHECKLIST_STALE = (
    "Cannot request a final sign-off of engagement “{engagement}”: the data reliance "
    "register changed since the disclosure checklist was completed; pre-fill it again and "
    "have the lead actuary complete it."
)
CHECKLIST_FROZEN = (
    "Cannot {verb} disclosure checklist “{checklist}”: it was frozen into final sign-off "
    "“{approval}” on {frozen_at:%Y-%m-%d %H:%M} and is locked; pre-fill a new one for "
    "another request."
)
CHECKLIST_LEAD_ONLY = (
    "{user} may not complete disclosure checklist “{checklist}”: only the engagement's lead "
    "actuary ({lead}) completes it."
)
CHECKLIST_FIELD_REQUIRED = "Cannot complete disclosure checklist “{checklist}”: {what} is required."
CHECKLIST_EDITABLE_FIELDS = frozenset(
    {"responsible_actuary", "information_date", "material_changes", "other_disclosures"}
)
CHECKLIST_FIXED_REASON = "they are filled from the register and the previous engagement"
ARTEFACT_HAS_PENDING_APPROVAL = (
    "Cannot {verb} artefact “{artefact}”: its approval “{approval}” is still pending; "
    "have it decided first."
)
MEMO_FORMAT_INVALID = "format must be one of {formats}, not {value!r}."
MEMO_METADATA_KEY = "review_memo_of"


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
        raise InvalidInput(APPROVAL_EXPIRY_PAST.format(expires_at=expires_at), field="expires_at")
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
        raise InvalidInput(
            APPROVAL_EXPIRY_PAST.format(expires_at=approval.expires_at), field="expires_at"
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


# --- review points (APS X2) -------------------------------------------------------------


@transaction.atomic
def review_point_raise(
    *,
    approval: Approval,
    actor: AbstractUser,
    text: str,
    severity: str = ReviewPointSeverity.MINOR,
    artefact: Artefact | None = None,
    workflow_run: WorkflowRun | None = None,
    trace_id: str | None = None,
) -> ReviewPoint:
    """Raise a challenge on a pending approval: open.

    Only someone who may decide the approval raises points (the same rules:
    on the team, independent of its provenance, its designated approver if it
    has one). The point may name the artefact or run of the engagement it concerns.
    """
    engagement = lock(_engagement_of(approval))
    approval = lock(approval)
    engagement_require_member(engagement=engagement, user=actor, verb="raise review points on")
    _require_pending_for_points(approval, verb="raise")
    engagement_require_open(engagement=engagement, what=NEW_REVIEW_POINTS)
    _require_may_decide(approval, actor, verb="raise review points on")
    if not text or not text.strip():
        raise InvalidInput(REVIEW_POINT_TEXT_REQUIRED, field="text")
    for what, field, subject in (
        ("artefact", "artefact", artefact),
        ("workflow run", "workflow_run", workflow_run),
    ):
        if subject is not None and subject.engagement_id != engagement.pk:
            raise InvalidInput(
                REVIEW_POINT_SUBJECT_ELSEWHERE.format(
                    what=what, subject=subject, approval=approval
                ),
                field=field,
            )
    point = ReviewPoint(
        approval=approval,
        raised_by=actor,
        severity=severity,
        text=text.strip(),
        artefact=artefact,
        workflow_run=workflow_run,
        trace_id=trace_id,
    )
    validate(point)
    create_and_record(
        point,
        actor=actor,
        action=AuditAction.REVIEW_POINT_RAISE,
        reason="Raised",
        description=f"Review point raised on {approval}",
        fields=("approval", "severity", "text", "artefact", "workflow_run"),
    )
    return point


@transaction.atomic
def review_point_respond(*, point: ReviewPoint, actor: AbstractUser, response: str) -> ReviewPoint:
    """Answer a review point: open → responded.

    The preparer answers: the approval's requester, the engagement's lead actuary,
    or anyone who took part in the work under review (its provenance), on the team
    with a working role, and never the person who raised the point.
    """
    engagement, approval, point = _lock_point(point)
    engagement_require_member(engagement=engagement, user=actor, verb="respond to review points on")
    _require_pending_for_points(approval, verb="respond to")
    engagement_require_open(engagement=engagement, what=NEW_REVIEW_POINTS)
    point.check_move("respond")
    if actor.pk == point.raised_by_id:
        raise NotAllowed(
            REVIEW_POINT_OWN.format(user=actor, verb="respond to", point=point, did="raised")
        )
    preparers = {approval.requested_by_id, engagement.lead_actuary_id} | provenance_people(approval)
    if actor.pk not in preparers:
        raise NotAllowed(REVIEW_POINT_NOT_PREPARER.format(user=actor, point=point))
    return move_and_record(
        point,
        "respond",
        actor=actor,
        action=AuditAction.REVIEW_POINT_RESPOND,
        description=f"Review point answered on {approval}",
        user=actor,
        response=response,
    )


@transaction.atomic
def review_point_resolve(
    *, point: ReviewPoint, actor: AbstractUser, notes: str = ""
) -> ReviewPoint:
    """Accept the answer to a review point: responded → resolved.

    Whoever may decide the approval resolves (not the person who answered).
    """
    engagement, approval, point = _lock_point(point)
    engagement_require_member(engagement=engagement, user=actor, verb="resolve review points on")
    _require_pending_for_points(approval, verb="resolve")
    engagement_require_open(engagement=engagement, what=NEW_REVIEW_POINTS)
    point.check_move("resolve")
    if actor.pk == point.responded_by_id:
        raise NotAllowed(
            REVIEW_POINT_OWN.format(user=actor, verb="resolve", point=point, did="answered")
        )
    _require_may_decide(approval, actor, verb="resolve review points on")
    return move_and_record(
        point,
        "resolve",
        actor=actor,
        action=AuditAction.REVIEW_POINT_RESOLVE,
        description=f"Review point resolved on {approval}",
        user=actor,
        notes=notes,
    )


@transaction.atomic
def review_point_reopen(*, point: ReviewPoint, actor: AbstractUser, reason: str) -> ReviewPoint:
    """Challenge again, with a reason: responded or resolved → open.

    Whoever may decide the approval reopens; the earlier answer stays in the history.
    """
    engagement, approval, point = _lock_point(point)
    engagement_require_member(engagement=engagement, user=actor, verb="reopen review points on")
    _require_pending_for_points(approval, verb="reopen")
    engagement_require_open(engagement=engagement, what=NEW_REVIEW_POINTS)
    point.check_move("reopen")
    _require_may_decide(approval, actor, verb="reopen review points on")
    return move_and_record(
        point,
        "reopen",
        actor=actor,
        action=AuditAction.REVIEW_POINT_REOPEN,
        severity=Severity.WARNING,
        description=f"Review point reopened on {approval}",
        reason=reason,
    )


@transaction.atomic
def review_memo_export(
    *, approval: Approval, actor: AbstractUser, format: str = MemoFormat.BOTH
) -> list[Artefact]:
    """Store the approval's resolved review points as a review memo; return its artefact(s).

    `format`: markdown, docx or both. Each memo is an artefact of the engagement
    (markdown or word type) marked with the approval's id; exporting again after the
    points changed stores a new version of it, and an unchanged memo is returned as
    it is. Any working member of the team may export; a data_export event records it.
    """
    if format not in MemoFormat.values:
        raise InvalidInput(
            MEMO_FORMAT_INVALID.format(formats=", ".join(MemoFormat.values), value=format),
            field="format",
        )
    engagement = lock(_engagement_of(approval))
    approval = Approval.objects.get(pk=approval.pk)
    engagement_require_member(engagement=engagement, user=actor, verb="export review memos of")
    engagement_require_open(engagement=engagement, what=NEW_MEMOS)
    points = list(
        approval.review_points.filter(status=ReviewPointStatus.RESOLVED)
        .select_related("raised_by", "responded_by", "resolved_by", "artefact", "workflow_run")
        .order_by("created_at")
    )
    unresolved = approval.review_points.exclude(status=ReviewPointStatus.RESOLVED).count()
    renderings = {
        MemoFormat.MARKDOWN: (
            lambda: review_memo_markdown(approval, points, unresolved=unresolved).encode("utf-8"),
            ArtefactType.MARKDOWN,
            "review_memo.md",
        ),
        MemoFormat.DOCX: (
            lambda: review_memo_docx(approval, points, unresolved=unresolved),
            ArtefactType.WORD,
            "review_memo.docx",
        ),
    }
    wanted = list(renderings) if format == MemoFormat.BOTH else [MemoFormat(format)]
    artefacts = []
    for memo_format in wanted:
        render, artefact_type, file_name = renderings[memo_format]
        artefacts.append(
            _store_memo(
                approval,
                content=render(),
                memo_format=memo_format,
                artefact_type=artefact_type,
                file_name=file_name,
                actor=actor,
            )
        )
    audit_record(
        action=AuditAction.DATA_EXPORT,
        resource=approval,
        user=actor,
        description=f"Review memo exported: {approval}",
        metadata={
            "review_memo": [
                {"artefact_id": str(a.pk), "version": a.version, "content_hash": a.content_hash}
                for a in artefacts
            ],
            "resolved_points": len(points),
            "unresolved_points": unresolved,
        },
    )
    return artefacts


# --- disclosure checklist (ASOP 41) ------------------------------------------------------


@transaction.atomic
def disclosure_checklist_prefill(
    *,
    actor: AbstractUser,
    engagement: Engagement | None = None,
    checklist: DisclosureChecklist | None = None,
) -> DisclosureChecklist:
    """Return the engagement's open disclosure checklist filled from what the system holds.

    Give the engagement, or its open `checklist` (refused if frozen). Creates the
    checklist if there is none (starting from the texts of the last frozen one, if
    any). Always refreshes the reliances (from the data reliance register) and the
    comparison with the previous engagement of the same client and type; fills the
    responsible actuary (the lead actuary), the information date and the material
    changes only where they are empty, so what people wrote is kept. A completed
    checklist that this changes goes back to draft.
    """
    engagement = lock(checklist.engagement if checklist is not None else engagement)
    engagement_require_member(engagement=engagement, user=actor, verb="prepare the disclosures of")
    if checklist is not None:
        _require_not_frozen(lock(checklist), verb="pre-fill")
    engagement_require_open(engagement=engagement, what=NEW_DISCLOSURES)
    checklist = _open_checklist(engagement)
    created = checklist is None
    if created:
        checklist = DisclosureChecklist(engagement=engagement)
        last = (
            DisclosureChecklist.objects.filter(engagement=engagement, frozen_at__isnull=False)
            .order_by("-frozen_at")
            .first()
        )
        if last is not None:
            checklist.other_disclosures = last.other_disclosures
    before = snapshot(checklist)
    previous, comparison, summary = disclosures.material_changes(engagement)
    checklist.reliances = disclosures.reliance_snapshot(engagement)
    checklist.previous_engagement = previous
    checklist.comparison = comparison
    checklist.responsible_actuary = checklist.responsible_actuary or engagement.lead_actuary
    checklist.information_date = checklist.information_date or disclosures.information_date(
        engagement
    )
    checklist.material_changes = checklist.material_changes or summary
    old, new = changes(before, snapshot(checklist))
    if created or new:
        if checklist.status == DisclosureChecklistStatus.COMPLETED:
            checklist.revise()
            old, new = changes(before, snapshot(checklist))
        validate(checklist)
        save_with_history(checklist, actor=actor, reason="Pre-filled", created=created)
        audit_record(
            action=AuditAction.DISCLOSURE_CHECKLIST_UPDATE,
            resource=checklist,
            user=actor,
            description=f"Disclosure checklist pre-filled: {checklist}",
            old_value=None if created else old,
            new_value=snapshot(checklist) if created else new,
        )
    return checklist


@transaction.atomic
def disclosure_checklist_update(
    *, checklist: DisclosureChecklist, actor: AbstractUser, data: dict[str, Any]
) -> DisclosureChecklist:
    """Change what a checklist discloses (responsible actuary, date, texts) until it is frozen.

    A completed checklist that changes goes back to draft (the lead completes it again).
    """
    engagement = lock(checklist.engagement)
    checklist = lock(checklist)
    engagement_require_member(engagement=engagement, user=actor, verb="edit the disclosures of")
    _require_not_frozen(checklist, verb="edit")
    before = snapshot(checklist)
    apply_changes(
        checklist, data=data, allowed=CHECKLIST_EDITABLE_FIELDS, reason=CHECKLIST_FIXED_REASON
    )
    old, new = changes(before, snapshot(checklist))
    if not new:
        return checklist
    if "responsible_actuary" in new and checklist.responsible_actuary is not None:
        engagement_require_member(
            engagement=engagement,
            user=checklist.responsible_actuary,
            verb="be the responsible actuary of",
        )
    if checklist.status == DisclosureChecklistStatus.COMPLETED:
        checklist.revise()
        old, new = changes(before, snapshot(checklist))
    validate(checklist)
    save_edit_and_record(
        checklist, actor=actor, action=AuditAction.DISCLOSURE_CHECKLIST_UPDATE, old=old, new=new
    )
    return checklist


@transaction.atomic
def disclosure_checklist_complete(
    *, checklist: DisclosureChecklist, actor: AbstractUser
) -> DisclosureChecklist:
    """Complete the checklist: draft → completed; by the engagement's lead actuary only.

    Needs a responsible actuary and an information date, and every input data
    artefact in the data reliance register; the reliances are taken from the
    register as it stands now.
    """
    engagement = lock(checklist.engagement)
    checklist = lock(checklist)
    engagement_require_member(engagement=engagement, user=actor, verb="complete the disclosures of")
    _require_not_frozen(checklist, verb="complete")
    checklist.check_move("complete")
    if actor.pk != engagement.lead_actuary_id:
        raise NotAllowed(
            CHECKLIST_LEAD_ONLY.format(
                user=actor, checklist=checklist, lead=engagement.lead_actuary or "none"
            )
        )
    for field, what in (
        ("responsible_actuary", "the responsible actuary"),
        ("information_date", "the information date"),
    ):
        if getattr(checklist, field) is None:
            raise InvalidInput(
                CHECKLIST_FIELD_REQUIRED.format(checklist=checklist, what=what), field=field
            )
    _require_reliance_register(engagement, verb="complete the disclosures for")
    checklist.reliances = disclosures.reliance_snapshot(engagement)
    return move_and_record(
        checklist,
        "complete",
        actor=actor,
        action=AuditAction.DISCLOSURE_CHECKLIST_COMPLETE,
        description=f"Disclosure checklist completed: {checklist}",
        user=actor,
    )


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
    """Certify a user's professional qualification: a certifier other than the holder."""
    _require_may_certify(actor, user)
    qualification = ProfessionalQualification(
        user=user,
        designation=designation,
        issuing_body=issuing_body,
        membership_number=membership_number,
        valid_from=valid_from,
        valid_until=valid_until,
    )
    validate(qualification)
    create_and_record(
        qualification,
        actor=actor,
        action=AuditAction.PERMISSION_CHANGE,
        reason="Recorded",
        description=f"Qualification certified for {user}: {qualification}",
        fields=("user", *QUALIFICATION_FIELDS),
        metadata={"certification": "recorded", "holder": user.get_username()},
    )
    return qualification


@transaction.atomic
def qualification_update(
    *, qualification: ProfessionalQualification, actor: AbstractUser, data: dict[str, Any]
) -> ProfessionalQualification:
    """Change a professional qualification (e.g. its end date): a certifier, not the holder."""
    qualification = lock(qualification)
    _require_may_certify(actor, qualification.user)
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
        description=f"Qualification certification changed for {qualification.user}: "
        f"{qualification}",
        old_value=old,
        new_value=new,
        metadata={"certification": "changed", "holder": qualification.user.get_username()},
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
        when = f" on {approval.expires_at:%Y-%m-%d %H:%M}" if approval.expires_at else ""
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
    """Raise NotAllowed unless `user` is on the team, independent of the work and designated.

    Independent: not the requester, and nowhere in the approval's provenance
    (`approvals.provenance`); the refusal names the item they took part in.
    """
    engagement_require_member(
        engagement=approval.engagement, user=user, verb=f"{verb} approvals on"
    )
    reason = None
    if user.pk == approval.requested_by_id:
        reason = REASON_OWN_REQUEST
    else:
        conflict = provenance_conflict(approval, user, artefact=artefact, run=run)
        if conflict is not None:
            reason = REASON_PROVENANCE.format(conflict=conflict)
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


def may_certify(user: AbstractUser) -> bool:
    """Return whether `user` may certify other people's professional qualifications."""
    return user.is_authenticated and user.has_perm(CERTIFY_QUALIFICATION_PERMISSION)


def _require_may_certify(actor: AbstractUser, user: AbstractUser) -> None:
    if not may_certify(actor):
        raise NotAllowed(
            QUALIFICATION_NOT_ALLOWED.format(
                user=actor,
                group=CERTIFIERS_GROUP,
                permission=CERTIFY_QUALIFICATION_PERMISSION.split(".")[-1],
            )
        )
    if actor.pk == user.pk:
        raise NotAllowed(QUALIFICATION_OWN.format(user=actor))


def _qualifications_counted(approval: Approval, actor: AbstractUser, *, day) -> list[dict]:
    """Return snapshots of the actor's qualifications that count for deciding `approval`.

    Only those valid on `day` and recorded (or last changed) before the approval was
    requested count: a certification made after the request, perhaps by the requester
    herself, must not qualify the approver she chose. A sign-off with none is refused.
    """
    valid = list(qualifications_valid_on(user=actor, day=day))
    counted = [q for q in valid if q.updated_at <= approval.requested_at]
    if approval.approval_type in SIGN_OFF_TYPES and not counted:
        approval_type = approval.get_approval_type_display().lower()
        if valid:
            raise NotAllowed(
                APPROVAL_QUALIFICATION_TOO_NEW.format(
                    user=actor,
                    approval=approval,
                    approval_type=approval_type,
                    day=day.isoformat(),
                    requested=f"{approval.requested_at:%Y-%m-%d %H:%M} UTC",
                    qualifications=", ".join(str(q) for q in valid),
                )
            )
        raise NotAllowed(
            APPROVAL_QUALIFICATION_REQUIRED.format(
                user=actor, approval=approval, approval_type=approval_type, day=day.isoformat()
            )
        )
    return [q.snapshot() for q in counted]


def _lock_point(point: ReviewPoint) -> tuple[Engagement, Approval, ReviewPoint]:
    """Lock, in the decision's order, the engagement, the approval and the point."""
    approval = point.approval
    engagement = lock(_engagement_of(approval))
    return engagement, lock(approval), lock(point)


def _require_pending_for_points(approval: Approval, *, verb: str) -> None:
    if not approval.is_pending:
        raise Conflict(
            REVIEW_POINT_APPROVAL_DECIDED.format(
                verb=verb, approval=approval, status=approval.status
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


def _require_reliance_register(engagement: Engagement, *, verb: str) -> None:
    """Raise Conflict naming the input data that has no data reliance entry."""
    missing = engagement_input_data_without_reliance(engagement)
    if missing:
        raise Conflict(
            FINAL_SIGN_OFF_NO_RELIANCE.format(
                verb=verb,
                engagement=engagement,
                count=len(missing),
                artefacts=", ".join(f"“{artefact}”" for artefact in missing),
            )
        )


def _open_checklist(engagement: Engagement) -> DisclosureChecklist | None:
    """Return the engagement's checklist that is not frozen yet, locked (or None)."""
    return (
        DisclosureChecklist.objects.select_for_update()
        .filter(engagement=engagement, frozen_at__isnull=True)
        .first()
    )


def _completed_checklist(engagement: Engagement) -> DisclosureChecklist:
    """Return the open, completed checklist a final sign-off freezes; Conflict if none."""
    checklist = _open_checklist(engagement)
    if checklist is None:
        raise Conflict(FINAL_SIGN_OFF_NO_CHECKLIST.format(engagement=engagement))
    if checklist.status != DisclosureChecklistStatus.COMPLETED:
        raise Conflict(FINAL_SIGN_OFF_CHECKLIST_DRAFT.format(engagement=engagement))
    if checklist.reliances != disclosures.reliance_snapshot(engagement):
        raise Conflict(FINAL_SIGN_OFF_CHECKLIST_STALE.format(engagement=engagement))
    return checklist


def _require_not_frozen(checklist: DisclosureChecklist, *, verb: str) -> None:
    if checklist.is_frozen:
        raise Conflict(
            CHECKLIST_FROZEN.format(
                verb=verb,
                checklist=checklist,
                approval=checklist.frozen_into or "deleted",
                frozen_at=checklist.frozen_at,
            )
        )


def _store_memo(
    approval: Approval,
    *,
    content: bytes,
    memo_format: str,
    artefact_type: str,
    file_name: str,
    actor: AbstractUser,
) -> Artefact:
    """Store one rendering of the memo: new, a new version, or the unchanged one as it is."""
    current = (
        Artefact.objects.filter(
            engagement_id=approval.engagement_id,
            **{
                f"metadata__{MEMO_METADATA_KEY}": str(approval.pk),
                "metadata__memo_format": memo_format,
            },
        )
        .exclude(status__in=(ArtefactStatus.SUPERSEDED, ArtefactStatus.ARCHIVED))
        .order_by("-version")
        .first()
    )
    if current is not None and current.content_hash == hashlib.sha256(content).hexdigest():
        return current
    upload = ContentFile(content, name=file_name)
    if current is not None:
        return artefact_new_version(artefact=current, upload=upload, actor=actor)
    return artefact_create(
        engagement=approval.engagement,
        upload=upload,
        actor=actor,
        name=f"Review memo: {approval}"[:255],
        artefact_type=artefact_type,
        description="The resolved review points of the approval, with their answers.",
        metadata={MEMO_METADATA_KEY: str(approval.pk), "memo_format": memo_format},
    )
