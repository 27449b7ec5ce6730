"""Reads about approvals: who may decide one, and which pending approvals wait for a user.

The rules themselves live in `approvals.services` (independence, designation, team,
qualification); these helpers ask the same checks without deciding anything, so the
admin can say in advance what a decision would answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import F, Q
from django.utils import timezone

from config.exceptions import NotAllowed
from engagements.choices import TeamRole
from engagements.models import EngagementMember
from engagements.selectors import engagements_visible_to

from .choices import SIGN_OFF_TYPES, ApprovalStatus
from .models import Approval
from .services import (
    APPROVAL_EXPIRED,
    APPROVAL_QUALIFICATION_REQUIRED,
    _require_may_decide,
    qualifications_valid_on,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

# Candidates looked at per shown row: a few are refused by the checks and skipped.
CANDIDATES_PER_ROW = 3


@dataclass(frozen=True)
class PendingDecision:
    """A pending approval waiting for a user; `refusal` says why they cannot decide it yet."""

    approval: Approval
    designated: bool
    refusal: str | None = None


def approval_decision_refusal(
    *, approval: Approval, user: AbstractUser, qualified: bool | None = None
) -> str | None:
    """Return why `user` may not decide the pending `approval` now, or None if they may.

    Asks the services' own checks (team, independence, designation), then the expiry
    and, for sign-offs, a professional qualification valid today. `qualified` (whether
    the user holds one) may be given when the caller already knows it.
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


def approvals_awaiting_decision_by(user: AbstractUser, *, limit: int) -> list[PendingDecision]:
    """Return up to `limit` pending approvals waiting for `user`, the most urgent first.

    Those designated to the user (shown even when a check refuses them, with the
    reason), and the undesignated ones of engagements where the user is on the team
    as reviewer and may decide them. Expired ones are left to be expired.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    now = timezone.now()
    reviewing = EngagementMember.objects.filter(user=user, role=TeamRole.REVIEWER).values(
        "engagement"
    )
    candidates = (
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
        refusal = approval_decision_refusal(approval=approval, user=user, qualified=qualified)
        designated = approval.designated_approver_id == user.pk
        if refusal is None or designated:
            decisions.append(PendingDecision(approval, designated, refusal))
        if len(decisions) == limit:
            break
    return decisions
