"""Reading an archive before a restore: where it is, its checksum, its members, its manifest."""

from __future__ import annotations

import hashlib
import json
import tarfile
import uuid
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, models

from records.formatting import status_label

from ..choices import BackupStatus
from ..models import Backup
from .archive import (
    DATA_PREFIX,
    FILES_PREFIX,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_MEMBER,
    MAX_MANIFEST_SIZE,
    HashingReader,
    NoProgress,
    ProgressFactory,
    checksum_path,
    file_sha256,
    safe_storage_name,
)
from .errors import RestoreRefused
from .scope import AUDIT_LABEL, CATALOGUE_LABELS, BackupScope, TableKind

NO_SUCH_ARCHIVE = "No backup archive at {path} and no backup with id “{value}”."
BACKUP_NOT_RESTORABLE = "Backup “{backup}” is {status}: only a completed backup can be restored."
BACKUP_ARCHIVE_MISSING = "The archive of backup “{backup}” is missing: {path}."
CHECKSUM_MISMATCH = (
    "Archive {path} is corrupted or was changed: its SHA-256 is {actual}, but the "
    "{origin} records {expected}. Nothing was restored."
)
ARCHIVE_UNREADABLE = (
    "Archive {path} is corrupted or not a backup archive: {error}. Nothing was restored."
)
MEMBER_UNSAFE = "Archive {path} holds an unsafe member “{name}” ({reason}). Nothing was restored."
MEMBER_DUPLICATE = "Archive {path} holds member “{name}” twice. Nothing was restored."
MANIFEST_MISSING = "Archive {path} has no manifest.json: it is not a backup archive."
MANIFEST_INVALID = "The manifest of archive {path} is not valid: {error}."
FORMAT_UNSUPPORTED = (
    "Archive {path} is format {format} version {version}; this back office reads "
    f"{FORMAT_NAME} version {FORMAT_VERSION} and older."
)
MEMBER_HASH_MISMATCH = (
    "Archive {path} is corrupted: member “{name}” has SHA-256 {actual} ({actual_size} bytes), "
    "the manifest records {expected} ({expected_size} bytes). Nothing was restored."
)
MEMBER_MISSING = "Archive {path} is corrupted: the manifest lists “{name}”, the archive lacks it."
MEMBER_UNLISTED = "Archive {path} holds “{name}”, which its manifest does not list."
TABLE_UNKNOWN = "Archive {path} holds table “{label}”, which this back office does not have."
TABLE_NOT_RESTORABLE = "Archive {path} holds table “{label}”, which a restore never writes."


@dataclass(frozen=True)
class ArchiveSource:
    """The archive to restore, the Backup row that describes it (if any), its checksum."""

    path: Path
    backup: Backup | None
    expected_checksum: str
    checksum_origin: str


@dataclass(frozen=True)
class ManifestTable:
    """A table as the manifest lists it, with the model it restores into."""

    label: str
    kind: TableKind
    member: str
    rows: int
    model: type[models.Model]
    complete: bool = True
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    """The manifest of a checked archive."""

    data: dict
    scope: BackupScope
    tables: tuple[ManifestTable, ...]
    members: dict[str, dict]
    sha256: str = ""

    @property
    def backup_type(self) -> str:
        """Return the type of backup the archive is (archives of format 1 name only the scope)."""
        return self.data.get("backup_type") or self.scope.backup_type

    @property
    def base(self) -> dict | None:
        """Return the link to the backup this archive builds on (None: it stands alone)."""
        return self.data.get("base")

    @property
    def total_rows(self) -> int:
        """Return the number of rows the archive holds."""
        return sum(table.rows for table in self.tables)

    @property
    def file_names(self) -> set[str]:
        """Return the storage names of the files the archive holds."""
        return {name[len(FILES_PREFIX) :] for name in self.members if name.startswith(FILES_PREFIX)}


def resolve_source(value: str, *, using: str = DEFAULT_DB_ALIAS) -> ArchiveSource:
    """Return the archive named by a Backup id or a path, with the checksum to expect.

    The expected checksum comes from the Backup row (by id, or the row whose
    storage_path is the path), else from the .sha256 file next to the archive.
    """
    backup = None
    with suppress(ValueError):
        backup = Backup.objects.using(using).filter(pk=uuid.UUID(value)).first()
    if backup is not None:
        if backup.status != BackupStatus.COMPLETED:
            raise RestoreRefused(
                BACKUP_NOT_RESTORABLE.format(backup=backup, status=status_label(backup))
            )
        path = Path(backup.storage_path)
        if not path.is_file():
            raise RestoreRefused(BACKUP_ARCHIVE_MISSING.format(backup=backup, path=path))
        return ArchiveSource(path, backup, backup.checksum, f"backup row {backup.pk}")
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise RestoreRefused(NO_SUCH_ARCHIVE.format(path=path, value=value))
    backup = (
        Backup.objects.using(using)
        .filter(storage_path=str(path), status=BackupStatus.COMPLETED)
        .exclude(checksum="")
        .first()
    )
    if backup is not None:
        return ArchiveSource(path, backup, backup.checksum, f"backup row {backup.pk}")
    sidecar = checksum_path(path)
    if sidecar.is_file():
        expected = sidecar.read_text(encoding="ascii", errors="replace").split()[:1]
        return ArchiveSource(path, None, expected[0].lower() if expected else "", str(sidecar))
    return ArchiveSource(path, None, "", "")


