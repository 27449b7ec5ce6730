"""The audit trail: the append-only, hash-chained AuditLog, and the backup records.

The abstract record models every app builds on live in `records.models`.
"""

from django.conf import settings
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone
from simple_history.models import HistoricalRecords

from records.exceptions import Conflict
from records.formatting import format_datetime
from records.models import (
    LifecycleModel,
    TraceableModel,
    TrackedModel,
    UUIDModel,
    # Referenced by the migrations of every app as audit.models.empty_dict / empty_list.
    empty_dict,
    empty_list,
)

from .chain import GENESIS_HASH, HASHED_FIELDS, JSON_FIELDS, compute_entry_hash, normalize_json
from .choices import (
    BACKUP_TRANSITIONS,
    RECOVERY_TRANSITIONS,
    AuditAction,
    BackupStatus,
    BackupType,
    RecoveryStatus,
    Severity,
)
from .exceptions import AuditLogImmutable

AUDIT_LOG_CHANGE_REFUSED = (
    "The audit log is append-only: entry {entry} cannot be changed once written."
)
AUDIT_LOG_DELETE_REFUSED = "The audit log is append-only: entries cannot be deleted."
AUDIT_LOG_UPDATE_REFUSED = (
    "The audit log is append-only: entries cannot be updated (QuerySet.{method})."
)
AUDIT_LOG_CONFLICTS_REFUSED = (
    "The audit log is append-only: bulk_create() with ignore_conflicts or "
    "update_conflicts is refused."
)
AUDIT_LOG_RESTORE_EXISTS = (
    "Cannot restore audit entry {entry} (sequence {sequence}): the audit log already holds "
    "an entry with this id; restored entries are only ever inserted, never written over."
)
AUDIT_LOG_RESTORE_UNLINKED = (
    "Cannot restore audit entry {entry} (sequence {sequence}, previous hash {previous_hash}): "
    "it does not link to the chain head (sequence {head_sequence}, hash {head_hash}). "
    "Restored entries are appended in chain order onto the current head; the chain is "
    "never re-linked around them."
)
AUDIT_LOG_RESTORE_HASH_MISMATCH = (
    "Cannot restore audit entry {entry} (sequence {sequence}): its content hashes to "
    "{recomputed}, not to its stored hash {stored} (the entry was changed)."
)


class AuditLogQuerySet(models.QuerySet):
    """QuerySet of the AuditLog: appends through the hash chain, refuses every change."""

    def update(self, **kwargs):
        """Refuse: audit entries are never changed."""
        raise AuditLogImmutable(AUDIT_LOG_UPDATE_REFUSED.format(method="update"))

    update.alters_data = True

    def _update(self, *args, **kwargs):
        # Model.save() and Django internals update through _update(); refuse it too.
        raise AuditLogImmutable(AUDIT_LOG_UPDATE_REFUSED.format(method="_update"))

    _update.alters_data = True

    def bulk_update(self, objs, fields, batch_size=None):
        """Refuse: audit entries are never changed."""
        raise AuditLogImmutable(AUDIT_LOG_UPDATE_REFUSED.format(method="bulk_update"))

    bulk_update.alters_data = True

    def delete(self):
        """Refuse: audit entries are never deleted."""
        raise AuditLogImmutable(AUDIT_LOG_DELETE_REFUSED)

    delete.alters_data = True

    def bulk_create(
        self,
        objs,
        batch_size=None,
        ignore_conflicts=False,
        update_conflicts=False,
        update_fields=None,
        unique_fields=None,
    ):
        """Append the entries to the chain in the given order, in one transaction."""
        if ignore_conflicts or update_conflicts:
            raise AuditLogImmutable(AUDIT_LOG_CONFLICTS_REFUSED)
        objs = list(objs)
        if not objs:
            return objs
        with transaction.atomic(using=self.db, savepoint=False):
            head = AuditChainHead.objects.locked(using=self.db)
            for obj in objs:
                obj._refuse_if_stored()
                head.link(obj)
            created = super().bulk_create(objs, batch_size=batch_size)
            head.save(using=self.db, update_fields=("sequence", "entry_hash", "updated_at"))
        return created

    bulk_create.alters_data = True

    def append_restored(self, entries):
        """Insert entries restored from a backup exactly as written: ids, sequence, hashes.

        The one path that does not number and hash entries itself (the `restore`
        command uses it): each entry must already carry the sequence, previous hash
        and entry hash it had, must be the next link of the current chain head
        (sequence = head + 1, previous_hash = head hash), must hash to its stored
        `entry_hash`, and must not be in the log yet. Anything else is refused
        (Conflict) and nothing is inserted, so a restore can extend the chain but
        never fork, re-link or rewrite it. Moves the chain head to the last entry,
        in one transaction that holds the head's lock. Return the entries.
        """
        entries = list(entries)
        if not entries:
            return entries
        with transaction.atomic(using=self.db, savepoint=False):
            head = AuditChainHead.objects.locked(using=self.db)
            stored = set(
                AuditLog.objects.db_manager(self.db)
                .filter(pk__in=[entry.pk for entry in entries])
                .values_list("pk", flat=True)
            )
            for entry in entries:
                if entry.pk in stored or not entry._state.adding:
                    raise Conflict(
                        AUDIT_LOG_RESTORE_EXISTS.format(entry=entry.pk, sequence=entry.sequence)
                    )
                if entry.sequence != head.sequence + 1 or entry.previous_hash != head.entry_hash:
                    raise Conflict(
                        AUDIT_LOG_RESTORE_UNLINKED.format(
                            entry=entry.pk,
                            sequence=entry.sequence,
                            previous_hash=entry.previous_hash,
                            head_sequence=head.sequence,
                            head_hash=head.entry_hash,
                        )
                    )
                recomputed = entry.compute_hash()
                if recomputed != entry.entry_hash:
                    raise Conflict(
                        AUDIT_LOG_RESTORE_HASH_MISMATCH.format(
                            entry=entry.pk,
                            sequence=entry.sequence,
                            recomputed=recomputed,
                            stored=entry.entry_hash,
                        )
                    )
                head.sequence, head.entry_hash = entry.sequence, entry.entry_hash
            # The plain insert: the entries are numbered and hashed already and were
            # checked against the head above, so the chain-numbering bulk_create is skipped.
            created = super().bulk_create(entries)
            head.save(using=self.db, update_fields=("sequence", "entry_hash", "updated_at"))
        return created

    append_restored.alters_data = True


