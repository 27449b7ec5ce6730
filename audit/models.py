"""The audit trail: shared record fields, the append-only AuditLog, backup records.

The abstract models here are the fields every domain record carries for the
audit trail (UUID key, tracked timestamps and users, soft delete, trace id) and
the lifecycle helper every stateful model uses. Other apps build on them
instead of repeating the fields.
"""

import uuid
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from config.exceptions import InvalidTransition

from .choices import (
    BACKUP_TRANSITIONS,
    RECOVERY_TRANSITIONS,
    AuditAction,
    BackupStatus,
    BackupType,
    RecoveryStatus,
    Severity,
)


def empty_dict():
    """Return a new empty dict (JSON field default; never a shared mutable)."""
    return {}


def empty_list():
    """Return a new empty list (JSON field default)."""
    return []


class RecordQuerySet(models.QuerySet):
    """QuerySet of the domain records."""


class LiveRecordManager(models.Manager.from_queryset(RecordQuerySet)):
    """Default manager of soft-deletable records: hides soft-deleted rows."""

    def get_queryset(self):
        return super().get_queryset().filter(is_deleted=False)


RecordManager = models.Manager.from_queryset(RecordQuerySet)


class UUIDModel(models.Model):
    """A record identified by a random UUID, never by a guessable integer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)

    objects = RecordManager()

    class Meta:
        abstract = True


class TrackedModel(UUIDModel):
    """A record that knows when and by whom it was created and last changed."""

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    class Meta:
        abstract = True


class SoftDeleteModel(models.Model):
    """A record that is hidden, not destroyed, when deleted; `all_objects` still sees it."""

    is_deleted = models.BooleanField(default=False, db_index=True, editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )

    objects = LiveRecordManager()
    all_objects = RecordManager()

    class Meta:
        abstract = True

    def soft_delete(self, user=None):
        """Hide the record from the default manager, recording who deleted it and when."""
        self.is_deleted = True
        self.deleted_at = timezone.now()
        self.deleted_by = user
        self._history_user = user
        self.save(update_fields=["is_deleted", "deleted_at", "deleted_by", "updated_at"])

    soft_delete.alters_data = True

    def restore(self, user=None):
        """Bring a soft-deleted record back."""
        self.is_deleted = False
        self.deleted_at = None
        self.deleted_by = None
        self._history_user = user
        self.save(update_fields=["is_deleted", "deleted_at", "deleted_by", "updated_at"])

    restore.alters_data = True


class TraceableModel(models.Model):
    """A record that names the AI agent trace that produced or touched it."""

    trace_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)

    class Meta:
        abstract = True


class LifecycleModel(models.Model):
    """A record with a `status` that moves only along its transition table.

    `TRANSITIONS` maps a move name to (states it may start from, resulting state).
    Lifecycle methods call `_move()`, which changes the row in memory only; the
    services save it, so a refused move never changes anything.
    """

    TRANSITIONS: ClassVar[dict] = {}

    class Meta:
        abstract = True

    def can(self, move: str) -> bool:
        """Return whether `move` is allowed from the current status."""
        sources, _target = self.TRANSITIONS[move]
        return self.status in sources

    def available_moves(self) -> list[str]:
        """Return the moves allowed from the current status, in table order."""
        return [move for move in self.TRANSITIONS if self.can(move)]

    def check_move(self, move: str) -> None:
        """Raise InvalidTransition unless `move` is allowed from the current status."""
        sources, _target = self.TRANSITIONS[move]
        if self.status not in sources:
            raise InvalidTransition(obj=self, move=move, current=self.status, allowed_from=sources)

    def _move(self, move: str) -> str:
        """Apply `move` to the status in memory; return the previous status."""
        self.check_move(move)
        _sources, target = self.TRANSITIONS[move]
        previous = self.status
        self.status = target
        return previous

    _move.alters_data = True


class AuditLog(TraceableModel, UUIDModel):
    """An immutable record of a significant business event (append-only)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        help_text="Acting user; empty for system actions.",
    )
    action = models.CharField(max_length=50, choices=AuditAction.choices, db_index=True)
    severity = models.CharField(
        max_length=20, choices=Severity.choices, default=Severity.INFO, db_index=True
    )
    resource_type = models.CharField(max_length=100, db_index=True)
    resource_id = models.UUIDField(null=True, blank=True, db_index=True)
    description = models.TextField(blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    session_id = models.UUIDField(null=True, blank=True, db_index=True)
    engagement_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = (
            models.Index(fields=("engagement_id", "created_at"), name="audit_engagement_time_idx"),
            models.Index(fields=("resource_type", "resource_id"), name="audit_resource_idx"),
        )

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.resource_type}"


