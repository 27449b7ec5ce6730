"""Every write to engagements and their teams: create, edit, lifecycle moves, team changes.

Each function is one business operation in one transaction: it locks the rows it
changes, checks who is acting (the lead actuary runs an engagement; superusers may
act anywhere), applies the change, saves it with a history change reason and
records the audit event. A refusal raises a domain error and changes nothing.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from audit.choices import AuditAction
from audit.services import audit_record
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import status_label
from records.services import (
    apply_changes,
    changes,
    create_and_record,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    soft_delete_and_record,
    validate,
)
from records.transactions import audited_transaction

from .choices import EngagementStatus, EngagementType, TeamRole
from .hooks import completion_checks
from .models import Engagement, EngagementMember
from .selectors import MANAGING_ROLES, engagement_require_member

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

CREATE_PERMISSION = "engagements.add_engagement"
# Fields a plain edit may change; status, audit fields and the team have their own doors.
EDITABLE_FIELDS = frozenset(
    {
        "client_code",
        "client_name",
        "name",
        "description",
        "engagement_type",
        "period_start",
        "period_end",
        "due_date",
        "lead_actuary",
        "reviewer",
        "config",
        "metadata",
    }
)
# Finished work is archived, not deleted: only engagements that never ran or were
# called off may be removed.
DELETABLE_STATUSES = frozenset({EngagementStatus.DRAFT, EngagementStatus.CANCELLED})

ENGAGEMENT_CREATE_NOT_ALLOWED = (
    "{user} may not open engagements: this needs the “add engagement” permission."
)
LEAD_IS_REVIEWER = (
    "The lead actuary and the reviewer of engagement “{engagement}” must be different "
    "people ({user} cannot be both)."
)
ENGAGEMENT_NOT_EDITABLE = (
    "Cannot edit engagement “{engagement}”: it is {status} (only draft or active "
    "engagements may be edited)."
)
NOT_EDITABLE_REASON = "only its details may be edited here"
ENGAGEMENT_NOT_DELETABLE = (
    "Cannot delete engagement “{engagement}”: it is {status} (only draft or cancelled "
    "engagements may be deleted; archive finished work instead)."
)
MEMBER_EXISTS = "{user} is already on the team of engagement “{engagement}” (as {role})."
MEMBER_LEAD_ROLE = (
    "Make {user} lead of engagement “{engagement}” by naming them its lead actuary: "
    "the team's lead is always the engagement's lead actuary."
)
MEMBER_KEY_ROLE_FIXED = (
    "Cannot change the role of {user} on engagement “{engagement}”: they are its {title}; "
    "name another {title} on the engagement first."
)
MEMBER_KEY_NOT_REMOVABLE = (
    "Cannot remove {user} from the team of engagement “{engagement}”: they are its {title}; "
    "name another {title} on the engagement first."
)
MEMBER_WRONG_ENGAGEMENT = "Team member {user} does not belong to engagement “{engagement}”."
ENGAGEMENT_NEEDS_LEAD = (
    "Engagement “{engagement}” needs a lead actuary: name one. Without a lead nobody on "
    "the team may run it{reviewer}."
)


@audited_transaction
def engagement_create(
    *,
    client_code: str,
    client_name: str,
    name: str,
    actor: AbstractUser,
    description: str = "",
    engagement_type: str = EngagementType.OTHER,
    period_start: datetime.date | None = None,
    period_end: datetime.date | None = None,
    due_date: datetime.date | None = None,
    lead_actuary: AbstractUser | None = None,
    reviewer: AbstractUser | None = None,
    config: dict | None = None,
    metadata: dict | None = None,
) -> Engagement:
    """Open a draft engagement and put its lead actuary and reviewer on its team."""
    if not actor.is_authenticated or not actor.has_perm(CREATE_PERMISSION):
        raise NotAllowed(ENGAGEMENT_CREATE_NOT_ALLOWED.format(user=actor))
    engagement = Engagement(
        client_code=client_code,
        client_name=client_name,
        name=name,
        description=description,
        engagement_type=engagement_type,
        period_start=period_start,
        period_end=period_end,
        due_date=due_date,
        lead_actuary=lead_actuary,
        reviewer=reviewer,
        config=config or {},
        metadata=metadata or {},
    )
    if lead_actuary is None and not actor.is_superuser:
        # Only a superuser may open one without a lead (and then run it herself).
        reviewing = " (you are its reviewer, so you cannot lead it)" if reviewer == actor else ""
        raise InvalidInput(
            ENGAGEMENT_NEEDS_LEAD.format(engagement=engagement, reviewer=reviewing),
            field="lead_actuary",
        )
    _check_key_people(engagement)
    validate(engagement)
    create_and_record(
        engagement,
        actor=actor,
        action=AuditAction.ENGAGEMENT_CREATE,
        reason="Created",
        description=f"Engagement opened: {engagement}",
    )
    _sync_key_members(engagement, actor=actor)
    return engagement


@audited_transaction
def engagement_update(
    *, engagement: Engagement, actor: AbstractUser, data: dict[str, Any]
) -> Engagement:
    """Change an engagement's details (not its status); keep the lead and reviewer on the team.

    Only draft and active engagements may be edited, by their lead actuary. A call
    that changes nothing writes nothing.
    """
    engagement = lock(engagement)
    engagement_require_member(engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="edit")
    if not engagement.is_editable:
        raise Conflict(
            ENGAGEMENT_NOT_EDITABLE.format(engagement=engagement, status=status_label(engagement))
        )
    before = snapshot(engagement)
    apply_changes(engagement, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    old, new = changes(before, snapshot(engagement))
    if not new:
        return engagement
    _check_key_people(engagement)
    validate(engagement)
    save_edit_and_record(
        engagement, actor=actor, action=AuditAction.ENGAGEMENT_UPDATE, old=old, new=new
    )
    _sync_key_members(engagement, actor=actor)
    return engagement


def engagement_activate(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Start or resume work on the engagement: draft or on_hold → active."""
    return _engagement_move(engagement, "activate", actor=actor)


