"""Writing a backup: the archive of a scope, the Backup row that records it, its expiry."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import tarfile
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from records.exceptions import Conflict
from records.scoping import engagement_model
from records.services import save_with_history
from records.transactions import audited_transaction

from ..choices import AuditAction, BackupStatus, BackupType, Severity
from ..models import Backup
from ..services import audit_record
from .archive import (
    APP_DISTRIBUTION,
    ARCHIVE_SUFFIX,
    FILES_PREFIX,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_MEMBER,
    PART_SUFFIX,
    ROW_CHUNK_SIZE,
    HashingReader,
    NoProgress,
    ProgressFactory,
    _BytesReader,
    _Counted,
    app_version,
    checksum_path,
    dump_rows,
    file_sha256,
    safe_storage_name,
)
from .audit_archive import audit_segment, default_since
from .changes import CHAIN_TYPES, chain_base, changed_tables, current_watermark
from .errors import BackupFailed
from .scope import BackupScope, Table, TableKind, _file_fields, scope_tables, serializer_options

logger = logging.getLogger(__name__)


DEFAULT_KEEP_DAYS = 30

ARCHIVE_WRITE_FAILED = "Backup “{backup}” failed: {error}"
BACKUP_NOT_DUE = "Cannot expire backup “{backup}”: it is kept until {expires_at}."


@dataclass
class ArchiveSummary:
    """What an archive holds once written."""

    path: Path
    size: int
    checksum: str
    counts: dict[str, int]
    files: int
    file_bytes: int
    problems: list[str]
    manifest: dict
    manifest_sha256: str


@contextmanager
def _consistent_read(using: str):
    """Read every table from one snapshot of the database, so rows agree with each other."""
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using):
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def _add_member(tar: tarfile.TarFile, name: str, handle, size: int, mtime: int) -> dict:
    """Stream `size` bytes of `handle` into the archive; return the member's hash and size."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    reader = HashingReader(handle)
    tar.addfile(info, reader)
    return {"sha256": reader.hexdigest(), "size": reader.size}