class Backup(LifecycleModel, TrackedModel):
    """A backup archive written by the `backup` command."""

    TRANSITIONS = BACKUP_TRANSITIONS

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    backup_type = models.CharField(
        max_length=20, choices=BackupType.choices, default=BackupType.FULL, db_index=True
    )
    status = models.CharField(
        max_length=20, choices=BackupStatus.choices, default=BackupStatus.PENDING, db_index=True
    )
    storage_path = models.CharField(max_length=1024, blank=True)
    storage_provider = models.CharField(max_length=50, default="local")
    file_size_bytes = models.BigIntegerField(null=True, blank=True)
    record_count = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    tables_included = models.JSONField(default=empty_list, blank=True)
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backups",
    )
    error_message = models.TextField(blank=True)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the archive.")
    metadata = models.JSONField(default=empty_dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.CheckConstraint(
                condition=models.Q(file_size_bytes__isnull=True) | models.Q(file_size_bytes__gte=0),
                name="backup_file_size_non_negative",
            ),
        )

    def __str__(self):
        return self.name

    def start(self):
        """Mark the backup as being written."""
        self._move("start")
        self.started_at = timezone.now()

    start.alters_data = True

    def complete(self):
        """Mark the backup as written."""
        self._move("complete")
        self.completed_at = timezone.now()

    complete.alters_data = True

    def fail(self, error_message: str):
        """Mark the backup as failed with the error."""
        self._move("fail")
        self.completed_at = timezone.now()
        self.error_message = error_message

    fail.alters_data = True

    def cancel(self):
        """Mark the backup as cancelled."""
        self._move("cancel")
        self.completed_at = timezone.now()

    cancel.alters_data = True

    def expire(self):
        """Mark the backup as expired (its archive is removed by `prune_backups`)."""
        self._move("expire")

    expire.alters_data = True

    @property
    def is_expired(self) -> bool:
        """Return whether the backup is past its retention date."""
        return self.status == BackupStatus.EXPIRED or (
            self.expires_at is not None and self.expires_at <= timezone.now()
        )


class Recovery(LifecycleModel, TrackedModel):
    """A restore of a backup, recorded by the `restore` command."""

    TRANSITIONS = RECOVERY_TRANSITIONS

    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    backup = models.ForeignKey(Backup, on_delete=models.PROTECT, related_name="recoveries")
    status = models.CharField(
        max_length=20,
        choices=RecoveryStatus.choices,
        default=RecoveryStatus.PENDING,
        db_index=True,
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    tables_recovered = models.JSONField(default=empty_list, blank=True)
    records_recovered = models.PositiveIntegerField(default=0)
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recoveries",
    )
    error_message = models.TextField(blank=True)
    options = models.JSONField(default=empty_dict, blank=True)
    pre_recovery_snapshot = models.CharField(max_length=1024, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "recoveries"

    def __str__(self):
        return self.name

    def start(self):
        """Mark the restore as running."""
        self._move("start")
        self.started_at = timezone.now()

    start.alters_data = True

    def complete(self):
        """Mark the restore as done."""
        self._move("complete")
        self.completed_at = timezone.now()

    complete.alters_data = True

    def fail(self, error_message: str):
        """Mark the restore as failed with the error (the database was left as it was)."""
        self._move("fail")
        self.completed_at = timezone.now()
        self.error_message = error_message

    fail.alters_data = True

    def roll_back(self):
        """Mark the restore as rolled back."""
        self._move("roll_back")
        self.completed_at = timezone.now()

    roll_back.alters_data = True
