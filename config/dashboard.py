"""What the admin's index shows a user: the work waiting for them, scoped to their engagements.

First the person doing the work (issue 17): my runs waiting for review, my open
requests, the review points waiting for my answer, my failed runs, and where to start
a reserving analysis; then what waits for my decision and the team's state.

Each section is one bounded query (the pending approvals add one check per shown
row): the dashboard costs the same with ten rows or ten million. A section shows
only if the user may view its model in the admin.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Prefetch, Q
from django.utils import timezone

from approvals.choices import ApprovalStatus, ReviewPointStatus
from approvals.models import Approval, ReviewPoint
from approvals.selectors import (
    PendingDecision,
    annotated_unresolved,
    approvals_awaiting_decision_by,
    with_unresolved_point_counts,
)
from audit.choices import Severity
from audit.models import AuditLog
from engagements.choices import EngagementStatus
from engagements.models import Engagement
from engagements.selectors import VIEW_ALL_PERMISSION, engagements_visible_to, scope_to_user
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.selectors import worker_warning

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

SECTION_LIMIT = 10
DUE_WITHIN_DAYS = 30
FAILED_WITHIN_DAYS = 7
# Engagements still to be delivered (a due date means something only for these).
OPEN_STATUSES = (EngagementStatus.DRAFT, EngagementStatus.ACTIVE, EngagementStatus.ON_HOLD)
IN_PROGRESS_STATUSES = (WorkflowStatus.QUEUED, WorkflowStatus.RUNNING, WorkflowStatus.PAUSED)


@dataclass(frozen=True)
class OpenRequest:
    """A pending approval I asked for, and how many of its review points are unresolved."""

    approval: Approval
    unresolved: int


@dataclass
class Dashboard:
    """The sections of one user's dashboard; None: the user may not view that model."""

    today: datetime.date
    limit: int = SECTION_LIMIT
    due_within_days: int = DUE_WITHIN_DAYS
    failed_within_days: int = FAILED_WITHIN_DAYS
    pending_approvals: list[PendingDecision] | None = None
    due_engagements: list[Engagement] | None = None
    runs_in_progress: list[WorkflowRun] | None = None
    failed_runs: list[WorkflowRun] | None = None
    critical_events: list[AuditLog] | None = None
    my_runs_in_review: list[WorkflowRun] | None = None
    my_requests: list[OpenRequest] | None = None
    points_to_answer: list[ReviewPoint] | None = None
    start_engagements: list[Engagement] | None = None
    sees_every_engagement: bool = False
    notes: list[str] = field(default_factory=list)
    # Said when runs wait for a worker and none is alive (workflows.selectors.worker_warning).
    worker_warning: str = ""


def dashboard_for(user: AbstractUser) -> Dashboard:
    """Return the dashboard of `user`: only what they may see, the most urgent first."""
    today = timezone.localdate()
    dashboard = Dashboard(
        today=today,
        sees_every_engagement=user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION),
    )
    if user.has_perm("approvals.view_approval"):
        dashboard.pending_approvals = approvals_awaiting_decision_by(user, limit=SECTION_LIMIT)
    if user.has_perm("engagements.view_engagement"):
        dashboard.due_engagements = engagements_due(user, today=today)
    if user.has_perm("workflows.view_workflowrun"):
        dashboard.runs_in_progress = runs_in_progress(user)
        dashboard.failed_runs = runs_failed_recently(user)
        dashboard.worker_warning = worker_warning()
    if user.has_perm("audit.view_auditlog"):
        dashboard.critical_events = critical_events(user)
    if user.has_perm("workflows.view_workflowrun"):
        dashboard.my_runs_in_review = my_runs_in_review(user)
    if user.has_perm("approvals.view_approval"):
        dashboard.my_requests = my_open_requests(user)
        dashboard.points_to_answer = review_points_to_answer(user)
    if user.has_perm("workflows.add_workflowrun"):
        dashboard.start_engagements = engagements_to_start_in(user)
    return dashboard


def _mine(user: AbstractUser) -> Q:
    """Runs the user created, queued or started."""
    return Q(created_by=user) | Q(queued_by=user) | Q(started_by=user)


