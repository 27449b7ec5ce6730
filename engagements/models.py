"""Engagements: client projects and their teams."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from simple_history.models import HistoricalRecords

from records.models import LifecycleModel, SoftDeleteModel, TrackedModel, empty_dict

from .choices import (
    EDITABLE_STATUSES,
    ENGAGEMENT_TRANSITIONS,
    EngagementStatus,
    EngagementType,
    TeamRole,
)


class Engagement(LifecycleModel, SoftDeleteModel, TrackedModel):
    """A client project: owns workflow runs, artefacts, approvals and conversations."""

    TRANSITIONS = ENGAGEMENT_TRANSITIONS

    client_code = models.CharField(max_length=50, db_index=True)
    client_name = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    engagement_type = models.CharField(
        max_length=20,
        choices=EngagementType.choices,
        default=EngagementType.OTHER,
        db_index=True,
    )
    status = models.CharField(
        max_length=20,
        choices=EngagementStatus.choices,
        default=EngagementStatus.DRAFT,
        db_index=True,
    )
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True, db_index=True)
    lead_actuary = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_engagements",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reviewed_engagements",
    )
    config = models.JSONField(default=empty_dict, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="EngagementMember",
        through_fields=("engagement", "user"),
        related_name="engagements",
        blank=True,
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        permissions = (("view_all_engagements", "Can view all engagements"),)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(period_start__isnull=True)
                | models.Q(period_end__isnull=True)
                | models.Q(period_end__gte=models.F("period_start")),
                name="engagement_period_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(lead_actuary__isnull=True)
                | models.Q(reviewer__isnull=True)
                | ~models.Q(reviewer=models.F("lead_actuary")),
                name="engagement_reviewer_not_lead",
            ),
        )
        indexes = (models.Index(fields=("status", "due_date"), name="engagement_status_due_idx"),)

    def __str__(self):
        return f"{self.client_code} · {self.name}"

    def get_absolute_url(self):
        return reverse("admin:engagements_engagement_change", args=(self.pk,))

    @property
    def is_active(self) -> bool:
        """Return whether work is under way."""
        return self.status == EngagementStatus.ACTIVE

    @property
    def is_editable(self) -> bool:
        """Return whether the engagement may still be edited (draft or active)."""
        return self.status in EDITABLE_STATUSES

    def activate(self):
        """Start (or resume) the engagement: draft or on_hold → active."""
        self._move("activate")

    activate.alters_data = True

    def hold(self):
        """Put the engagement on hold: active → on_hold."""
        self._move("hold")

    hold.alters_data = True

    def complete(self):
        """Complete the engagement: active → completed."""
        self._move("complete")

    complete.alters_data = True

    def archive(self):
        """Archive the engagement: completed or cancelled → archived."""
        self._move("archive")

    archive.alters_data = True

    def cancel(self):
        """Cancel the engagement: draft, active or on_hold → cancelled."""
        self._move("cancel")

    cancel.alters_data = True


class EngagementMember(TrackedModel):
    """A user on an engagement's team, with a role; team members see the engagement."""

    engagement = models.ForeignKey(Engagement, on_delete=models.CASCADE, related_name="team")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engagement_memberships"
    )
    role = models.CharField(
        max_length=20, choices=TeamRole.choices, default=TeamRole.ACTUARY, db_index=True
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("engagement", "role", "user")
        verbose_name = "team member"
        constraints = (
            models.UniqueConstraint(
                fields=("engagement", "user"), name="engagement_member_unique_user"
            ),
        )

    def __str__(self):
        return f"{self.user} ({self.get_role_display()})"