def write_archive(
    *,
    scope: BackupScope,
    path: Path,
    backup_id: uuid.UUID | None = None,
    progress: ProgressFactory = NoProgress,
    using: str = DEFAULT_DB_ALIAS,
    backup_type: str | None = None,
    base: dict | None = None,
    audit_since: int | None = None,
) -> ArchiveSummary:
    """Write the archive of `scope` to `path` (and its .sha256 file); return what it holds.

    Rows are streamed table by table from one consistent read of the database into a
    temporary file, then into the archive; files are streamed from storage in chunks.
    With a `base` (the link to the backup an incremental or differential builds on,
    with its watermark), only what changed after the base's watermark is archived.
    An audit-logs archive holds the chain's entries after `audit_since` and the hashes
    before and after them; an artefacts archive the files of the scope's artefacts and
    no rows. Nothing is left at `path` if it fails.
    """
    backup_type = backup_type or scope.backup_type
    created_at = timezone.now()
    mtime = int(created_at.timestamp())
    part = path.with_name(path.name + PART_SUFFIX)
    members, counts, tables_json, files_json, problems = {}, {}, [], {}, []
    file_bytes = 0
    try:
        with (
            _consistent_read(using),
            tempfile.TemporaryDirectory(prefix="backup-") as staging,
            tarfile.open(part, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=6) as tar,
        ):
            watermark = segment = None
            if backup_type in CHAIN_TYPES:
                watermark = current_watermark(using, created_at)
            if backup_type == BackupType.AUDIT_LOGS:
                tables, segment = audit_segment(audit_since or 0, using)
                file_names = []
            elif backup_type == BackupType.ARTEFACTS:
                # The files of every artefact version in scope, and no rows.
                tables = []
                file_names = _archived_file_names(scope_tables(scope, using))
            else:
                if base is None:
                    tables = scope_tables(scope, using)
                else:
                    tables = changed_tables(base["watermark"], using=using)
                file_names = _archived_file_names(tables)
            total = sum(table.queryset.count() for table in tables) + len(file_names)
            with progress("Backing up", total) as bar:
                for table in tables:
                    staged = Path(staging) / "rows.jsonl"
                    rows = _Counted(table.queryset.iterator(chunk_size=ROW_CHUNK_SIZE), bar)
                    with staged.open("w", encoding="utf-8", newline="\n") as stream:
                        dump_rows(rows, stream, serializer_options(table, scope))
                    with staged.open("rb") as handle:
                        members[table.member] = _add_member(
                            tar, table.member, handle, staged.stat().st_size, mtime
                        )
                    staged.unlink()
                    counts[table.label] = rows.count
                    tables_json.append(
                        {
                            "label": table.label,
                            "kind": str(table.kind),
                            "member": table.member,
                            "rows": rows.count,
                            "complete": table.complete,
                            "deleted": list(table.deleted),
                        }
                    )
                for name, (storage, expected_hash, field_label) in file_names:
                    stored = _add_file(tar, storage, name, expected_hash, mtime, problems)
                    if stored is not None:
                        members[FILES_PREFIX + name] = stored
                        files_json[name] = {
                            **stored,
                            "field": field_label,
                            "recorded_sha256": expected_hash,
                        }
                        file_bytes += stored["size"]
                    bar.update(1)
            manifest = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "app": APP_DISTRIBUTION,
                "app_version": app_version(),
                "django_version": django.get_version(),
                "database_vendor": connections[using].vendor,
                "created_at": created_at.isoformat(),
                "backup_id": None if backup_id is None else str(backup_id),
                "scope": scope.as_json(),
                "backup_type": str(backup_type),
                "base": None if base is None else _link_fields(base),
                "watermark": watermark,
                "audit_segment": segment,
                "tables": tables_json,
                "counts": counts,
                "files": files_json,
                "problems": problems,
                "members": members,
            }
            encoded = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            manifest_sha256 = hashlib.sha256(encoded).hexdigest()
            info = tarfile.TarInfo(MANIFEST_MEMBER)
            info.size, info.mtime, info.mode = len(encoded), mtime, 0o644
            tar.addfile(info, _BytesReader(encoded))
        checksum, size = file_sha256(part)
        os.replace(part, path)
        checksum_path(path).write_text(f"{checksum}  {path.name}\n", encoding="ascii")
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return ArchiveSummary(
        path=path,
        size=size,
        checksum=checksum,
        counts=counts,
        files=len(files_json),
        file_bytes=file_bytes,
        problems=problems,
        manifest=manifest,
        manifest_sha256=manifest_sha256,
    )


# What an archive records of its base: enough to find it and to prove it is the same one.
LINK_FIELDS = ("backup_id", "backup_type", "archive_name", "archive_sha256", "manifest_sha256")


def _link_fields(base: dict) -> dict:
    return {key: base.get(key) for key in LINK_FIELDS}


def base_link(base: Backup) -> dict:
    """Return the link an archive building on `base` records (and the watermark it starts at)."""
    return {
        "backup_id": str(base.pk),
        "backup_type": base.backup_type,
        "archive_name": Path(base.storage_path).name,
        "archive_sha256": base.checksum,
        "manifest_sha256": base.metadata.get("manifest_sha256", ""),
        "watermark": base.metadata["watermark"],
    }


def _archived_file_names(tables: list[Table]) -> list[tuple[str, tuple[Any, str, str]]]:
    """Return (storage name, (storage, expected SHA-256, field)) of every file rows reference.

    Identical bytes shared by several artefacts are archived once; the field
    ("app_label.model.field") tells a restore which storage the file goes to.
    """
    files: dict[str, tuple[Any, str, str]] = {}
    for table in tables:
        if table.kind != TableKind.RECORDS:
            continue
        has_hash = any(f.name == "content_hash" for f in table.model._meta.concrete_fields)
        for file_field in _file_fields(table.model):
            columns = (file_field.attname, "content_hash") if has_hash else (file_field.attname,)
            rows = (
                table.queryset.exclude(**{file_field.attname: ""}).order_by().values_list(*columns)
            )
            field_label = f"{table.label}.{file_field.name}"
            for name, *expected in rows.distinct():
                files.setdefault(
                    name, (file_field.storage, expected[0] if expected else "", field_label)
                )
    return sorted(files.items())