def my_runs_in_review(user: AbstractUser) -> list[WorkflowRun]:
    """Return the user's runs waiting for their workflow approval, the longest waiting first.

    Each with its pending approvals (one query for all of them).
    """
    pending = Approval.objects.filter(status=ApprovalStatus.PENDING).select_related(
        "designated_approver"
    )
    return list(
        scope_to_user(WorkflowRun.objects.all(), user)
        .filter(_mine(user), status=WorkflowStatus.WAITING_APPROVAL)
        .select_related("engagement")
        .prefetch_related(Prefetch("approvals", queryset=pending, to_attr="pending_approvals"))
        .order_by("updated_at")[:SECTION_LIMIT]
    )


def my_open_requests(user: AbstractUser) -> list[OpenRequest]:
    """Return the pending approvals the user asked for, oldest first, with open points."""
    approvals = with_unresolved_point_counts(
        scope_to_user(Approval.objects.all(), user).filter(
            requested_by=user, status=ApprovalStatus.PENDING
        )
    )
    rows = approvals.select_related(
        "engagement", "artefact", "workflow_run", "designated_approver"
    ).order_by("requested_at")[:SECTION_LIMIT]
    return [OpenRequest(a, sum(annotated_unresolved(a).values())) for a in rows]


def review_points_to_answer(user: AbstractUser) -> list[ReviewPoint]:
    """Return the open review points the user answers as preparer, the oldest first.

    Points on pending approvals the user requested, or of engagements they lead, that
    someone else raised (nobody answers their own point: the services' rule).
    """
    return list(
        scope_to_user(ReviewPoint.objects.all(), user, engagement_path="approval__engagement")
        .filter(status=ReviewPointStatus.OPEN, approval__status=ApprovalStatus.PENDING)
        .filter(Q(approval__requested_by=user) | Q(approval__engagement__lead_actuary=user))
        .exclude(raised_by=user)
        .select_related(
            "raised_by", "approval__artefact", "approval__workflow_run", "approval__engagement"
        )
        .order_by("created_at")[:SECTION_LIMIT]
    )


def engagements_to_start_in(user: AbstractUser) -> list[Engagement]:
    """Return the user's active engagements, where a reserving analysis may be started."""
    return list(
        engagements_visible_to(user)
        .filter(status=EngagementStatus.ACTIVE)
        .order_by("client_code", "name")[:SECTION_LIMIT]
    )


def engagements_due(user: AbstractUser, *, today: datetime.date) -> list[Engagement]:
    """Return the user's open engagements due within DUE_WITHIN_DAYS, overdue ones first."""
    return list(
        engagements_visible_to(user)
        .filter(
            status__in=OPEN_STATUSES,
            due_date__isnull=False,
            due_date__lte=today + datetime.timedelta(days=DUE_WITHIN_DAYS),
        )
        .select_related("lead_actuary")
        .order_by("due_date", "client_code")[:SECTION_LIMIT]
    )


def runs_in_progress(user: AbstractUser) -> list[WorkflowRun]:
    """Return the user's queued, running and paused workflow runs, latest first."""
    return list(
        scope_to_user(WorkflowRun.objects.all(), user)
        .filter(status__in=IN_PROGRESS_STATUSES)
        .select_related("engagement", "started_by", "queued_by")
        .order_by("-created_at")[:SECTION_LIMIT]
    )


def runs_failed_recently(user: AbstractUser) -> list[WorkflowRun]:
    """Return my workflow runs that failed within FAILED_WITHIN_DAYS, latest first.

    Mine: those I created, queued or started, and those of engagements I lead.
    """
    since = timezone.now() - datetime.timedelta(days=FAILED_WITHIN_DAYS)
    return list(
        scope_to_user(WorkflowRun.objects.all(), user)
        .filter(_mine(user) | Q(engagement__lead_actuary=user))
        .filter(status=WorkflowStatus.FAILED, completed_at__gte=since)
        .select_related("engagement")
        .order_by("-completed_at")[:SECTION_LIMIT]
    )


def critical_events(user: AbstractUser) -> list[AuditLog]:
    """Return the latest critical audit events: of the user's engagements, or all for admins.

    Newest first by the chain's sequence (a unique index), so the query stops after
    SECTION_LIMIT rows however long the log is.
    """
    events = AuditLog.objects.filter(severity=Severity.CRITICAL)
    if not (user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION)):
        events = events.filter(engagement_id__in=engagements_visible_to(user).values("pk"))
    return list(events.select_related("user").order_by("-sequence")[:SECTION_LIMIT])
