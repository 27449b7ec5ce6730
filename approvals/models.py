"""Approvals: professional sign-offs, and the qualifications that entitle people to give them."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import LifecycleModel, TraceableModel, TrackedModel, UUIDModel, empty_dict
from config.exceptions import InvalidInput

from .choices import APPROVAL_TRANSITIONS, ApprovalStatus, ApprovalType, Designation

REJECTION_REASON_REQUIRED = "A reason is required to reject an approval."
REVOCATION_REASON_REQUIRED = "A reason is required to revoke an approval."


class Approval(LifecycleModel, TraceableModel, UUIDModel):
    """A professional sign-off on an artefact or on an engagement."""

    TRANSITIONS = APPROVAL_TRANSITIONS

    artefact = models.ForeignKey(
        "artefacts.Artefact",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
    )
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="approvals",
    )
    # The run a workflow_approval releases: approving completes it, rejecting fails it.
    workflow_run = models.ForeignKey(
        "workflows.WorkflowRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="approvals",
    )
    approval_type = models.CharField(max_length=30, choices=ApprovalType.choices, db_index=True)
    status = models.CharField(
        max_length=20,
        choices=ApprovalStatus.choices,
        default=ApprovalStatus.PENDING,
        db_index=True,
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals_requested"
    )
    requested_at = models.DateTimeField(default=timezone.now, db_index=True)
    request_notes = models.TextField(blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals_decided",
        help_text="Who decided.",
    )
    designated_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals_designated",
        help_text="If set, only this user may decide.",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    decision_notes = models.TextField(blank=True)
    rejection_reason = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approvals_revoked",
    )
    revocation_reason = models.TextField(blank=True)
    artefact_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="Artefact version when the approval was requested."
    )
    artefact_content_hash = models.CharField(
        max_length=64, blank=True, help_text="Artefact SHA-256 when the approval was requested."
    )
    metadata = models.JSONField(default=empty_dict, blank=True)
    approver_qualifications = models.JSONField(default=empty_dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-requested_at",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(artefact__isnull=False) | models.Q(engagement__isnull=False),
                name="approval_has_subject",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ApprovalStatus.REJECTED)
                | ~models.Q(rejection_reason=""),
                name="approval_rejection_has_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ApprovalStatus.REVOKED)
                | ~models.Q(revocation_reason=""),
                name="approval_revocation_has_reason",
            ),
        )
        indexes = (
            models.Index(fields=("status", "expires_at"), name="approval_status_expiry_idx"),
        )

    def __str__(self):
        subject = self.artefact or self.engagement
        return f"{self.get_approval_type_display()} of {subject}"

    def get_absolute_url(self):
        return reverse("admin:approvals_approval_change", args=(self.pk,))

    @property
    def is_pending(self) -> bool:
        """Return whether the approval still awaits a decision."""
        return self.status == ApprovalStatus.PENDING

    @property
    def is_approved(self) -> bool:
        """Return whether the approval was granted (and not revoked)."""
        return self.status == ApprovalStatus.APPROVED

    @property
    def is_expired(self) -> bool:
        """Return whether the approval expired (status expired, or past expires_at)."""
        if self.status == ApprovalStatus.EXPIRED:
            return True
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def approve(self, *, approver, notes: str = "", qualifications: dict | None = None):
        """Record the approver's approval: pending → approved."""
        self._move("approve")
        self.approver = approver
        self.reviewed_at = timezone.now()
        self.decision_notes = notes
        self.approver_qualifications = qualifications or {}

    approve.alters_data = True

    def reject(self, *, approver, reason: str, notes: str = "", qualifications: dict | None = None):
        """Record the approver's rejection with its reason: pending → rejected."""
        self.check_move("reject")
        if not reason or not reason.strip():
            raise InvalidInput(REJECTION_REASON_REQUIRED)
        self._move("reject")
        self.approver = approver
        self.reviewed_at = timezone.now()
        self.rejection_reason = reason.strip()[:255]
        self.decision_notes = notes
        self.approver_qualifications = qualifications or {}

    reject.alters_data = True

    def revoke(self, *, user, reason: str):
        """Withdraw a granted approval with its reason: approved → revoked."""
        self.check_move("revoke")
        if not reason or not reason.strip():
            raise InvalidInput(REVOCATION_REASON_REQUIRED)
        self._move("revoke")
        self.revoked_at = timezone.now()
        self.revoked_by = user
        self.revocation_reason = reason.strip()

    revoke.alters_data = True

    def expire(self):
        """Mark a pending approval as expired: pending → expired."""
        self._move("expire")

    expire.alters_data = True


class ProfessionalQualification(TrackedModel):
    """A user's actuarial designation (FIA, FSA, FCAS, …), valid over a date range."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="qualifications"
    )
    designation = models.CharField(max_length=20, choices=Designation.choices, db_index=True)
    issuing_body = models.CharField(max_length=255)
    membership_number = models.CharField(max_length=100, blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True, help_text="Empty: no end date.")

    history = HistoricalRecords()

    class Meta:
        ordering = ("user", "designation")
        constraints = (
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gte=models.F("valid_from")),
                name="qualification_valid_until_after_from",
            ),
        )

    def __str__(self):
        return f"{self.designation} ({self.issuing_body})"

    def is_valid_on(self, day) -> bool:
        """Return whether the qualification is valid on `day`."""
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def snapshot(self) -> dict:
        """Return the qualification as recorded on an approval at decision time."""
        return {
            "designation": self.designation,
            "issuing_body": self.issuing_body,
            "membership_number": self.membership_number,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }
