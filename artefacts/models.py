"""Artefacts: files produced or uploaded for an engagement, with integrity and review state."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from simple_history.models import HistoricalRecords

from records.models import LifecycleModel, SoftDeleteModel, TraceableModel, TrackedModel, empty_dict

from .choices import (
    ARTEFACT_TRANSITIONS,
    REVIEWABLE_STATUSES,
    ArtefactStatus,
    ArtefactType,
    DataProviderType,
)


def artefact_upload_to(instance, filename):
    """Return the storage path: engagement and content hash, never the user's name alone."""
    digest = instance.content_hash or "unhashed"
    return f"artefacts/{instance.engagement_id}/{digest[:2]}/{digest}/{filename}"


class Artefact(LifecycleModel, SoftDeleteModel, TraceableModel, TrackedModel):
    """A file produced or uploaded for an engagement; its bytes never change once stored."""

    TRANSITIONS = ARTEFACT_TRANSITIONS

    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="artefacts"
    )
    workflow_run = models.ForeignKey(
        "workflows.WorkflowRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="artefacts",
    )
    artefact_type = models.CharField(
        max_length=20, choices=ArtefactType.choices, default=ArtefactType.OTHER, db_index=True
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    file = models.FileField(upload_to=artefact_upload_to, max_length=500, blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    mime_type = models.CharField(max_length=100, blank=True)
    file_size = models.BigIntegerField(default=0)
    storage_path = models.CharField(max_length=500, blank=True)
    storage_bucket = models.CharField(max_length=100, default="artefacts")
    content_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="SHA-256 of the bytes (hex)."
    )
    status = models.CharField(
        max_length=20,
        choices=ArtefactStatus.choices,
        default=ArtefactStatus.DRAFT,
        db_index=True,
    )
    version = models.PositiveIntegerField(default=1)
    previous_version = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="next_versions",
    )
    metadata = models.JSONField(default=empty_dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(version__gte=1), name="artefact_version_at_least_one"
            ),
            models.CheckConstraint(
                condition=models.Q(file_size__gte=0), name="artefact_file_size_non_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(content_hash="")
                | models.Q(content_hash__regex=r"^[0-9a-f]{64}$"),
                name="artefact_content_hash_sha256_hex",
            ),
            # A version has at most one successor: the version chain never forks.
            models.UniqueConstraint(fields=("previous_version",), name="artefact_single_successor"),
        )
        indexes = (models.Index(fields=("engagement", "status"), name="artefact_eng_status_idx"),)

    def __str__(self):
        return f"{self.name} v{self.version}"

    def get_absolute_url(self):
        return reverse("admin:artefacts_artefact_change", args=(self.pk,))

    @property
    def is_approved(self) -> bool:
        """Return whether the artefact has been signed off."""
        return self.status == ArtefactStatus.APPROVED

    @property
    def requires_approval(self) -> bool:
        """Return whether the artefact still needs a review decision."""
        return self.status in REVIEWABLE_STATUSES

    @property
    def storage_url(self) -> str:
        """Return where the bytes can be fetched from storage (empty if no file)."""
        if not self.file:
            return ""
        return self.file.url if settings.MEDIA_URL else self.file.name

    def submit_for_review(self):
        """Send the artefact for review: draft → pending_review."""
        self._move("submit_for_review")

    submit_for_review.alters_data = True

    def approve(self):
        """Mark the artefact approved: pending_review → approved."""
        self._move("approve")

    approve.alters_data = True

    def reject(self):
        """Mark the artefact rejected: pending_review → rejected."""
        self._move("reject")

    reject.alters_data = True

    def return_to_review(self):
        """Send an approved artefact back for review (its approval was revoked)."""
        self._move("return_to_review")

    return_to_review.alters_data = True

    def supersede(self):
        """Mark the artefact superseded by a newer version."""
        self._move("supersede")

    supersede.alters_data = True

    def archive(self):
        """Archive the artefact."""
        self._move("archive")

    archive.alters_data = True


class DataReliance(TraceableModel, TrackedModel):
    """The data reliance register's entry for one input artefact (ASOP 23).

    Who provided the data, as of when, what was checked (with the data_validation run
    whose results support it), its known limitations, and whether the data was
    reviewed; if it was not, why not. An engagement's final sign-off is refused
    while any of its input data has no entry.
    """

    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="data_reliances"
    )
    artefact = models.OneToOneField(
        Artefact, on_delete=models.CASCADE, related_name="data_reliance"
    )
    provider_type = models.CharField(max_length=20, choices=DataProviderType.choices, db_index=True)
    provider_name = models.CharField(max_length=255)
    data_as_of = models.DateField(help_text="The date the data is as of.")
    checks_performed = models.TextField(blank=True)
    validation_run = models.ForeignKey(
        "workflows.WorkflowRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="supported_reliances",
        help_text="The data_validation run whose results support the checks.",
    )
    known_limitations = models.TextField(blank=True)
    reviewed = models.BooleanField(default=False, help_text="Whether the data was reviewed.")
    not_reviewed_reason = models.TextField(
        blank=True, help_text="Why the data was not reviewed (required when it was not)."
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("engagement", "artefact__name")
        verbose_name = "data reliance"
        constraints = (
            # Relying on unreviewed data is allowed only when the register says why.
            models.CheckConstraint(
                condition=models.Q(reviewed=True) | ~models.Q(not_reviewed_reason=""),
                name="data_reliance_unreviewed_has_reason",
            ),
        )

    def __str__(self):
        return f"Reliance on {self.artefact} ({self.get_provider_type_display()})"

    def snapshot(self) -> dict:
        """Return the entry as a disclosure checklist records it."""
        return {
            "id": str(self.pk),
            "artefact_id": str(self.artefact_id),
            "artefact": self.artefact.name,
            "version": self.artefact.version,
            "content_hash": self.artefact.content_hash,
            "provider_type": self.provider_type,
            "provider_name": self.provider_name,
            "data_as_of": self.data_as_of.isoformat(),
            "checks_performed": self.checks_performed,
            "validation_run_id": str(self.validation_run_id) if self.validation_run_id else None,
            "known_limitations": self.known_limitations,
            "reviewed": self.reviewed,
            "not_reviewed_reason": self.not_reviewed_reason,
        }