def _add_file(tar, storage, name: str, expected_hash: str, mtime: int, problems: list):
    """Stream one stored file into the archive; note (not raise) a missing or changed one."""
    if not safe_storage_name(name):
        problems.append(f"file {name!r}: not a safe storage name, not archived")
        return None
    try:
        size = storage.size(name)
        with storage.open(name, "rb") as handle:
            stored = _add_member(tar, FILES_PREFIX + name, handle, size, mtime)
    except FileNotFoundError:
        problems.append(f"file {name}: missing from storage, not archived")
        logger.warning("Backup: artefact file %s is missing from storage", name)
        return None
    if expected_hash and stored["sha256"] != expected_hash:
        # Archived as found: the backup keeps the evidence, verify_artefacts reports it.
        problems.append(
            f"file {name}: SHA-256 {stored['sha256']} does not match its record {expected_hash}"
        )
        logger.warning("Backup: artefact file %s does not match its recorded hash", name)
    return stored


def archive_file_name(scope: BackupScope, backup: Backup, when: datetime.datetime) -> str:
    """Return the file name of a new archive: type and scope, UTC time, backup id."""
    stamp = when.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    what = "full" if scope.engagement_id is None else f"engagement-{scope.engagement_id}"
    if backup.backup_type not in (BackupType.FULL, BackupType.ENGAGEMENT):
        what = backup.backup_type.replace("_", "-")
        if scope.engagement_id is not None:
            what += f"-engagement-{scope.engagement_id}"
    return f"backup-{what}-{stamp}-{str(backup.pk)[:8]}{ARCHIVE_SUFFIX}"


def backup_create(
    *,
    scope: BackupScope,
    output_dir: Path | str | None = None,
    keep_days: int | None = DEFAULT_KEEP_DAYS,
    actor=None,
    name: str = "",
    description: str = "",
    metadata: dict | None = None,
    record_event: bool = True,
    progress: ProgressFactory = NoProgress,
    using: str = DEFAULT_DB_ALIAS,
    backup_type: str | None = None,
    audit_since: int | None = None,
) -> Backup:
    """Write a backup archive of `scope` and record it as a completed Backup row.

    `backup_type` incremental or differential writes what changed since the chain's
    last backup or last full backup (BackupFailed, nothing written, without a full);
    audit_logs the audit entries after `audit_since` (default: after the last audit-log
    archive); artefacts the files of the scope's artefacts only.

    The row moves pending → in_progress → completed (or failed) through its lifecycle
    methods, with history; on completion it holds the size, record count, tables,
    SHA-256 of the archive and expires_at (`keep_days` from now; 0 or None: never).
    A data_export audit event is recorded unless `record_event` is false (restore
    records its snapshot's event itself, after the restored audit chain). Raises
    BackupFailed (the row failed, no archive left) if writing fails.
    """
    backup_type = backup_type or scope.backup_type
    base = None
    if backup_type in CHAIN_TYPES and backup_type != BackupType.FULL:
        base = base_link(chain_base(backup_type, using=using))
    if backup_type == BackupType.AUDIT_LOGS and audit_since is None:
        audit_since = default_since(using)
    engagement = None
    if scope.engagement_id is not None:
        engagement = (
            engagement_model().all_objects.using(using).filter(pk=scope.engagement_id).first()
        )
    now = timezone.now()
    backup = Backup(
        backup_type=backup_type,
        engagement=engagement,
        description=description,
        expires_at=now + datetime.timedelta(days=keep_days) if keep_days else None,
        metadata={"scope": scope.as_json(), **(metadata or {})},
    )
    if base is not None:
        backup.metadata["base"] = _link_fields(base)
    directory = Path(str(output_dir or settings.BACKUP_ROOT)).resolve()
    path = directory / archive_file_name(scope, backup, now)
    backup.name = name or path.name.removesuffix(ARCHIVE_SUFFIX)
    backup.storage_path = str(path)
    save_with_history(backup, actor=actor, reason="Requested", created=True)
    backup.start()
    save_with_history(backup, actor=actor, reason="Started")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        summary = write_archive(
            scope=scope,
            path=path,
            backup_id=backup.pk,
            progress=progress,
            using=using,
            backup_type=backup_type,
            base=base,
            audit_since=audit_since,
        )
    except BaseException as error:
        # Interrupted too (Ctrl-C): the row must not stay in progress for ever.
        backup.fail(str(error) or type(error).__name__)
        save_with_history(backup, actor=actor, reason="Failed")
        if record_event:
            record_backup_event(backup, actor=actor, severity=Severity.ERROR)
        if not isinstance(error, Exception):
            raise
        raise BackupFailed(ARCHIVE_WRITE_FAILED.format(backup=backup, error=error)) from error
    backup.file_size_bytes = summary.size
    backup.checksum = summary.checksum
    backup.record_count = sum(summary.counts.values())
    backup.tables_included = list(summary.counts)
    backup.metadata = {
        **backup.metadata,
        "format_version": FORMAT_VERSION,
        "app_version": summary.manifest["app_version"],
        "counts": summary.counts,
        "files": summary.files,
        "file_bytes": summary.file_bytes,
        "problems": summary.problems,
        "manifest_sha256": summary.manifest_sha256,
        "watermark": summary.manifest["watermark"],
        "audit_segment": summary.manifest["audit_segment"],
    }
    backup.complete()
    save_with_history(backup, actor=actor, reason="Completed")
    if record_event:
        record_backup_event(backup, actor=actor)
    return backup