AuditLogManager = models.Manager.from_queryset(AuditLogQuerySet)


class AuditChainHeadManager(models.Manager):
    """Manager of the one chain-head row."""

    def locked(self, using=None):
        """Return the chain head locked until the transaction ends, creating it if missing.

        Every append takes this row lock first, so appends are serialized and the
        chain cannot fork. A missing head (new database, or a test reset) is
        rebuilt from the last entry.
        """
        queryset = self.db_manager(using).select_for_update()
        try:
            return queryset.get(pk=AuditChainHead.SINGLETON_ID)
        except AuditChainHead.DoesNotExist:
            pass
        last = (
            AuditLog.objects.db_manager(using)
            .order_by("-sequence")
            .values("sequence", "entry_hash")
            .first()
        )
        try:
            # Two first appends may race to create the head; the loser waits
            # for the winner's row and then locks it below.
            with transaction.atomic(using=queryset.db):
                self.db_manager(using).create(
                    pk=AuditChainHead.SINGLETON_ID,
                    sequence=last["sequence"] if last else 0,
                    entry_hash=last["entry_hash"] if last else GENESIS_HASH,
                )
        except IntegrityError:
            pass
        return queryset.get(pk=AuditChainHead.SINGLETON_ID)


class AuditChainHead(models.Model):
    """The newest link of the AuditLog hash chain: its sequence number and hash.

    One row. Appending locks it (`SELECT … FOR UPDATE`) inside the insert's
    transaction and moves it forward, so the next sequence number never comes
    from a database sequence, which would leave gaps and let writers race.
    """

    SINGLETON_ID = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    sequence = models.BigIntegerField(default=0)
    entry_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AuditChainHeadManager()

    class Meta:
        verbose_name = "audit chain head"
        constraints = (
            models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_singleton"),
        )

    def __str__(self):
        return f"#{self.sequence} {self.entry_hash}"

    def link(self, entry: "AuditLog") -> None:
        """Make `entry` the next link of the chain: number it, hash it, advance the head.

        In memory only; the caller inserts the entry and saves the head in the
        transaction that holds the head's lock.
        """
        entry.sequence = self.sequence + 1
        entry.previous_hash = self.entry_hash
        for name in JSON_FIELDS:
            setattr(entry, name, normalize_json(getattr(entry, name)))
        entry.entry_hash = entry.compute_hash()
        self.sequence = entry.sequence
        self.entry_hash = entry.entry_hash

    link.alters_data = True


