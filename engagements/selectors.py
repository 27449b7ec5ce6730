"""Who may see and work on an engagement: the one place the team scoping rule lives.

A user sees an engagement when they are on its team, are a superuser, or hold
`engagements.view_all_engagements`. Only team members with a working role (lead,
actuary, reviewer) and superusers change an engagement or anything in it;
observers and global viewers only read. The service layer and the REST API both
use these helpers, so the rule holds whichever door a user comes through; the
lower layers (the API and admin bases, the audit trail) apply it through
`records.scoping`, where `EngagementsConfig.ready()` registers this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Q

from records.exceptions import Conflict, NotAllowed
from records.formatting import status_label

from .choices import CLOSED_STATUSES, TeamRole
from .models import Engagement, EngagementMember

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

VIEW_ALL_PERMISSION = "engagements.view_all_engagements"
# Roles that work on an engagement; observers only read.
WORKING_ROLES = frozenset({TeamRole.LEAD, TeamRole.ACTUARY, TeamRole.REVIEWER})
# Running the engagement itself (its details, lifecycle and team) is the lead's job.
MANAGING_ROLES = frozenset({TeamRole.LEAD})

NOT_AUTHENTICATED = "Sign in to {verb} engagement “{engagement}”."
NOT_ON_TEAM = "{user} may not {verb} engagement “{engagement}”: they are not on its team."
WRONG_ROLE = (
    "{user} may not {verb} engagement “{engagement}”: their role on its team is {role}, "
    "and this needs {roles}."
)

ENGAGEMENT_CLOSED = "Engagement “{engagement}” is {status}: it accepts no new {what}."


def engagements_visible_to(user: AbstractUser | None) -> models.QuerySet[Engagement]:
    """Return the engagements `user` may see (their teams', or all with the global view)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Engagement.objects.none()
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return Engagement.objects.all()
    return Engagement.objects.filter(team__user=user)


def sees_every_engagement(user: AbstractUser | None) -> bool:
    """Return whether `user` sees every engagement (superuser or the global view permission)."""
    return user is not None and (user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION))


def scope_to_user(
    queryset: models.QuerySet,
    user: AbstractUser | None,
    *,
    engagement_path: str = "engagement",
) -> models.QuerySet:
    """Return `queryset` narrowed to rows of engagements `user` may see.

    `engagement_path` is the lookup from the queryset's model to its engagement
    (`"engagement"` for runs, artefacts and approvals; `"workflow_run__engagement"`
    for a model hanging off a run; `""` for engagements themselves).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return queryset
    lookup = f"{engagement_path}__team__user" if engagement_path else "team__user"
    return queryset.filter(**{lookup: user})


def users_visible_to(user: AbstractUser | None) -> models.QuerySet:
    """Return the active users `user` may look up: themselves and the people on their teams.

    Superusers and holders of the global view permission see every active user.
    This is the pool approvers and team members are picked from.
    """
    users = get_user_model().objects.filter(is_active=True)
    if user is None or not user.is_authenticated or not user.is_active:
        return users.none()
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return users
    colleagues = EngagementMember.objects.filter(engagement__team__user=user).values("user_id")
    return users.filter(Q(pk=user.pk) | Q(pk__in=colleagues))


def engagement_role_of(*, engagement: Engagement, user: AbstractUser | None) -> str | None:
    """Return the user's role on the engagement's team, or None if they are not on it."""
    if user is None or not user.is_authenticated:
        return None
    return (
        EngagementMember.objects.filter(engagement=engagement, user=user)
        .values_list("role", flat=True)
        .first()
    )


def engagement_can_view(*, engagement: Engagement, user: AbstractUser | None) -> bool:
    """Return whether `user` may see the engagement and everything in it."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return True
    return engagement_role_of(engagement=engagement, user=user) is not None


def engagement_require_member(
    *,
    engagement: Engagement,
    user: AbstractUser | None,
    roles: Iterable[str] = WORKING_ROLES,
    verb: str = "work on",
) -> None:
    """Raise NotAllowed unless `user` is a superuser or on the team in one of `roles`.

    `verb` completes the refusal ("… may not {verb} engagement …"), so the message
    says what was refused.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        raise NotAllowed(NOT_AUTHENTICATED.format(verb=verb, engagement=engagement))
    if user.is_superuser:
        return
    roles = frozenset(roles)
    role = engagement_role_of(engagement=engagement, user=user)
    if role is None:
        raise NotAllowed(NOT_ON_TEAM.format(user=user, verb=verb, engagement=engagement))
    if role not in roles:
        raise NotAllowed(
            WRONG_ROLE.format(
                user=user,
                verb=verb,
                engagement=engagement,
                role=TeamRole(role).label.lower(),
                roles=_role_list(roles),
            )
        )


def engagement_require_open(*, engagement: Engagement, what: str) -> None:
    """Raise Conflict if the engagement is completed or archived (it accepts no new `what`)."""
    if engagement.status in CLOSED_STATUSES:
        raise Conflict(
            ENGAGEMENT_CLOSED.format(
                engagement=engagement, status=status_label(engagement), what=what
            )
        )


def _role_list(roles: frozenset[str]) -> str:
    labels = [TeamRole(role).label.lower() for role in TeamRole if role in roles]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]
