"""Restoring a backup: check the archive, plan, snapshot, write in one transaction, record it.

Restore checks the archive checksum and every member hash before it writes
anything, plans the restore read-only (refusing conflicts), then writes every row in
one transaction with raw saves (original ids and timestamps, no ``auto_now``, no
history rows, no services). See README, section "Maintenance commands" for the rules.
"""

from __future__ import annotations

import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, transaction

from records.scoping import engagement_model
from records.services import save_with_history

from ..choices import AuditAction, BackupType, Severity
from ..models import Backup, Recovery
from ..services import audit_record
from .archive import NoProgress, ProgressFactory, file_sha256
from .chain import ChainLink, merged_archive, resolve_chain
from .create import DEFAULT_KEEP_DAYS, backup_create, record_backup_event
from .errors import BackupError, BackupFailed, RestoreFailed, RestoreRefused
from .manifest import ARCHIVE_UNREADABLE, ArchiveSource, Manifest, resolve_source
from .walk import RestoreMode, RestorePlan, _RestoreWalk

RESTORE_FAILED = "Restore of {archive} failed and was rolled back: {error}"
SNAPSHOT_FAILED = "the pre-recovery snapshot could not be written: {error}"


@dataclass
class RestoreResult:
    """What a restore did, or (dry run) would do."""

    source: ArchiveSource
    manifest: Manifest
    plan: RestorePlan
    recovery: Recovery | None = None
    snapshot: Backup | None = None
    dry_run: bool = False
    chain: list[ChainLink] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        """Return whether every row and file of the archive is already in place."""
        return not self.plan.rows_written and not self.plan.files_written


def backup_restore(
    *,
    source: str,
    mode: RestoreMode = RestoreMode.REFUSE,
    dry_run: bool = False,
    actor=None,
    snapshot_dir: Path | str | None = None,
    snapshot_keep_days: int | None = DEFAULT_KEEP_DAYS,
    progress: ProgressFactory = NoProgress,
    using: str = DEFAULT_DB_ALIAS,
) -> RestoreResult:
    """Restore a backup archive (a Backup id or a path) exactly as it was written.

    1. Check the archive's SHA-256 and every member hash (RestoreRefused, nothing written);
       for an incremental or differential archive, find and check every base down to
       the full backup and every link, then merge the chain (see `chain`).
    2. Plan read-only: every row is new, unchanged, or conflicting (exists with other
       values); refuse conflicts unless `mode` merges or overwrites, and audit entries
       that differ or cannot be linked to the chain head (RestoreRefused).
    3. Unless `dry_run` or nothing is to be done: record a Recovery row, write a
       pre-recovery snapshot (a backup of the same scope), then write every row and
       file in one transaction. A failure rolls it back, removes the files written,
       marks the Recovery failed with the error (RestoreFailed).
    4. Record the snapshot's data_export and the restore's data_import audit events
       after the restored chain.
    """
    archive = resolve_source(source, using=using)
    chain = resolve_chain(archive, progress=progress, using=using)
    with merged_archive(chain, progress=progress) as (readable, manifest):
        return _restore_checked(
            archive=archive,
            readable=readable,
            manifest=manifest,
            chain=chain,
            mode=mode,
            dry_run=dry_run,
            actor=actor,
            snapshot_dir=snapshot_dir,
            snapshot_keep_days=snapshot_keep_days,
            progress=progress,
            using=using,
        )


