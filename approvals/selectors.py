"""Reads about approvals: who may decide one, and which pending approvals wait for a user.

The rules themselves live in `approvals.services` (independence, designation, team,
qualification, review points resolved before approving); these helpers ask the same
checks without deciding anything, so the admin and the dashboard can say in advance
what a decision would answer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, F, Q
from django.utils import timezone

from artefacts.models import Artefact
from engagements.choices import TeamRole
from engagements.models import Engagement, EngagementMember
from engagements.selectors import engagements_visible_to
from records.exceptions import Conflict, NotAllowed

from .choices import (
    SIGN_OFF_TYPES,
    UNRESOLVED_REVIEW_POINT_STATUSES,
    ApprovalStatus,
    ApprovalType,
    ReviewPointSeverity,
)
from .errors import APPROVAL_EXPIRED, APPROVAL_OPEN_POINTS, APPROVAL_QUALIFICATION_REQUIRED
from .models import Approval
from .services import qualifications_valid_on
from .services.approvals import _require_may_decide

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

ENGAGEMENT_NEEDS_FINAL_SIGN_OFF = (
    "Cannot complete engagement “{engagement}”: it has no approved final sign-off."
)
# Candidates looked at per shown row: a few are refused by the checks and skipped.
CANDIDATES_PER_ROW = 3
# The most severe first, as the services' refusal counts them.
SEVERITIES = tuple(ReviewPointSeverity.values[::-1])
# Annotation names of the unresolved review points' counts by severity.
UNRESOLVED_COUNT = "unresolved_{severity}_points"


@dataclass(frozen=True)
class PendingDecision:
    """A pending approval waiting for a user; `refusal` says why they cannot approve it yet.

    Either a check on the user (designated to them but a check refuses), or the
    approval's unresolved review points (they may still reject it, or resolve them).
    """

    approval: Approval
    designated: bool
    refusal: str | None = None


def approval_decision_refusal(
    *,
    approval: Approval,
    user: AbstractUser,
    qualified: bool | None = None,
    move: str = "approve",
    unresolved: dict[str, int] | None = None,
) -> str | None:
    """Return why `user` may not `move` ("approve" or "reject") the pending `approval` now.

    None if they may. The checks on the user first (`approval_decider_refusal`); then,
    to approve, the review points: an approval is not approved while any is unresolved
    (`approval_unresolved_points_refusal`). `qualified` and `unresolved` may be given
    when the caller already knows them.
    """
    refusal = approval_decider_refusal(approval=approval, user=user, qualified=qualified)
    if refusal is None and move == "approve":
        refusal = approval_unresolved_points_refusal(approval=approval, unresolved=unresolved)
    return refusal


def approval_decider_refusal(
    *, approval: Approval, user: AbstractUser, qualified: bool | None = None
) -> str | None:
    """Return why `user` may not decide the pending `approval` at all, or None if they may.

    Asks the services' own checks (team, independence, designation), then the expiry
    and, for sign-offs, a professional qualification valid today. `qualified` (whether
    the user holds one) may be given when the caller already knows it. Whoever passes
    these may also raise, resolve and reopen the approval's review points.
    """
    if approval.is_expired:
        when = f" on {approval.expires_at:%Y-%m-%d %H:%M}" if approval.expires_at else ""
        return APPROVAL_EXPIRED.format(approval=approval, when=when)
    try:
        _require_may_decide(approval, user, verb="decide")
    except NotAllowed as refusal:
        return refusal.message
    if approval.approval_type in SIGN_OFF_TYPES:
        day = timezone.localdate()
        if qualified is None:
            qualified = qualifications_valid_on(user=user, day=day).exists()
        if not qualified:
            return APPROVAL_QUALIFICATION_REQUIRED.format(
                user=user,
                approval=approval,
                approval_type=approval.get_approval_type_display().lower(),
                day=day.isoformat(),
            )
    return None


# The services' refusals name the person in the third person ("bob may not decide
# approval “…”: they requested it"); the page says it to the viewer.
_SECOND_PERSON = (
    (
        re.compile(r"^(?:Cannot|.+? may not) (\w+) approval “.*?”: it "),
        r"You cannot \1 this approval: it ",
    ),
    (re.compile(r"^Cannot approve approval “.*?”: "), "You cannot approve this yet: "),
    (re.compile(r"^.+? may not (\w+) approval “.*?”: "), r"You may not \1 this approval: "),
    (re.compile(r"^.+? may not (.+?) engagement “(.*?)”: "), r"You may not \1 engagement “\2”: "),
    (re.compile(r"\bthey are\b"), "you are"),
    (re.compile(r"\bthey hold\b"), "you hold"),
    (re.compile(r"\bthey\b"), "you"),
    (re.compile(r"\btheir\b"), "your"),
)


def approval_refusal_for_viewer(
    *, approval: Approval, user: AbstractUser, move: str = "approve"
) -> str | None:
    """Return, addressed to `user` ("You may not …: you requested it"), why they may not
    `move` the pending `approval` now; None if they may.

    The same checks as `approval_decision_refusal` (the services' own), said to the
    person looking at the page rather than about them.
    """
    refusal = approval_decision_refusal(approval=approval, user=user, move=move)
    return None if refusal is None else addressed_to_viewer(refusal)


def addressed_to_viewer(message: str) -> str:
    """Return a services' refusal about someone as a sentence to them ("You may not …")."""
    for pattern, replacement in _SECOND_PERSON:
        message = pattern.sub(replacement, message, count=1)
    return message


def approval_unresolved_points_refusal(
    *, approval: Approval, unresolved: dict[str, int] | None = None
) -> str | None:
    """Return the services' refusal to approve while review points are unresolved, or None.

    `unresolved` ({severity: count}) may be given when the caller counted them already
    (`with_unresolved_point_counts`); otherwise one query counts them.
    """
    if unresolved is None:
        unresolved = unresolved_point_counts(approval)
    total = sum(unresolved.values())
    if not total:
        return None
    severities = ", ".join(
        f"{unresolved[severity]} {severity}" for severity in SEVERITIES if unresolved.get(severity)
    )
    return APPROVAL_OPEN_POINTS.format(approval=approval, count=total, severities=severities)


def unresolved_point_counts(approval: Approval) -> dict[str, int]:
    """Return {severity: how many of the approval's review points are unresolved}."""
    rows = (
        approval.review_points.filter(status__in=UNRESOLVED_REVIEW_POINT_STATUSES)
        .values_list("severity")
        .annotate(count=Count("pk"))
        .order_by()
    )
    return dict(rows)


def with_unresolved_point_counts(approvals):
    """Return the approvals queryset annotated with its unresolved review points by severity.

    Read them with `annotated_unresolved(approval)`: one query for any number of rows.
    """
    return approvals.annotate(
        **{
            UNRESOLVED_COUNT.format(severity=severity): Count(
                "review_points",
                filter=Q(
                    review_points__severity=severity,
                    review_points__status__in=UNRESOLVED_REVIEW_POINT_STATUSES,
                ),
            )
            for severity in SEVERITIES
        }
    )


def annotated_unresolved(approval: Approval) -> dict[str, int]:
    """Return {severity: count} from an approval read through `with_unresolved_point_counts`."""
    return {
        severity: getattr(approval, UNRESOLVED_COUNT.format(severity=severity))
        for severity in SEVERITIES
    }


def approvals_awaiting_decision_by(user: AbstractUser, *, limit: int) -> list[PendingDecision]:
    """Return up to `limit` pending approvals waiting for `user`, the most urgent first.

    Those designated to the user (shown even when a check refuses them, with the
    reason), and the undesignated ones of engagements where the user is on the team
    as reviewer and may decide them. Expired ones are left to be expired. An approval
    with unresolved review points is listed (the reviewer resolves them, or rejects)
    with the refusal to approve it yet.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    now = timezone.now()
    reviewing = EngagementMember.objects.filter(user=user, role=TeamRole.REVIEWER).values(
        "engagement"
    )
    candidates = with_unresolved_point_counts(
        Approval.objects.filter(
            status=ApprovalStatus.PENDING,
            engagement__in=engagements_visible_to(user).values("pk"),
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .filter(
            Q(designated_approver=user)
            | Q(designated_approver__isnull=True, engagement__in=reviewing)
        )
        # Nobody decides their own request: no need to ask the checks about those.
        .exclude(requested_by=user)
        .select_related(
            "engagement",
            "artefact__workflow_run",
            "workflow_run",
            "requested_by",
            "designated_approver",
        )
        .order_by(F("expires_at").asc(nulls_last=True), "requested_at")
    )
    qualified = qualifications_valid_on(user=user, day=timezone.localdate()).exists()
    decisions = []
    for approval in candidates[: limit * CANDIDATES_PER_ROW]:
        refusal = approval_decider_refusal(approval=approval, user=user, qualified=qualified)
        designated = approval.designated_approver_id == user.pk
        if refusal is None or designated:
            refusal = refusal or approval_unresolved_points_refusal(
                approval=approval, unresolved=annotated_unresolved(approval)
            )
            decisions.append(PendingDecision(approval, designated, refusal))
        if len(decisions) == limit:
            break
    return decisions


def approval_timeline_rows(engagement_id: uuid.UUID) -> Q:
    """Return which approval history rows an engagement's timeline shows.

    Its own approvals and those of its artefacts, found through the artefacts'
    history so that approvals of artefacts deleted since are still shown.
    """
    artefact_ids = Artefact.history.filter(engagement_id=engagement_id).values("id")
    return Q(engagement_id=engagement_id) | Q(artefact_id__in=artefact_ids)


def engagement_require_final_sign_off(engagement: Engagement) -> None:
    """Raise Conflict unless the engagement has an approved final sign-off.

    A completion check of the engagement services (`engagements.hooks.completion_checks`).
    """
    signed_off = Approval.objects.filter(
        engagement=engagement,
        approval_type=ApprovalType.FINAL_SIGN_OFF,
        status=ApprovalStatus.APPROVED,
    ).exists()
    if not signed_off:
        raise Conflict(ENGAGEMENT_NEEDS_FINAL_SIGN_OFF.format(engagement=engagement))
