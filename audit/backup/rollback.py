"""Rolling back a restore: put its pre-recovery snapshot back, in one transaction.

A completed restore wrote a snapshot of its scope as it stood before (the Recovery
row's `pre_recovery_snapshot`). Rolling back makes the scope what the snapshot holds:
rows added since are removed, rows changed since get their snapshot values back, rows
removed since come back. What is never undone: the audit log (append-only — the
restore's entries and this rollback's stay on record) and user accounts and groups
(kept as they are; an engagement snapshot never owned them).

Anything changed after the restore would be lost too, so the rollback first looks
for it — history rows written after the restore completed and audit events after
its data_import event, in the snapshot's scope — and refuses, naming them, unless
forced.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, transaction

from records.services import lock, save_with_history

from ..choices import AuditAction, RecoveryStatus, Severity
from ..models import AuditLog, Backup, Recovery
from ..services import audit_record
from .archive import DATA_PREFIX, NoProgress, ProgressFactory, _lines
from .errors import BackupError, RestoreFailed, RestoreRefused
from .manifest import resolve_source, verify_archive
from .scope import CATALOGUE_LABELS, TableKind, scope_tables
from .walk import MAX_LISTED_PROBLEMS, MORE_PROBLEMS, RestoreMode, RestorePlan, _RestoreWalk

NOT_ROLLABLE = "Recovery “{recovery}” is {status}: only a completed restore can be rolled back."
NO_SNAPSHOT = (
    "Recovery “{recovery}” has no pre-recovery snapshot to put back (backup {backup} is {status})."
)
LATER_CHANGES = (
    "Rollback of “{recovery}” refused, nothing was changed: these changes were made after "
    "the restore and would be lost (--force rolls back anyway):\n  {changes}"
)
HISTORY_CHANGE = "{label} {pk}: {kind} at {when:%Y-%m-%d %H:%M:%S} UTC"
AUDIT_CHANGE = "audit event {sequence}: {action} of {resource_type} {resource_id}"
ROLLBACK_FAILED = "Rollback of “{recovery}” failed and was undone: {error}"
HISTORY_KINDS = {"+": "created", "~": "changed", "-": "deleted"}
# Audit events that are the catalogue's own (backups written, restores): not business changes.
CATALOGUE_RESOURCES = ("backup", "recovery")


@dataclass
class RollbackResult:
    """What a rollback did: rows removed and written per table, later changes it overrode."""

    recovery: Recovery
    snapshot: Backup
    removed: dict[str, int] = field(default_factory=dict)
    plan: RestorePlan | None = None
    later_changes: list[str] = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        """Return the rows deleted because the snapshot did not hold them."""
        return sum(self.removed.values())


def recovery_roll_back(
    *,
    recovery: Recovery,
    force: bool = False,
    actor=None,
    progress: ProgressFactory = NoProgress,
    using: str = DEFAULT_DB_ALIAS,
) -> RollbackResult:
    """Put back the pre-recovery snapshot of a completed restore and mark it rolled back.

    Checks the snapshot archive first; refuses (RestoreRefused, nothing changed) if it
    is missing or damaged, or if anything in its scope changed after the restore,
    unless `force`. Then, in one transaction: removes the rows the snapshot does not
    hold, restores its rows (overwriting), marks the Recovery rolled back with history,
    and records a data_import audit event. A failure undoes all of it (RestoreFailed).
    """
    if recovery.status != RecoveryStatus.COMPLETED:
        raise RestoreRefused(NOT_ROLLABLE.format(recovery=recovery, status=recovery.status))
    snapshot = (
        Backup.objects.using(using)
        .filter(pk=(recovery.metadata or {}).get("snapshot_backup_id"))
        .first()
    )
    if snapshot is None or snapshot.status != "completed":
        raise RestoreRefused(
            NO_SNAPSHOT.format(
                recovery=recovery,
                backup=getattr(snapshot, "pk", "—"),
                status=getattr(snapshot, "status", "missing"),
            )
        )
    source = resolve_source(str(snapshot.pk), using=using)
    manifest = verify_archive(source, progress=progress)
    later = later_changes(recovery, manifest.scope, using=using)
    if later and not force:
        shown = later[:MAX_LISTED_PROBLEMS]
        if len(later) > len(shown):
            shown.append(MORE_PROBLEMS.format(count=len(later) - len(shown)))
        raise RestoreRefused(LATER_CHANGES.format(recovery=recovery, changes="\n  ".join(shown)))
    result = RollbackResult(recovery=recovery, snapshot=snapshot, later_changes=later)
    kept = _snapshot_keys(source, manifest)
    walk = _RestoreWalk(
        source=source,
        manifest=manifest,
        mode=RestoreMode.OVERWRITE,
        write=True,
        using=using,
        progress=progress,
    )
    try:
        with transaction.atomic(using=using):
            recovery = lock(recovery)
            if recovery.status != RecoveryStatus.COMPLETED:
                raise RestoreRefused(NOT_ROLLABLE.format(recovery=recovery, status=recovery.status))
            result.removed = _remove_rows_not_in(manifest, kept, using)
            result.plan = walk.run()
            walk.finish()
            recovery.roll_back()
            recovery.metadata = {
                **recovery.metadata,
                "rollback": {
                    "snapshot_backup_id": str(snapshot.pk),
                    "rows_removed": result.removed,
                    "rows_written": result.plan.rows_written,
                    "forced": bool(later),
                    "later_changes": later[:MAX_LISTED_PROBLEMS],
                },
            }
            save_with_history(recovery, actor=actor, reason="Rolled back")
            result.recovery = recovery
            audit_record(
                action=AuditAction.DATA_IMPORT,
                resource=recovery,
                resource_type="recovery",
                user=actor,
                severity=Severity.WARNING if later else Severity.INFO,
                engagement_id=(recovery.metadata.get("scope") or {}).get("engagement_id"),
                description=f"Restore rolled back to its pre-recovery snapshot: {recovery}",
                metadata={"rollback": True, **recovery.metadata["rollback"]},
            )
    except BackupError as error:
        walk.remove_written_files()
        if isinstance(error, RestoreRefused):
            raise
        raise RestoreFailed(
            ROLLBACK_FAILED.format(recovery=recovery, error=error.message)
        ) from error
    except BaseException:
        walk.remove_written_files()
        raise
    return result


def later_changes(recovery: Recovery, scope, *, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Return what changed in `scope` after the restore completed (history rows, audit events)."""
    changes = []
    for table in scope_tables(scope, using):
        if table.kind != TableKind.HISTORY:
            continue
        rows = (
            table.queryset.filter(history_date__gt=recovery.completed_at)
            .order_by("history_date", "pk")
            .values_list("id", "history_type", "history_date")
        )
        label = table.label.replace(".historical", ".")
        for pk, kind, when in rows[: MAX_LISTED_PROBLEMS + 1]:
            changes.append(
                HISTORY_CHANGE.format(
                    label=label, pk=pk, kind=HISTORY_KINDS.get(kind, kind), when=when
                )
            )
    imported = (
        AuditLog.objects.using(using)
        .filter(action=AuditAction.DATA_IMPORT, resource_id=recovery.pk)
        .order_by("sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    if imported is not None:
        events = AuditLog.objects.using(using).filter(sequence__gt=imported)
        events = events.exclude(resource_type__in=CATALOGUE_RESOURCES)
        if scope.engagement_id is not None:
            events = events.filter(engagement_id=scope.engagement_id)
        for sequence, action, resource_type, resource_id in events.order_by("sequence").values_list(
            "sequence", "action", "resource_type", "resource_id"
        )[: MAX_LISTED_PROBLEMS + 1]:
            changes.append(
                AUDIT_CHANGE.format(
                    sequence=sequence,
                    action=action,
                    resource_type=resource_type,
                    resource_id=resource_id or "",
                )
            )
    return changes


def _snapshot_keys(source, manifest) -> dict[str, set[str]]:
    """Return the primary keys (as text) of the rows the snapshot holds, per table."""
    members = {table.member: table.label for table in manifest.tables}
    keys: dict[str, set[str]] = {label: set() for label in members.values()}
    with tarfile.open(source.read_path, "r|gz") as tar:
        for member in tar:
            label = members.get(member.name)
            if label is None or not member.name.startswith(DATA_PREFIX):
                continue
            keys[label].update(
                str(json.loads(line)["pk"]) for line in _lines(tar.extractfile(member))
            )
    return keys


def _remove_rows_not_in(manifest, kept: dict[str, set[str]], using: str) -> dict[str, int]:
    """Delete the rows in the snapshot's scope that it does not hold, children first.

    Raw deletes (no signals, no cascade, no history rows): every row of the scope is
    either kept or removed here, and foreign keys are checked at the end. Rows of the
    backup catalogue pointing to a removed row lose the link (as SET_NULL would).
    Audit entries, users and groups are never removed.
    """
    removed = {}
    tables = {table.label: table for table in scope_tables(manifest.scope, using)}
    for entry in reversed(manifest.tables):
        if entry.kind not in (TableKind.RECORDS, TableKind.HISTORY):
            continue
        table = tables.get(entry.label)
        if table is None:
            continue
        keep = kept.get(entry.label, set())
        extra = [pk for pk in table.queryset.values_list("pk", flat=True) if str(pk) not in keep]
        if not extra:
            continue
        model = table.model
        for relation in model._meta.related_objects:
            if (
                relation.related_model._meta.label_lower in CATALOGUE_LABELS
                and relation.field.null
                and relation.field.db_constraint
            ):
                relation.related_model._base_manager.using(using).filter(
                    **{f"{relation.field.name}__in": extra}
                ).update(**{relation.field.name: None})
        for start in range(0, len(extra), 500):
            chunk = extra[start : start + 500]
            model._base_manager.using(using).filter(pk__in=chunk)._raw_delete(using)
        removed[entry.label] = len(extra)
    return removed
