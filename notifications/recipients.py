"""Who is told what: the one map from business events to notifications and their recipients.

Every service already records an audit event for what it did. After the business
transaction commits, `announcements_for_audit_event` turns one event into the
announcements it warrants (`ACTION_HANDLERS`, plus any critical event); the
reminders of dates (`approval_expiring_announcements`, `engagement_due_announcements`)
come from the `send_due_reminders` command. The rules, everywhere:

- the actor is never told of what they did themselves. Work the runner does for the
  person who queued a run (start, results, failure, the sign-off request it makes in
  their name) is the system's: the queuer is told of it;
- only people on the engagement's team are told of what happens in it (never an
  outsider, even one who may see it); critical events go to every active superuser;
- inactive users are never told anything.

This module is longer than 600 lines because the map reads best whole: each
action's handler sits beside the others, so who is told of what is checked in one
place (the list below is its summary).

Who is told of what:

- approval requested (approval_request): the designated approver, else the team's
  reviewers whom the approval services would let decide it; a new designated approver
  (approval_update) is asked too;
- run waiting for approval (approval_request of a workflow approval, or the move
  "await_approval"): whoever queued the run;
- approval approved or rejected: its requester and the lead actuary;
- approval revoked: its requester, the lead actuary and its approver;
- approval expired (approval_expire): its requester and the lead actuary;
- review point raised or reopened: the approval's requester and the lead actuary;
- review point answered (review_point_respond): whoever raised it;
- review point resolved: whoever answered it, and the approval's requester;
- run completed or failed: whoever queued it (not again when the decision on its
  approval already told them);
- any critical audit event: every active superuser;
- approval expiring within N days (reminder): who may decide it, and its requester;
- engagement due within N days (reminder): its lead actuary.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.models import Approval, ReviewPoint
from approvals.selectors import approval_decider_refusal
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from engagements.choices import EngagementStatus, TeamRole
from engagements.models import Engagement, EngagementMember
from workflows.models import WorkflowRun
from workflows.registry import implementation_for

from . import messages
from .choices import NotificationEvent
from .messages import Text

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

# Engagements still to be delivered: only their due dates are worth a reminder.
OPEN_ENGAGEMENT_STATUSES = (
    EngagementStatus.DRAFT,
    EngagementStatus.ACTIVE,
    EngagementStatus.ON_HOLD,
)


@dataclass
class Announcement:
    """Something that happened, and the people to tell about it (each with their text).

    `text` is the neutral wording webhooks receive; `recipients` maps each person told
    to the text they get. `key` names what it is about: with the event, it makes a
    notification (and a webhook delivery) unique, so announcing twice tells nobody twice.
    """

    event: str
    key: str
    text: Text
    link: str
    engagement: Engagement | None
    actor: AbstractUser | None
    resource: models.Model | None
    audit_event: AuditLog | None = None
    recipients: dict[int, tuple[AbstractUser, Text]] = field(default_factory=dict)

    def tell(
        self,
        users: Iterable[AbstractUser | None],
        text: Text | None = None,
        *,
        team_only: bool = True,
    ) -> None:
        """Add the people concerned among `users`, each with `text` (default: the neutral one).

        Never the actor or an inactive user; with `team_only`, never anyone off the
        engagement's team.
        """
        team = self._team_ids() if team_only else None
        for user in users:
            if user is None or user.pk in self.recipients or not user.is_active:
                continue
            if self.actor is not None and user.pk == self.actor.pk:
                continue
            if team is not None and user.pk not in team:
                continue
            self.recipients[user.pk] = (user, text or self.text)

    def _team_ids(self) -> set[int] | None:
        if self.engagement is None:
            return None
        if not hasattr(self, "_team"):
            self._team = set(
                EngagementMember.objects.filter(engagement=self.engagement).values_list(
                    "user_id", flat=True
                )
            )
        return self._team


def is_announced(event: AuditLog) -> bool:
    """Return whether an audit event may warrant announcements (cheap: no query).

    Of the run edits (workflow_update), only the move to waiting for approval is news.
    """
    if event.severity == Severity.CRITICAL:
        return True
    if event.action == AuditAction.WORKFLOW_UPDATE:
        return (event.metadata or {}).get("move") == "await_approval"
    if event.action == AuditAction.APPROVAL_UPDATE:
        return "designated_approver" in (event.new_value or {})
    return event.action in ACTION_HANDLERS


def announcements_for_audit_event(event: AuditLog) -> list[Announcement]:
    """Return what the committed audit event `event` warrants being told, and to whom."""
    announcements = []
    handler = ACTION_HANDLERS.get(event.action)
    if handler is not None:
        announcements.extend(handler(event))
    if event.severity == Severity.CRITICAL:
        announcements.append(_critical_event(event))
    for announcement in announcements:
        announcement.audit_event = event
    return announcements


# --- approvals ---------------------------------------------------------------------------


def _approval_requested(event: AuditLog) -> list[Announcement]:
    approval = _approval(event)
    if approval is None:
        return []
    engagement = approval.engagement
    words = {"approval": approval, "engagement": engagement, "requester": approval.requested_by}
    announcement = _announce(
        event,
        NotificationEvent.APPROVAL_REQUESTED,
        messages.approval_requested(**words, personal=False),
        resource=approval,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell(deciders_of(approval), messages.approval_requested(**words))
    announcements = [announcement]
    run = approval.workflow_run
    if approval.approval_type == ApprovalType.WORKFLOW_APPROVAL and run is not None:
        announcements.append(_run_waiting(event, run, by_runner=_runner_runs(run)))
    return announcements


def _approval_redesignated(event: AuditLog) -> list[Announcement]:
    """A pending approval's designated approver changed: ask the new one."""
    if not (event.new_value or {}).get("designated_approver"):
        return []
    approval = _approval(event)
    if approval is None or not approval.is_pending or approval.designated_approver_id is None:
        return []
    engagement = approval.engagement
    words = {"approval": approval, "engagement": engagement, "requester": approval.requested_by}
    announcement = _announce(
        event,
        NotificationEvent.APPROVAL_REQUESTED,
        messages.approval_requested(**words, personal=False),
        resource=approval,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((approval.designated_approver,), messages.approval_requested(**words))
    return [announcement]


def _approval_decided(event: AuditLog) -> list[Announcement]:
    approval = _approval(event)
    if approval is None:
        return []
    engagement = approval.engagement
    decision = event.new_value or {}
    approved = event.action == AuditAction.APPROVAL_APPROVE
    announcement = _announce(
        event,
        NotificationEvent.APPROVAL_DECIDED,
        messages.approval_decided(
            approval=approval,
            engagement=engagement,
            approver=event.user,
            approved=approved,
            reason=decision.get("rejection_reason", ""),
            notes=decision.get("decision_notes", ""),
        ),
        resource=approval,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((approval.requested_by, engagement.lead_actuary))
    return [announcement]


def _approval_revoked(event: AuditLog) -> list[Announcement]:
    approval = _approval(event)
    if approval is None:
        return []
    engagement = approval.engagement
    announcement = _announce(
        event,
        NotificationEvent.APPROVAL_REVOKED,
        messages.approval_revoked(
            approval=approval,
            engagement=engagement,
            revoker=event.user,
            reason=(event.new_value or {}).get("revocation_reason", ""),
        ),
        resource=approval,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((approval.requested_by, engagement.lead_actuary, approval.approver))
    return [announcement]


def _approval_expired(event: AuditLog) -> list[Announcement]:
    approval = _approval(event)
    if approval is None:
        return []
    engagement = approval.engagement
    announcement = _announce(
        event,
        NotificationEvent.APPROVAL_EXPIRED,
        messages.approval_expired(approval=approval, engagement=engagement),
        resource=approval,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((approval.requested_by, engagement.lead_actuary))
    return [announcement]


def deciders_of(approval: Approval) -> list[AbstractUser]:
    """Return who is asked to decide a pending approval.

    Its designated approver; without one, the engagement's reviewers (team role
    reviewer) whom the approval services' own checks would let decide it.
    """
    if approval.designated_approver_id is not None:
        return [approval.designated_approver]
    reviewers = (
        EngagementMember.objects.filter(
            engagement_id=approval.engagement_id, role=TeamRole.REVIEWER, user__is_active=True
        )
        .select_related("user")
        .order_by("user__username")
    )
    return [
        member.user
        for member in reviewers
        if approval_decider_refusal(approval=approval, user=member.user) is None
    ]


# --- review points -----------------------------------------------------------------------


def _review_point_raised(event: AuditLog) -> list[Announcement]:
    point = _review_point(event)
    if point is None:
        return []
    approval, engagement = point.approval, point.approval.engagement
    reopened = event.action == AuditAction.REVIEW_POINT_REOPEN
    announcement = _announce(
        event,
        NotificationEvent.REVIEW_POINT_RAISED,
        messages.review_point_raised(
            point=point,
            approval=approval,
            engagement=engagement,
            raiser=event.user,
            reopened=reopened,
            reason=(event.new_value or {}).get("reopen_reason", ""),
        ),
        resource=point,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((approval.requested_by, engagement.lead_actuary))
    return [announcement]


def _review_point_answered(event: AuditLog) -> list[Announcement]:
    point = _review_point(event)
    if point is None:
        return []
    approval, engagement = point.approval, point.approval.engagement
    words = {"point": point, "approval": approval, "engagement": engagement}
    announcement = _announce(
        event,
        NotificationEvent.REVIEW_POINT_ANSWERED,
        messages.review_point_answered(**words, responder=event.user, personal=False),
        resource=point,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell(
        (point.raised_by,), messages.review_point_answered(**words, responder=event.user)
    )
    return [announcement]


def _review_point_resolved(event: AuditLog) -> list[Announcement]:
    point = _review_point(event)
    if point is None:
        return []
    approval, engagement = point.approval, point.approval.engagement
    announcement = _announce(
        event,
        NotificationEvent.REVIEW_POINT_RESOLVED,
        messages.review_point_resolved(
            point=point,
            approval=approval,
            engagement=engagement,
            resolver=event.user,
            notes=(event.new_value or {}).get("resolution_notes", ""),
        ),
        resource=point,
        engagement=engagement,
        actor=event.user,
    )
    announcement.tell((point.responded_by, approval.requested_by))
    return [announcement]


# --- workflow runs -----------------------------------------------------------------------


def _run_ended(event: AuditLog) -> list[Announcement]:
    run = _run(event)
    if run is None:
        return []
    engagement = run.engagement
    approval_id = (event.metadata or {}).get("approval_id")
    # The runner records the results and failures of the types it executes, in the name
    # of the person who queued the run: for them it is news. A decision on the run's
    # approval (approval_id) is the approver's act.
    by_runner = approval_id is None and _runner_runs(run)
    owner = run_owner(run)
    words = {"run": run, "engagement": engagement, "owner": owner}
    if event.action == AuditAction.WORKFLOW_COMPLETE:
        kind, say = NotificationEvent.RUN_COMPLETED, messages.run_completed
        words["approver"] = event.user if approval_id else None
    else:
        kind, say = NotificationEvent.RUN_FAILED, messages.run_failed
        words["error"] = run.error_message
    announcement = _announce(
        event,
        kind,
        say(**words, personal=False),
        resource=run,
        engagement=engagement,
        actor=None if by_runner else event.user,
    )
    if approval_id is not None:
        # The requester and the lead were told of the decision, which says what became
        # of the run: not again.
        approval = Approval.objects.filter(pk=approval_id).first()
        told = {approval.requested_by_id, engagement.lead_actuary_id} if approval else set()
        if owner is not None and owner.pk in told:
            owner = None
    announcement.tell((owner,), say(**words))
    return [announcement]


def _run_moved(event: AuditLog) -> list[Announcement]:
    if (event.metadata or {}).get("move") != "await_approval":
        return []
    run = _run(event)
    if run is None:
        return []
    return [_run_waiting(event, run, by_runner=False)]


def _run_waiting(event: AuditLog, run: WorkflowRun, *, by_runner: bool) -> Announcement:
    owner = run_owner(run)
    words = {"run": run, "engagement": run.engagement, "by_runner": by_runner, "owner": owner}
    announcement = _announce(
        event,
        NotificationEvent.RUN_WAITING_APPROVAL,
        messages.run_waiting_approval(**words, personal=False),
        resource=run,
        engagement=run.engagement,
        actor=None if by_runner else event.user,
    )
    announcement.tell((owner,), messages.run_waiting_approval(**words))
    return announcement


def run_owner(run: WorkflowRun) -> AbstractUser | None:
    """Return whose run it is: who queued it, else who started it, else who created it."""
    return run.queued_by or run.started_by or run.created_by


def _runner_runs(run: WorkflowRun) -> bool:
    """Return whether the runner executes runs of this type (and so records their moves)."""
    return implementation_for(run.workflow_type) is not None


# --- the audit trail ---------------------------------------------------------------------


def _critical_event(event: AuditLog) -> Announcement:
    engagement = _engagement(event.engagement_id)
    announcement = Announcement(
        event=NotificationEvent.CRITICAL_EVENT,
        key=f"audit:{event.pk}",
        text=messages.critical_event(event=event, actor=event.user, engagement=engagement),
        link=reverse("admin:audit_auditlog_change", args=(event.pk,)),
        engagement=engagement,
        actor=event.user,
        resource=event,
    )
    superusers = get_user_model().objects.filter(is_superuser=True, is_active=True)
    # Superusers see every engagement: the team rule does not apply to them.
    announcement.tell(superusers.order_by("pk"), team_only=False)
    return announcement


ACTION_HANDLERS: dict[str, Callable[[AuditLog], list[Announcement]]] = {
    AuditAction.APPROVAL_REQUEST: _approval_requested,
    AuditAction.APPROVAL_UPDATE: _approval_redesignated,
    AuditAction.APPROVAL_APPROVE: _approval_decided,
    AuditAction.APPROVAL_REJECT: _approval_decided,
    AuditAction.APPROVAL_REVOKE: _approval_revoked,
    AuditAction.APPROVAL_EXPIRE: _approval_expired,
    AuditAction.REVIEW_POINT_RAISE: _review_point_raised,
    AuditAction.REVIEW_POINT_REOPEN: _review_point_raised,
    AuditAction.REVIEW_POINT_RESPOND: _review_point_answered,
    AuditAction.REVIEW_POINT_RESOLVE: _review_point_resolved,
    AuditAction.WORKFLOW_COMPLETE: _run_ended,
    AuditAction.WORKFLOW_FAIL: _run_ended,
    AuditAction.WORKFLOW_UPDATE: _run_moved,
}


# --- reminders of dates (send_due_reminders) ---------------------------------------------


def approval_expiring_announcements(*, today: datetime.date, days: int) -> Iterator[Announcement]:
    """Yield a reminder for every pending approval that expires within `days` days.

    Told: who may decide it (its designated approver, else the eligible reviewers) and its
    requester. One reminder per approval and expiry date: run daily, it reminds once;
    a new expiry date reminds again.
    """
    start = datetime.datetime.combine(today, datetime.time.min, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(days=days + 1)
    approvals = (
        Approval.objects.filter(
            status=ApprovalStatus.PENDING,
            expires_at__gte=max(start, timezone.now()),
            expires_at__lt=end,
        )
        .select_related(*APPROVAL_RELATED)
        .order_by("expires_at", "pk")
    )
    for approval in approvals:
        engagement = approval.engagement
        remaining = (approval.expires_at.date() - today).days
        deciders = deciders_of(approval)
        announcement = Announcement(
            event=NotificationEvent.APPROVAL_EXPIRING,
            key=f"approval:{approval.pk}:expires:{approval.expires_at.isoformat()}",
            text=messages.approval_expiring(
                approval=approval, engagement=engagement, days=remaining, decider=False
            ),
            link=reverse("admin:approvals_approval_change", args=(approval.pk,)),
            engagement=engagement,
            actor=None,
            resource=approval,
        )
        announcement.tell(
            deciders,
            messages.approval_expiring(
                approval=approval, engagement=engagement, days=remaining, decider=True
            ),
        )
        announcement.tell((approval.requested_by,))
        yield announcement


def engagement_due_announcements(*, today: datetime.date, days: int) -> Iterator[Announcement]:
    """Yield a reminder for every open engagement due within `days` days (to its lead).

    One reminder per engagement and due date: run daily, it reminds once; a new due date
    reminds again.
    """
    engagements = (
        Engagement.objects.filter(
            status__in=OPEN_ENGAGEMENT_STATUSES,
            due_date__gte=today,
            due_date__lte=today + datetime.timedelta(days=days),
        )
        .select_related("lead_actuary")
        .order_by("due_date", "pk")
    )
    for engagement in engagements:
        days_left = (engagement.due_date - today).days
        announcement = Announcement(
            event=NotificationEvent.ENGAGEMENT_DUE,
            key=f"engagement:{engagement.pk}:due:{engagement.due_date.isoformat()}",
            text=messages.engagement_due(engagement=engagement, days=days_left, personal=False),
            link=reverse("admin:engagements_engagement_change", args=(engagement.pk,)),
            engagement=engagement,
            actor=None,
            resource=engagement,
        )
        announcement.tell(
            (engagement.lead_actuary,),
            messages.engagement_due(engagement=engagement, days=days_left),
        )
        yield announcement


# --- reading the records an event names --------------------------------------------------

APPROVAL_RELATED = (
    "engagement__lead_actuary",
    "artefact",
    "workflow_run",
    "requested_by",
    "designated_approver",
    "approver",
)

LINKS = {
    Approval: "admin:approvals_approval_change",
    ReviewPoint: "admin:approvals_reviewpoint_change",
    WorkflowRun: "admin:workflows_workflowrun_change",
    Engagement: "admin:engagements_engagement_change",
}


def _announce(event, kind, text, *, resource, engagement, actor) -> Announcement:
    return Announcement(
        event=kind,
        key=f"audit:{event.pk}",
        text=text,
        link=reverse(LINKS[type(resource)], args=(resource.pk,)),
        engagement=engagement,
        actor=actor,
        resource=resource,
    )


def _approval(event: AuditLog) -> Approval | None:
    if event.resource_id is None:
        return None
    return Approval.objects.select_related(*APPROVAL_RELATED).filter(pk=event.resource_id).first()


def _review_point(event: AuditLog) -> ReviewPoint | None:
    if event.resource_id is None:
        return None
    return (
        ReviewPoint.objects.select_related(
            *(f"approval__{name}" for name in APPROVAL_RELATED),
            "raised_by",
            "responded_by",
        )
        .filter(pk=event.resource_id)
        .first()
    )


def _run(event: AuditLog) -> WorkflowRun | None:
    if event.resource_id is None:
        return None
    return (
        WorkflowRun.all_objects.select_related(
            "engagement__lead_actuary", "queued_by", "started_by", "created_by"
        )
        .filter(pk=event.resource_id)
        .first()
    )


def _engagement(engagement_id) -> Engagement | None:
    if engagement_id is None:
        return None
    return Engagement.all_objects.filter(pk=engagement_id).first()
