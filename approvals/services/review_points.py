"""Review points (APS X2): raised by a possible decider, answered by the preparer, then resolved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from artefacts.models import Artefact
from audit.choices import AuditAction, Severity
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import status_label
from records.services import (
    create_and_record,
    lock,
    move_and_record,
    validate,
)
from records.transactions import audited_transaction
from workflows.models import WorkflowRun

from ..choices import (
    ReviewPointSeverity,
)
from ..lineage import lineage_people
from ..models import Approval, ReviewPoint

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
from ..errors import (
    REVIEW_POINT_APPROVAL_DECIDED,
    REVIEW_POINT_NOT_PREPARER,
    REVIEW_POINT_OWN,
    REVIEW_POINT_SUBJECT_ELSEWHERE,
    REVIEW_POINT_TEXT_REQUIRED,
)
from .approvals import _engagement_of, _require_may_decide

NEW_REVIEW_POINTS = "review points"


@audited_transaction
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
    on the team, independent of its lineage, its designated approver if it
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


@audited_transaction
def review_point_respond(*, point: ReviewPoint, actor: AbstractUser, response: str) -> ReviewPoint:
    """Answer a review point: open → responded.

    The preparer answers: the approval's requester, the engagement's lead actuary,
    or anyone who took part in the work under review (its lineage), on the team
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
    preparers = {approval.requested_by_id, engagement.lead_actuary_id} | lineage_people(approval)
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


@audited_transaction
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


@audited_transaction
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


def _lock_point(point: ReviewPoint) -> tuple[Engagement, Approval, ReviewPoint]:
    """Lock, in the decision's order, the engagement, the approval and the point."""
    approval = point.approval
    engagement = lock(_engagement_of(approval))
    return engagement, lock(approval), lock(point)


def _require_pending_for_points(approval: Approval, *, verb: str) -> None:
    if not approval.is_pending:
        raise Conflict(
            REVIEW_POINT_APPROVAL_DECIDED.format(
                verb=verb, approval=approval, status=status_label(approval)
            )
        )
