"""Approvals: professional sign-offs, and the qualifications that entitle people to give them."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from records.exceptions import InvalidInput
from records.models import (
    LifecycleModel,
    TraceableModel,
    TrackedModel,
    UUIDModel,
    empty_dict,
    empty_list,
)

from .choices import (
    APPROVAL_TRANSITIONS,
    DISCLOSURE_CHECKLIST_TRANSITIONS,
    REVIEW_POINT_TRANSITIONS,
    ApprovalStatus,
    ApprovalType,
    Designation,
    DisclosureChecklistStatus,
    ReviewPointSeverity,
    ReviewPointStatus,
)

REJECTION_REASON_REQUIRED = "A reason is required to reject an approval."
REVOCATION_REASON_REQUIRED = "A reason is required to revoke an approval."
RESPONSE_REQUIRED = "A response is required: say how the review point was addressed."
REOPEN_REASON_REQUIRED = "A reason is required to reopen a review point."


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
    conflict_of_interest_statement = models.TextField(
        blank=True,
        help_text="The decider's statement on conflicts of interest, recorded with the decision.",
    )
    # The disclosure checklist as it stood when a final sign-off was requested (ASOP 41):
    # a copy, so later edits of the checklist never change what was signed off.
    disclosures = models.JSONField(default=empty_dict, blank=True, editable=False)

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

    def subject_label(self) -> str:
        """Return what is decided, named so two approvals never read the same.

        The artefact and its version, else the workflow run, else the engagement
        (read `workflow_run` and `artefact` with select_related in lists).
        """
        kind = self.get_approval_type_display()
        if self.artefact_id is not None:
            return f"{kind} of {self.artefact}"
        if self.workflow_run_id is not None:
            return f"{kind} of run “{self.workflow_run}”"
        return f"{kind} of {self.engagement}"

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

    def approve(
        self,
        *,
        approver,
        notes: str = "",
        qualifications: dict | None = None,
        conflict_of_interest_statement: str = "",
    ):
        """Record the approver's approval: pending → approved."""
        self._move("approve")
        self.approver = approver
        self.reviewed_at = timezone.now()
        self.decision_notes = notes
        self.approver_qualifications = qualifications or {}
        self.conflict_of_interest_statement = conflict_of_interest_statement

    approve.alters_data = True

    def reject(
        self,
        *,
        approver,
        reason: str,
        notes: str = "",
        qualifications: dict | None = None,
        conflict_of_interest_statement: str = "",
    ):
        """Record the approver's rejection with its reason: pending → rejected."""
        self.check_move("reject")
        if not reason or not reason.strip():
            raise InvalidInput(REJECTION_REASON_REQUIRED, field="reason")
        self._move("reject")
        self.approver = approver
        self.reviewed_at = timezone.now()
        self.rejection_reason = reason.strip()[:255]
        self.decision_notes = notes
        self.approver_qualifications = qualifications or {}
        self.conflict_of_interest_statement = conflict_of_interest_statement

    reject.alters_data = True

    def revoke(self, *, user, reason: str):
        """Withdraw a granted approval with its reason: approved → revoked."""
        self.check_move("revoke")
        if not reason or not reason.strip():
            raise InvalidInput(REVOCATION_REASON_REQUIRED, field="reason")
        self._move("revoke")
        self.revoked_at = timezone.now()
        self.revoked_by = user
        self.revocation_reason = reason.strip()

    revoke.alters_data = True

    def expire(self):
        """Mark a pending approval as expired: pending → expired."""
        self._move("expire")

    expire.alters_data = True


class ReviewPoint(LifecycleModel, TraceableModel, TrackedModel):
    """A reviewer's challenge on an approval, answered by the preparer and resolved on record.

    APS X2 asks that challenges be raised, answered and resolved on record: an
    approval cannot be approved while any of its points is unresolved, and the
    resolved points export as the review memo.
    """

    TRANSITIONS = REVIEW_POINT_TRANSITIONS

    approval = models.ForeignKey(Approval, on_delete=models.CASCADE, related_name="review_points")
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_points_raised"
    )
    severity = models.CharField(
        max_length=10,
        choices=ReviewPointSeverity.choices,
        default=ReviewPointSeverity.MINOR,
        db_index=True,
    )
    text = models.TextField(help_text="The challenge: what is questioned, and why.")
    artefact = models.ForeignKey(
        "artefacts.Artefact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="review_points",
        help_text="The artefact the point concerns, if any.",
    )
    workflow_run = models.ForeignKey(
        "workflows.WorkflowRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="review_points",
        help_text="The workflow run the point concerns, if any.",
    )
    status = models.CharField(
        max_length=10,
        choices=ReviewPointStatus.choices,
        default=ReviewPointStatus.OPEN,
        db_index=True,
    )
    response = models.TextField(blank=True)
    responded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="review_points_responded",
    )
    responded_at = models.DateTimeField(null=True, blank=True)
    resolution_notes = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="review_points_resolved",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    reopen_reason = models.TextField(blank=True, help_text="Why it was last reopened.")

    history = HistoricalRecords()

    class Meta:
        ordering = ("approval", "created_at")
        verbose_name = "review point"
        constraints = (
            models.CheckConstraint(
                condition=~models.Q(status=ReviewPointStatus.RESOLVED)
                | models.Q(resolved_at__isnull=False),
                name="review_point_resolved_has_time",
            ),
        )
        indexes = (models.Index(fields=("approval", "status"), name="review_point_status_idx"),)

    def __str__(self):
        return f"{self.get_severity_display()} point on {self.approval}: {self.text[:60]}"

    @property
    def engagement_id(self):
        """Return the id of the engagement the point's approval belongs to (for the audit log)."""
        return self.approval.engagement_id

    @property
    def is_resolved(self) -> bool:
        """Return whether the reviewer accepted the response."""
        return self.status == ReviewPointStatus.RESOLVED

    def respond(self, *, user, response: str):
        """Record the preparer's answer: open → responded."""
        self.check_move("respond")
        if not response or not response.strip():
            raise InvalidInput(RESPONSE_REQUIRED, field="response")
        self._move("respond")
        self.response = response.strip()
        self.responded_by = user
        self.responded_at = timezone.now()

    respond.alters_data = True

    def resolve(self, *, user, notes: str = ""):
        """Accept the answer: responded → resolved."""
        self._move("resolve")
        self.resolved_by = user
        self.resolved_at = timezone.now()
        self.resolution_notes = (notes or "").strip()

    resolve.alters_data = True

    def reopen(self, *, reason: str):
        """Challenge again: responded or resolved → open (the earlier answer stays in history)."""
        self.check_move("reopen")
        if not reason or not reason.strip():
            raise InvalidInput(REOPEN_REASON_REQUIRED, field="reason")
        self._move("reopen")
        self.reopen_reason = reason.strip()
        self.resolved_by = None
        self.resolved_at = None
        self.resolution_notes = ""

    reopen.alters_data = True