def record_backup_event(backup: Backup, *, actor=None, severity=Severity.INFO, **metadata):
    """Record the data_export audit event of a backup (written, failed or snapshot)."""
    if backup.status == BackupStatus.FAILED:
        description = f"Backup failed: {backup} ({backup.error_message})"
    else:
        description = f"Backup written: {backup} ({backup.record_count} rows)"
    return audit_record(
        action=AuditAction.DATA_EXPORT,
        resource=backup,
        resource_type="backup",
        user=actor,
        severity=severity,
        engagement_id=(backup.metadata.get("scope") or {}).get("engagement_id"),
        description=description,
        metadata={
            "backup_type": backup.backup_type,
            "status": backup.status,
            "storage_path": backup.storage_path,
            "checksum": backup.checksum,
            "file_size_bytes": backup.file_size_bytes,
            "record_count": backup.record_count,
            "expires_at": backup.expires_at,
            **metadata,
        },
    )


def backup_expire(*, backup: Backup, actor=None) -> bool:
    """Remove the archive of a backup past its expiry and mark the row expired.

    Locks the row, removes the archive and its .sha256 file (a missing file is fine),
    moves the row to expired with history, and records a data_export event with
    metadata {"pruned": true}. Return whether an archive file was removed.
    """
    with audited_transaction():
        backup = Backup.objects.select_for_update(no_key=True).get(pk=backup.pk)
        backup.check_move("expire")
        if backup.expires_at is None or backup.expires_at > timezone.now():
            raise Conflict(
                BACKUP_NOT_DUE.format(backup=backup, expires_at=backup.expires_at or "never")
            )
        removed = False
        if backup.storage_path:
            path = Path(backup.storage_path)
            for candidate in (path, checksum_path(path)):
                if candidate.is_file():
                    candidate.unlink()
                    removed = removed or candidate == path
        backup.expire()
        save_with_history(backup, actor=actor, reason="Expired")
        audit_record(
            action=AuditAction.DATA_EXPORT,
            resource=backup,
            resource_type="backup",
            user=actor,
            engagement_id=(backup.metadata.get("scope") or {}).get("engagement_id"),
            description=f"Backup expired and its archive removed: {backup}",
            metadata={
                "pruned": True,
                "storage_path": backup.storage_path,
                "archive_removed": removed,
                "expires_at": backup.expires_at,
            },
        )
    return removed