def engagement_hold(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Put the engagement on hold: active → on_hold."""
    return _engagement_move(engagement, "hold", actor=actor)


@audited_transaction
def engagement_complete(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Complete the engagement: active → completed.

    Refused while the apps above say work is still open (`engagements.hooks`): any
    workflow run still open, or no approved final sign-off. The engagement row stays
    locked until commit, and new runs and approvals lock it too, so none can slip in
    between check and move.
    """
    engagement = lock(engagement)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="complete"
    )
    engagement.check_move("complete")
    for check in completion_checks:
        check(engagement)
    return move_and_record(
        engagement, "complete", actor=actor, action=AuditAction.ENGAGEMENT_UPDATE
    )


def engagement_archive(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Archive the engagement: completed or cancelled → archived."""
    return _engagement_move(
        engagement, "archive", actor=actor, action=AuditAction.ENGAGEMENT_ARCHIVE
    )


def engagement_cancel(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Call off the engagement: draft, active or on_hold → cancelled."""
    return _engagement_move(engagement, "cancel", actor=actor)


@audited_transaction
def engagement_delete(*, engagement: Engagement, actor: AbstractUser) -> Engagement:
    """Soft-delete a draft or cancelled engagement (hidden, never destroyed)."""
    engagement = lock(engagement)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="delete"
    )
    if engagement.status not in DELETABLE_STATUSES:
        raise Conflict(
            ENGAGEMENT_NOT_DELETABLE.format(engagement=engagement, status=status_label(engagement))
        )
    return soft_delete_and_record(
        engagement,
        actor=actor,
        action=AuditAction.ENGAGEMENT_DELETE,
        description=f"Engagement deleted: {engagement}",
    )


@audited_transaction
def engagement_member_add(
    *, engagement: Engagement, user: AbstractUser, role: str, actor: AbstractUser
) -> EngagementMember:
    """Put `user` on the engagement's team in `role` (actuary, reviewer or observer)."""
    engagement = lock(engagement)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="change the team of"
    )
    if role == TeamRole.LEAD:
        raise InvalidInput(MEMBER_LEAD_ROLE.format(user=user, engagement=engagement))
    existing = EngagementMember.objects.filter(engagement=engagement, user=user).first()
    if existing is not None:
        raise Conflict(
            MEMBER_EXISTS.format(
                user=user, engagement=engagement, role=existing.get_role_display().lower()
            )
        )
    member = EngagementMember(engagement=engagement, user=user, role=role)
    validate(member, exclude=("engagement", "user"))
    return _member_save(member, actor=actor, before={})