class AuditLog(TraceableModel, UUIDModel):
    """An immutable record of a significant business event (append-only, hash-chained).

    Rows are only ever inserted: `save()` on a stored entry, `delete()`, and the
    queryset's `update()`, `delete()` and `bulk_update()` are refused, and
    database triggers refuse UPDATE, DELETE and TRUNCATE from any other path.
    Each entry carries a gapless `sequence`, the hash of the entry before it and
    its own SHA-256 (see `audit.chain`), so `verify_audit_log` can prove that no
    row was changed, removed or slipped in afterwards.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        help_text="Acting user; empty for system actions.",
        # Indexed with the sequence instead (Meta.indexes).
        db_index=False,
    )
    # Indexed with the sequence (Meta.indexes), like created_at and user: a filter on
    # one of them reads its entries newest first straight from the index.
    action = models.CharField(max_length=50, choices=AuditAction.choices)
    severity = models.CharField(
        max_length=20, choices=Severity.choices, default=Severity.INFO, db_index=True
    )
    resource_type = models.CharField(max_length=100)
    resource_id = models.UUIDField(null=True, blank=True, db_index=True)
    description = models.TextField(blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    session_id = models.UUIDField(null=True, blank=True, db_index=True)
    engagement_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sequence = models.BigIntegerField(
        unique=True, editable=False, help_text="Position in the hash chain: 1, 2, 3, … no gaps."
    )
    previous_hash = models.CharField(
        max_length=64, unique=True, editable=False, help_text="entry_hash of the entry before."
    )
    entry_hash = models.CharField(
        max_length=64,
        unique=True,
        editable=False,
        help_text="SHA-256 of this entry's canonical form, previous hash included.",
    )

    objects = AuditLogManager()

    class Meta:
        # The chain order is the insertion order; created_at may tie or be given.
        ordering = ("-sequence",)
        base_manager_name = "objects"
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        # Each filter of the log has an index that starts with its column (so the single
        # column indexes are left out); time, user and action end with the sequence, so a
        # page of the newest entries is read from the index, however long the log grows.
        # A time range is also bounded in sequence numbers (audit.filters): issue 18.
        indexes = (
            models.Index(fields=("engagement_id", "created_at"), name="audit_engagement_time_idx"),
            # An engagement's entries in chain order: the API's list for a user who sees
            # only their engagements reads each one's newest page from it (issue 18).
            models.Index(
                fields=("engagement_id", "sequence"), name="audit_engagement_sequence_idx"
            ),
            models.Index(fields=("resource_type", "resource_id"), name="audit_resource_idx"),
            models.Index(fields=("created_at", "sequence"), name="audit_time_sequence_idx"),
            models.Index(fields=("user", "sequence"), name="audit_user_sequence_idx"),
            models.Index(fields=("action", "sequence"), name="audit_action_sequence_idx"),
        )
        constraints = (
            models.CheckConstraint(
                condition=models.Q(sequence__gte=1), name="audit_log_sequence_positive"
            ),
        )

    def __str__(self):
        return f"{self.get_action_display()}, {format_datetime(self.created_at)}"

    def save(self, *args, **kwargs):
        """Append this new entry to the hash chain; refuse to save a stored entry again."""
        self._refuse_if_stored()
        if kwargs.get("update_fields") is not None:
            raise AuditLogImmutable(AUDIT_LOG_CHANGE_REFUSED.format(entry=self.pk))
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        kwargs["force_insert"] = True
        with transaction.atomic(using=using, savepoint=False):
            head = AuditChainHead.objects.locked(using=using)
            head.link(self)
            super().save(*args, **kwargs)
            head.save(using=using, update_fields=("sequence", "entry_hash", "updated_at"))

    save.alters_data = True

    def delete(self, *args, **kwargs):
        """Refuse: audit entries are never deleted."""
        raise AuditLogImmutable(AUDIT_LOG_DELETE_REFUSED)

    delete.alters_data = True

    def _refuse_if_stored(self) -> None:
        if not self._state.adding:
            raise AuditLogImmutable(AUDIT_LOG_CHANGE_REFUSED.format(entry=self.pk))

    def hashed_values(self) -> dict:
        """Return the values the entry hash covers, by attribute name."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def compute_hash(self) -> str:
        """Return the SHA-256 of this entry as it is now (compare with `entry_hash`)."""
        return compute_entry_hash(self.hashed_values())


class OperatorJob(LifecycleModel):
    """A job an operator's command records as it goes: backups and restores.

    `start` stamps `started_at`; every ending move stamps `completed_at`; `fail`
    keeps the error.
    """

    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)

    class Meta:
        abstract = True

    def start(self):
        """Mark the job as running."""
        self._move("start")
        self.started_at = timezone.now()

    start.alters_data = True

    def _finish(self, move: str):
        self._move(move)
        self.completed_at = timezone.now()

    _finish.alters_data = True

    def complete(self):
        """Mark the job as done."""
        self._finish("complete")

    complete.alters_data = True

    def fail(self, error_message: str):
        """Mark the job as failed with the error."""
        self._finish("fail")
        self.error_message = error_message

    fail.alters_data = True


class Backup(OperatorJob, TrackedModel):
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
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    tables_included = models.JSONField(default=empty_list, blank=True)
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="backups",
    )
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

    def cancel(self):
        """Mark the backup as cancelled."""
        self._finish("cancel")

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


class Recovery(OperatorJob, TrackedModel):
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
    tables_recovered = models.JSONField(default=empty_list, blank=True)
    records_recovered = models.PositiveIntegerField(default=0)
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recoveries",
    )
    options = models.JSONField(default=empty_dict, blank=True)
    pre_recovery_snapshot = models.CharField(max_length=1024, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "recoveries"

    def __str__(self):
        return self.name

    def roll_back(self):
        """Mark the restore as rolled back (`completed_at` stays the restore's)."""
        self._move("roll_back")

    roll_back.alters_data = True