class DisclosureChecklist(LifecycleModel, TrackedModel):
    """What a final sign-off discloses (ASOP 41), frozen into it when it is requested.

    The responsible actuary, the information date, the reliances (a copy of the data
    reliance register), material changes from the previous engagement of the same
    client and type, and other disclosures. Pre-filled from what the system holds,
    completed by the lead actuary, then copied into the final_sign_off approval
    (`Approval.disclosures`) and locked. An engagement has at most one checklist that
    is not frozen.
    """

    TRANSITIONS = DISCLOSURE_CHECKLIST_TRANSITIONS

    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="disclosure_checklists"
    )
    status = models.CharField(
        max_length=10,
        choices=DisclosureChecklistStatus.choices,
        default=DisclosureChecklistStatus.DRAFT,
        db_index=True,
    )
    responsible_actuary = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="disclosure_checklists",
    )
    information_date = models.DateField(
        null=True, blank=True, help_text="The date through which information was considered."
    )
    reliances = models.JSONField(
        default=empty_list,
        blank=True,
        help_text="The data reliance register as the checklist holds it.",
    )
    previous_engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The previous completed engagement of the same client and type.",
    )
    comparison = models.JSONField(
        default=empty_dict,
        blank=True,
        help_text="The key results of the previous engagement and this one, as pre-filled.",
    )
    material_changes = models.TextField(blank=True)
    other_disclosures = models.TextField(blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    frozen_into = models.OneToOneField(
        Approval,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="disclosure_checklist",
        help_text="The final sign-off it was frozen into.",
    )
    frozen_at = models.DateTimeField(null=True, blank=True, db_index=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "disclosure checklist"
        constraints = (
            models.UniqueConstraint(
                fields=("engagement",),
                condition=models.Q(frozen_at__isnull=True),
                name="disclosure_checklist_one_open_per_engagement",
            ),
        )

    def __str__(self):
        return f"Disclosure checklist of {self.engagement}"

    @property
    def is_frozen(self) -> bool:
        """Return whether the checklist was frozen into a final sign-off (it is locked)."""
        return self.frozen_at is not None

    def complete(self, *, user):
        """Mark the checklist completed by `user`: draft → completed."""
        self._move("complete")
        self.completed_by = user
        self.completed_at = timezone.now()

    complete.alters_data = True

    def revise(self):
        """Send a completed checklist back to draft (it was changed): completed → draft."""
        self._move("revise")
        self.completed_by = None
        self.completed_at = None

    revise.alters_data = True

    def freeze(self, *, approval):
        """Lock the checklist as frozen into `approval`."""
        self.frozen_into = approval
        self.frozen_at = timezone.now()

    freeze.alters_data = True

    def snapshot(self) -> dict:
        """Return the checklist as the final sign-off keeps it."""
        actuary = self.responsible_actuary
        previous = self.previous_engagement
        return {
            "checklist_id": str(self.pk),
            "responsible_actuary": (
                {"id": actuary.pk, "username": actuary.get_username(), "name": _name(actuary)}
                if actuary
                else None
            ),
            "information_date": self.information_date.isoformat()
            if self.information_date
            else None,
            "reliances": list(self.reliances),
            "previous_engagement": (
                {"id": str(previous.pk), "name": str(previous)} if previous else None
            ),
            "comparison": dict(self.comparison),
            "material_changes": self.material_changes,
            "other_disclosures": self.other_disclosures,
            "completed_by": self.completed_by.get_username() if self.completed_by else None,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
        }


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


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
        # Certifying is a role of its own (the Certifiers group), apart from the model's
        # add/change permissions that actuaries may hold for other reasons.
        permissions = (
            ("certify_professionalqualification", "Can certify professional qualifications"),
        )
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