@audited_transaction
def engagement_member_update(
    *, member: EngagementMember, role: str, actor: AbstractUser
) -> EngagementMember:
    """Change a team member's role; the lead actuary's and reviewer's follow the engagement."""
    engagement = lock(member.engagement)
    member = lock(member)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="change the team of"
    )
    if role == member.role:
        return member
    if role == TeamRole.LEAD:
        raise InvalidInput(MEMBER_LEAD_ROLE.format(user=member.user, engagement=engagement))
    title = _key_title(engagement, member.user_id)
    if title:
        raise Conflict(
            MEMBER_KEY_ROLE_FIXED.format(user=member.user, engagement=engagement, title=title)
        )
    before = snapshot(member, ("user", "role"))
    member.role = role
    validate(member, exclude=("engagement", "user"))
    return _member_save(member, actor=actor, before=before)


@audited_transaction
def engagement_member_remove(*, member: EngagementMember, actor: AbstractUser) -> None:
    """Take a member off the engagement's team (never its lead actuary or reviewer)."""
    engagement = lock(member.engagement)
    member = lock(member)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb="change the team of"
    )
    title = _key_title(engagement, member.user_id)
    if title:
        raise Conflict(
            MEMBER_KEY_NOT_REMOVABLE.format(user=member.user, engagement=engagement, title=title)
        )
    before = snapshot(member, ("user", "role"))
    member._history_user = actor
    member._change_reason = "Removed from the team"
    resource_id = member.pk
    member.delete()
    audit_record(
        action=AuditAction.PERMISSION_CHANGE,
        resource_type="engagementmember",
        resource_id=resource_id,
        engagement_id=engagement.pk,
        user=actor,
        description=f"{member.user} removed from the team of {engagement}",
        old_value=before,
        new_value=None,
    )


@audited_transaction
def _engagement_move(
    engagement: Engagement,
    move: str,
    *,
    actor: AbstractUser,
    action: str = AuditAction.ENGAGEMENT_UPDATE,
) -> Engagement:
    engagement = lock(engagement)
    engagement_require_member(
        engagement=engagement, user=actor, roles=MANAGING_ROLES, verb=move.replace("_", " ")
    )
    return move_and_record(engagement, move, actor=actor, action=action)


def _check_key_people(engagement: Engagement) -> None:
    if engagement.lead_actuary_id and engagement.lead_actuary_id == engagement.reviewer_id:
        raise InvalidInput(
            LEAD_IS_REVIEWER.format(engagement=engagement, user=engagement.lead_actuary)
        )


def _key_title(engagement: Engagement, user_id) -> str:
    if user_id == engagement.lead_actuary_id:
        return "lead actuary"
    if user_id == engagement.reviewer_id:
        return "reviewer"
    return ""


def _sync_key_members(engagement: Engagement, *, actor: AbstractUser) -> None:
    """Keep the lead actuary (role lead, the only one) and the reviewer on the team."""
    demoted = EngagementMember.objects.select_for_update(no_key=True).filter(
        engagement=engagement, role=TeamRole.LEAD
    )
    for member in demoted.exclude(user_id=engagement.lead_actuary_id):
        before = snapshot(member, ("user", "role"))
        member.role = TeamRole.ACTUARY
        _member_save(member, actor=actor, before=before)
    for user, role in (
        (engagement.lead_actuary, TeamRole.LEAD),
        (engagement.reviewer, TeamRole.REVIEWER),
    ):
        if user is None:
            continue
        member = (
            EngagementMember.objects.select_for_update(no_key=True)
            .filter(engagement=engagement, user=user)
            .first()
        )
        if member is None:
            _member_save(
                EngagementMember(engagement=engagement, user=user, role=role),
                actor=actor,
                before={},
            )
        elif member.role != role:
            before = snapshot(member, ("user", "role"))
            member.role = role
            _member_save(member, actor=actor, before=before)


def _member_save(
    member: EngagementMember, *, actor: AbstractUser, before: dict
) -> EngagementMember:
    """Save a team membership and record the access change it makes."""
    created = member._state.adding
    save_with_history(
        member,
        actor=actor,
        reason="Added to the team" if created else "Team role changed",
        created=created,
    )
    old, new = changes(before, snapshot(member, ("user", "role")))
    audit_record(
        action=AuditAction.PERMISSION_CHANGE,
        resource=member,
        user=actor,
        description=(
            f"{member.user} {'added to' if created else 'given a new role on'} the team of "
            f"{member.engagement} as {member.get_role_display().lower()}"
        ),
        old_value=None if created else old,
        new_value={"user": member.user_id, "role": member.role} if created else new,
    )
    return member