def _restore_checked(
    *,
    archive: ArchiveSource,
    readable: ArchiveSource,
    manifest: Manifest,
    chain: list[ChainLink],
    mode: RestoreMode,
    dry_run: bool,
    actor,
    snapshot_dir,
    snapshot_keep_days,
    progress: ProgressFactory,
    using: str,
) -> RestoreResult:
    """Plan and (unless a dry run) restore a checked archive; `readable` is what is walked."""
    try:
        plan = _RestoreWalk(
            source=readable,
            manifest=manifest,
            mode=mode,
            write=False,
            using=using,
            progress=progress,
        ).run()
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError) as error:
        # The file changed after it was checked.
        raise RestoreRefused(ARCHIVE_UNREADABLE.format(path=archive.path, error=error)) from error
    if plan.refusal_count:
        raise RestoreRefused(plan.refusal_message())
    result = RestoreResult(
        source=archive, manifest=manifest, plan=plan, dry_run=dry_run, chain=chain
    )
    if dry_run or result.nothing_to_do:
        return result

    backup = archive.backup or _register_archive(archive, manifest, actor=actor, using=using)
    recovery = Recovery(
        name=f"Restore of {backup.name}",
        backup=backup,
        options={
            "mode": str(mode),
            "overwrite": mode == RestoreMode.OVERWRITE,
            "merge": mode == RestoreMode.MERGE,
            "source": str(archive.path),
        },
        metadata={
            **_recovery_metadata(archive, manifest),
            "chain": [link.as_json() for link in chain],
        },
    )
    save_with_history(recovery, actor=actor, reason="Requested", created=True)
    recovery.start()
    save_with_history(recovery, actor=actor, reason="Started")
    result.recovery = recovery

    try:
        snapshot = backup_create(
            scope=manifest.scope,
            output_dir=snapshot_dir,
            keep_days=snapshot_keep_days,
            actor=actor,
            name=f"pre-recovery-{str(recovery.pk)[:8]}-{manifest.scope.kind}",
            description=f"Taken before {recovery.name}",
            metadata={"pre_recovery_snapshot": True, "recovery_id": str(recovery.pk)},
            record_event=False,
            # An artefacts archive writes files only: its snapshot is of the files.
            backup_type=(
                BackupType.ARTEFACTS if manifest.backup_type == BackupType.ARTEFACTS else None
            ),
            progress=progress,
            using=using,
        )
    except BackupFailed as error:
        _fail_recovery(recovery, SNAPSHOT_FAILED.format(error=error), actor=actor, snapshot=None)
        raise RestoreFailed(
            RESTORE_FAILED.format(archive=archive.path, error=SNAPSHOT_FAILED.format(error=error))
        ) from error
    result.snapshot = snapshot
    recovery.pre_recovery_snapshot = snapshot.storage_path
    save_with_history(recovery, actor=actor, reason="Snapshot written")

    walk = _RestoreWalk(
        source=readable, manifest=manifest, mode=mode, write=True, using=using, progress=progress
    )
    try:
        with transaction.atomic(using=using):
            done = walk.run()
            walk.finish()
    except BaseException as error:
        # Interrupted too (Ctrl-C): the rows rolled back, so the files and the record follow.
        walk.remove_written_files()
        message = (
            error.message if isinstance(error, BackupError) else f"{type(error).__name__}: {error}"
        )
        _fail_recovery(recovery, message, actor=actor, snapshot=snapshot)
        if not isinstance(error, Exception):
            raise
        raise RestoreFailed(RESTORE_FAILED.format(archive=archive.path, error=message)) from error

    result.plan = done
    if manifest.scope.engagement_id is not None:
        recovery.engagement = (
            engagement_model()
            .all_objects.using(using)
            .filter(pk=manifest.scope.engagement_id)
            .first()
        )
    recovery.records_recovered = done.rows_written
    recovery.tables_recovered = done.tables_written
    recovery.metadata = {
        **recovery.metadata,
        "tables": {label: tally.as_json(mode) for label, tally in done.tables.items()},
        "files": done.files.as_json(mode),
        "warnings": done.warnings,
        "snapshot_backup_id": str(snapshot.pk),
    }
    recovery.complete()
    save_with_history(recovery, actor=actor, reason="Completed")
    record_backup_event(
        snapshot, actor=actor, pre_recovery_snapshot=True, recovery_id=str(recovery.pk)
    )
    _record_import_event(recovery, actor=actor)
    return result


def _recovery_metadata(archive: ArchiveSource, manifest: Manifest) -> dict:
    return {
        "scope": manifest.scope.as_json(),
        "archive": str(archive.path),
        "checksum_origin": archive.checksum_origin,
        "manifest_created_at": manifest.data.get("created_at"),
        "manifest_backup_id": manifest.data.get("backup_id"),
        "app_version": manifest.data.get("app_version"),
        "format_version": manifest.data.get("format_version"),
    }


def _register_archive(archive: ArchiveSource, manifest: Manifest, *, actor, using) -> Backup:
    """Record a Backup row for an archive this database has no row for (it came from elsewhere).

    It never expires: the archive is the operator's file, prune_backups leaves it alone.
    """
    checksum, size = file_sha256(archive.path)
    scope = manifest.scope
    backup = Backup(
        name=f"Imported {archive.path.name}",
        description="Archive restored from a file this database had no backup row for.",
        backup_type=manifest.backup_type,
        storage_path=str(archive.path),
        file_size_bytes=size,
        checksum=checksum,
        record_count=manifest.total_rows,
        tables_included=[table.label for table in manifest.tables],
        engagement=(
            None
            if scope.engagement_id is None
            else engagement_model().all_objects.using(using).filter(pk=scope.engagement_id).first()
        ),
        metadata={
            "scope": scope.as_json(),
            "imported": True,
            "manifest_backup_id": manifest.data.get("backup_id"),
            "manifest_created_at": manifest.data.get("created_at"),
            "app_version": manifest.data.get("app_version"),
            "format_version": manifest.data.get("format_version"),
            "counts": manifest.data.get("counts", {}),
        },
    )
    save_with_history(backup, actor=actor, reason="Imported", created=True)
    backup.start()
    backup.complete()
    save_with_history(backup, actor=actor, reason="Imported")
    return backup


def _fail_recovery(recovery: Recovery, message: str, *, actor, snapshot: Backup | None) -> None:
    """Mark the Recovery failed (outside the rolled-back transaction) and put it on record."""
    recovery.fail(message)
    save_with_history(recovery, actor=actor, reason="Failed")
    if snapshot is not None:
        record_backup_event(
            snapshot, actor=actor, pre_recovery_snapshot=True, recovery_id=str(recovery.pk)
        )
    _record_import_event(recovery, actor=actor, severity=Severity.ERROR)


def _record_import_event(recovery: Recovery, *, actor, severity=Severity.INFO):
    scope = recovery.metadata.get("scope") or {}
    if recovery.status == "failed":
        description = f"Restore failed and was rolled back: {recovery} ({recovery.error_message})"
    else:
        description = f"Restore completed: {recovery} ({recovery.records_recovered} rows)"
    return audit_record(
        action=AuditAction.DATA_IMPORT,
        resource=recovery,
        resource_type="recovery",
        user=actor,
        severity=severity,
        engagement_id=scope.get("engagement_id"),
        description=description,
        metadata={
            "backup_id": str(recovery.backup_id),
            "status": recovery.status,
            "options": recovery.options,
            "records_recovered": recovery.records_recovered,
            "tables_recovered": recovery.tables_recovered,
            "pre_recovery_snapshot": recovery.pre_recovery_snapshot,
            "error_message": recovery.error_message,
        },
    )
