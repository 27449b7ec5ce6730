"""What changed since a backup: the watermark an archive records and the rows after it.

An incremental or differential archive holds only the rows changed since its base.
Changes are found from the records the back office keeps of them, not from a
timestamp alone:

- the history tables: every save and every delete (soft or hard) of a tracked row
  writes a history row; those after the base's watermark (a higher `history_id`, or a
  `history_date` within `CHANGE_MARGIN` of the base's snapshot, which catches a
  transaction still open when the base was read) name the rows touched, and the ones
  with `history_type` "-" whose row is gone name the hard deletes;
- the audit log: the entries after the base's chain head name the rows they are about
  (`resource_id`);
- `updated_at`, where a model has it: a row saved without history (a raw update) is
  not missed either.

Accounts and groups keep no history: every archive of a chain holds them all.
"""

from __future__ import annotations

import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from simple_history.utils import get_history_model_for_model

from records.models import is_history_tracked

from ..choices import BackupStatus, BackupType
from ..models import AuditLog, Backup
from .errors import BackupFailed
from .scope import Table, TableKind, record_models

# Rows changed this long before a base backup was read are taken again: a transaction
# open while the base was read commits rows the base could not see. Taking a row twice
# costs nothing (the later copy wins); missing one would lose it.
CHANGE_MARGIN = datetime.timedelta(minutes=10)

# The backups a chain is made of; the others (engagement, audit logs, artefacts) are
# archives of their own.
CHAIN_TYPES = (BackupType.FULL, BackupType.INCREMENTAL, BackupType.DIFFERENTIAL)

NO_BASE_BACKUP = (
    "No completed full backup to build a{n} {backup_type} backup on: run `backup --full` first."
)
BASE_WITHOUT_WATERMARK = (
    "Backup “{backup}” was written before incremental backups existed and records no "
    "watermark: run `backup --full` to start a chain."
)


def current_watermark(using: str = DEFAULT_DB_ALIAS, taken_at=None) -> dict:
    """Return the point an archive is taken at: last history id per table, chain head, time.

    Read inside the archive's consistent read, so it matches the rows archived.
    """
    history = {}
    for model in record_models():
        if is_history_tracked(model):
            history_model = get_history_model_for_model(model)
            last = history_model._base_manager.using(using).aggregate(last=Max("pk"))["last"]
            history[history_model._meta.label_lower] = last or 0
    sequence = AuditLog.objects.using(using).aggregate(last=Max("sequence"))["last"] or 0
    return {
        "taken_at": (taken_at or timezone.now()).isoformat(),
        "history": history,
        "audit_sequence": sequence,
    }


def chain_base(backup_type: str, *, using: str = DEFAULT_DB_ALIAS) -> Backup:
    """Return the backup a new incremental (the last of the chain) or differential builds on.

    A differential builds on the last full backup; an incremental on the last backup of
    the chain (full, incremental or differential), so it holds the changes since then.
    Pre-recovery snapshots are not part of a chain. Raises BackupFailed without a full.
    """
    candidates = Backup.objects.using(using).filter(
        status=BackupStatus.COMPLETED, engagement__isnull=True
    )
    candidates = candidates.exclude(metadata__has_key="pre_recovery_snapshot").exclude(
        metadata__has_key="imported"
    )
    last_full = candidates.filter(backup_type=BackupType.FULL).order_by("-created_at").first()
    if last_full is None:
        article = "n" if backup_type == BackupType.INCREMENTAL else ""
        raise BackupFailed(NO_BASE_BACKUP.format(n=article, backup_type=backup_type))
    base = last_full
    if backup_type == BackupType.INCREMENTAL:
        base = (
            candidates.filter(backup_type__in=CHAIN_TYPES, created_at__gte=last_full.created_at)
            .order_by("-created_at")
            .first()
        )
    if not base.metadata.get("watermark"):
        raise BackupFailed(BASE_WITHOUT_WATERMARK.format(backup=base))
    return base


def changed_tables(watermark: dict, *, using: str = DEFAULT_DB_ALIAS) -> list[Table]:
    """Return the tables of an archive holding what changed after `watermark`, in restore order.

    Record tables hold the rows touched since (as they are now) and name those deleted
    since; history tables and the audit log the rows appended since; groups and users
    all their rows (they keep no history).
    """
    taken_at = parse_datetime(watermark["taken_at"])
    since = taken_at - CHANGE_MARGIN
    later_audit = AuditLog.objects.using(using).filter(sequence__gt=watermark["audit_sequence"])
    audited_ids = later_audit.exclude(resource_id__isnull=True).values("resource_id")
    records, histories = [], []
    for model in record_models():
        manager = model._base_manager.using(using)
        touched = Q(pk__in=audited_ids)
        if any(f.name == "updated_at" for f in model._meta.concrete_fields):
            touched |= Q(updated_at__gte=since)
        deleted: tuple[str, ...] = ()
        if is_history_tracked(model):
            history_model = get_history_model_for_model(model)
            last_id = watermark["history"].get(history_model._meta.label_lower, 0)
            later_history = history_model._base_manager.using(using).filter(
                Q(pk__gt=last_id) | Q(history_date__gte=since)
            )
            touched |= Q(pk__in=later_history.values("id"))
            deleted = tuple(
                str(pk)
                for pk in later_history.filter(history_type="-")
                .exclude(id__in=manager.values("pk"))
                .order_by("id")
                .values_list("id", flat=True)
                .distinct()
            )
            histories.append(
                Table(history_model, TableKind.HISTORY, later_history.order_by("pk"), False)
            )
        records.append(
            Table(model, TableKind.RECORDS, manager.filter(touched).order_by("pk"), False, deleted)
        )
    users = get_user_model()._base_manager.using(using).order_by("pk")
    groups = Group.objects.using(using).order_by("pk")
    return [
        Table(Group, TableKind.GROUPS, groups),
        Table(get_user_model(), TableKind.USERS, users),
        *records,
        *histories,
        Table(AuditLog, TableKind.AUDIT, later_audit.order_by("sequence"), False),
    ]