def verify_archive(source: ArchiveSource, *, progress: ProgressFactory = NoProgress) -> Manifest:
    """Check an archive before anything is written; return its manifest.

    The SHA-256 of the whole file must match the Backup row (or .sha256 file); then
    every member is read and hashed and must match the manifest, with no member
    missing, added, repeated or unsafe. Raises RestoreRefused otherwise.
    """
    path = source.path
    if source.expected_checksum:
        actual, _size = file_sha256(path)
        if actual != source.expected_checksum:
            raise RestoreRefused(
                CHECKSUM_MISMATCH.format(
                    path=path,
                    actual=actual,
                    origin=source.checksum_origin,
                    expected=source.expected_checksum,
                )
            )
    found: dict[str, dict] = {}
    manifest_bytes = None
    try:
        with tarfile.open(path, "r|gz") as tar, progress("Checking archive", None) as bar:
            for member in tar:
                _check_member(path, member, found)
                reader = HashingReader(tar.extractfile(member))
                if member.name == MANIFEST_MEMBER:
                    manifest_bytes = reader.read(MAX_MANIFEST_SIZE + 1)
                reader.drain()
                found[member.name] = {"sha256": reader.hexdigest(), "size": reader.size}
                bar.update(1)
    except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError) as error:
        raise RestoreRefused(ARCHIVE_UNREADABLE.format(path=path, error=error)) from error
    if manifest_bytes is None:
        raise RestoreRefused(MANIFEST_MISSING.format(path=path))
    manifest = _parse_manifest(path, manifest_bytes)
    for name, expected in manifest.members.items():
        actual = found.get(name)
        if actual is None:
            raise RestoreRefused(MEMBER_MISSING.format(path=path, name=name))
        if (actual["sha256"], actual["size"]) != (expected.get("sha256"), expected.get("size")):
            raise RestoreRefused(
                MEMBER_HASH_MISMATCH.format(
                    path=path,
                    name=name,
                    actual=actual["sha256"],
                    actual_size=actual["size"],
                    expected=expected.get("sha256"),
                    expected_size=expected.get("size"),
                )
            )
    for name in found:
        if name != MANIFEST_MEMBER and name not in manifest.members:
            raise RestoreRefused(MEMBER_UNLISTED.format(path=path, name=name))
    return manifest


def _check_member(path: Path, member: tarfile.TarInfo, found: dict) -> None:
    name = member.name
    if not member.isreg():
        raise RestoreRefused(MEMBER_UNSAFE.format(path=path, name=name, reason="not a file"))
    if not (
        name == MANIFEST_MEMBER
        or (name.startswith(DATA_PREFIX) and name.endswith(".jsonl") and "/" not in name[5:])
        or (name.startswith(FILES_PREFIX) and safe_storage_name(name[len(FILES_PREFIX) :]))
    ):
        raise RestoreRefused(MEMBER_UNSAFE.format(path=path, name=name, reason="unexpected path"))
    if name in found:
        raise RestoreRefused(MEMBER_DUPLICATE.format(path=path, name=name))


def _parse_manifest(path: Path, raw: bytes) -> Manifest:
    """Return the manifest of an archive; refuse one this version cannot restore."""
    try:
        data = json.loads(raw.decode("utf-8"))
        fmt, version = data.get("format"), data.get("format_version")
        if fmt != FORMAT_NAME or not isinstance(version, int) or version > FORMAT_VERSION:
            raise RestoreRefused(FORMAT_UNSUPPORTED.format(path=path, format=fmt, version=version))
        scope = BackupScope.from_json(data["scope"])
        members = dict(data["members"])
        tables = []
        for entry in data["tables"]:
            label = entry["label"]
            try:
                model = apps.get_model(label)
            except (LookupError, ValueError):
                raise RestoreRefused(TABLE_UNKNOWN.format(path=path, label=label)) from None
            kind = TableKind(entry["kind"])
            if label in CATALOGUE_LABELS or (kind == TableKind.AUDIT) != (label == AUDIT_LABEL):
                raise RestoreRefused(TABLE_NOT_RESTORABLE.format(path=path, label=label))
            if entry["member"] not in members:
                raise RestoreRefused(MEMBER_MISSING.format(path=path, name=entry["member"]))
            tables.append(
                ManifestTable(
                    label,
                    kind,
                    entry["member"],
                    int(entry["rows"]),
                    model,
                    bool(entry.get("complete", True)),
                    tuple(str(pk) for pk in entry.get("deleted", ())),
                )
            )
    except RestoreRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise RestoreRefused(MANIFEST_INVALID.format(path=path, error=error)) from error
    return Manifest(
        data=data,
        scope=scope,
        tables=tuple(tables),
        members=members,
        sha256=hashlib.sha256(raw).hexdigest(),
    )
