"""Backup archives of the back office: write one, check one, restore one exactly.

The `backup`, `restore` and `prune_backups` commands are thin shells around this
module; it is the service layer of the Backup and Recovery records.

Archive format (FORMAT_VERSION 1): one gzip-compressed tar file, members in this order:

- ``data/<app_label>.<model_name>.jsonl`` — the rows of one table, one JSON object
  per line, written by Django's ``jsonl`` serializer with natural keys off (original
  primary keys), except that timestamps keep their microseconds (Django's encoder
  cuts them to milliseconds, which would change every restored row and break the
  audit hash chain). Users and groups name their groups and permissions by natural
  key: permission ids are assigned per database by ``migrate``.
- ``files/<storage name>`` — the bytes of every artefact file the rows reference.
- ``manifest.json`` — last: format and app version, scope, creation time, the tables
  in restore order with their row counts, and the SHA-256 and size of every member.

Next to the archive, ``<archive>.sha256`` holds the SHA-256 of the whole archive in
``sha256sum`` format; the Backup row keeps the same checksum.

Restore checks the archive checksum and every member hash before it writes
anything, plans the restore read-only (refusing conflicts), then writes every row in
one transaction with raw saves (original ids and timestamps, no ``auto_now``, no
history rows, no services). See README, section "Maintenance commands" for the rules.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import logging
import os
import sys
import tarfile
import tempfile
import tomllib
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePosixPath
from typing import Any

import django
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import serializers
from django.core.files import File
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import Q
from django.utils import timezone
from simple_history.utils import get_history_model_for_model
from tqdm import tqdm

from records.exceptions import Conflict
from records.models import is_history_tracked
from records.scoping import ENGAGEMENT_SCOPES, OUTSIDE_ENGAGEMENTS, engagement_model
from records.services import save_with_history

from .chain import GENESIS_HASH
from .choices import AuditAction, BackupStatus, BackupType, Severity
from .models import AuditChainHead, AuditLog, Backup, Recovery
from .services import audit_record

logger = logging.getLogger(__name__)

FORMAT_NAME = "ai-actuary-backoffice-backup"
FORMAT_VERSION = 1
APP_DISTRIBUTION = "ai-actuary-backoffice"
ARCHIVE_SUFFIX = ".tar.gz"
CHECKSUM_SUFFIX = ".sha256"
PART_SUFFIX = ".part"
MANIFEST_MEMBER = "manifest.json"
DATA_PREFIX = "data/"
FILES_PREFIX = "files/"
# Rows fetched per database round trip while writing; rows compared and written per batch
# while restoring. Both keep memory flat whatever the size of a table.
ROW_CHUNK_SIZE = 2000
RESTORE_BATCH_SIZE = 500
# Bytes copied at a time between storage, archive and temporary files.
COPY_CHUNK_SIZE = 256 * 1024
# A manifest lists every member; even a million files stay far below this.
MAX_MANIFEST_SIZE = 512 * 1024 * 1024
DEFAULT_KEEP_DAYS = 30
# How many conflicts a refusal names before it only counts the rest.
MAX_LISTED_PROBLEMS = 20

BACKUP_SOURCE = "backup"
SNAPSHOT_SOURCE = "restore (pre-recovery snapshot)"

# Rows that describe this machine's archives, not the business records: a backup never
# holds them and a restore never writes them (see README, section "Maintenance commands").
CATALOGUE_LABELS = frozenset(
    {
        "audit.backup",
        "audit.historicalbackup",
        "audit.recovery",
        "audit.historicalrecovery",
        "audit.auditchainhead",
    }
)
AUDIT_LABEL = "audit.auditlog"


# How each project model reaches one engagement (rows of every state, soft-deleted ones
# included), and the models an engagement backup leaves out with the reason: each app
# registers its models in its AppConfig.ready() (records.scoping). A test checks that
# every project model is in one of them.
ENGAGEMENT_SCOPE = ENGAGEMENT_SCOPES
NOT_ENGAGEMENT_SCOPED = OUTSIDE_ENGAGEMENTS

NO_SUCH_ENGAGEMENT = "No engagement with id {engagement_id} (deleted ones included)."
ARCHIVE_WRITE_FAILED = "Backup “{backup}” failed: {error}"
BACKUP_NOT_DUE = "Cannot expire backup “{backup}”: it is kept until {expires_at}."
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
ROW_OUT_OF_PLACE = "Member “{member}” holds a row of “{label}”; it should hold “{expected}”."
ROW_UNREADABLE = "A row of “{label}” cannot be read: {error}"
ROW_CONFLICT = "{label} {pk}: exists with other values ({fields})"
USER_CLASH = (
    "auth.user {pk}: the archive names user “{archived}”, this database has {found} "
    "(the archive comes from another database)"
)
USERNAME_TAKEN = "auth.user {pk}: username “{username}” belongs to user {other} here"
AUDIT_ENTRY_DIFFERS = (
    "audit.auditlog {pk} (sequence {sequence}): exists with other values; the audit log "
    "is never overwritten"
)
AUDIT_ENTRY_UNLINKED = (
    "audit.auditlog {pk} (sequence {sequence}): missing here and does not link to the "
    "chain head (sequence {head_sequence}); an audit entry is never re-linked or fabricated "
    "(restore the full backup into an empty database to restore the whole chain)"
)
AUDIT_ENTRY_CHANGED = (
    "audit.auditlog {pk} (sequence {sequence}): its content does not match its hash"
)
FILE_CONFLICT = "file {name}: exists in storage with other bytes (SHA-256 {found})"
FILE_NAME_UNSAFE = "file “{name}”: not a safe storage name"
RESTORE_REFUSED = "Restore refused, nothing was changed:\n  {problems}"
MORE_PROBLEMS = "… and {count} more"
RESTORE_FAILED = "Restore of {archive} failed and was rolled back: {error}"
SNAPSHOT_FAILED = "the pre-recovery snapshot could not be written: {error}"
FILE_NAME_CHANGED = "storage saved “{name}” as “{saved}”"
ARCHIVE_CHANGED = (
    "member “{name}” changed while it was being restored (SHA-256 {actual}, expected {expected})"
)


class BackupError(Conflict):
    """A backup or restore that could not be done."""

    code = "backup_error"


class BackupFailed(BackupError):
    """Writing a backup archive failed; the Backup row is failed and no archive is left."""

    code = "backup_failed"


class RestoreRefused(BackupError):
    """A restore refused before any write: unreadable or corrupted archive, or conflicts."""

    code = "restore_refused"


class RestoreFailed(BackupError):
    """A restore that failed while writing: rolled back, its Recovery row failed."""

    code = "restore_failed"


# --- Scope and tables ---------------------------------------------------------------------


@dataclass(frozen=True)
class BackupScope:
    """What a backup holds: everything (`engagement_id` None) or one engagement."""

    engagement_id: uuid.UUID | None = None

    @property
    def kind(self) -> str:
        """Return "engagement" or "full"."""
        return "full" if self.engagement_id is None else "engagement"

    @property
    def backup_type(self) -> str:
        """Return the Backup.backup_type of a backup of this scope."""
        return BackupType.FULL if self.engagement_id is None else BackupType.ENGAGEMENT

    def as_json(self) -> dict:
        """Return the scope as the manifest records it."""
        engagement_id = None if self.engagement_id is None else str(self.engagement_id)
        return {"type": self.kind, "engagement_id": engagement_id}

    @classmethod
    def from_json(cls, data: dict) -> BackupScope:
        """Return the scope a manifest records."""
        if data.get("type") == "full":
            return cls()
        if data.get("type") == "engagement":
            return cls(engagement_id=uuid.UUID(str(data["engagement_id"])))
        raise ValueError(f"unknown scope {data!r}")


class TableKind(enum.StrEnum):
    """The role a table plays in a backup (it decides how restore treats its rows)."""

    GROUPS = "groups"
    USERS = "users"
    RECORDS = "records"
    HISTORY = "history"
    AUDIT = "audit"


@dataclass(frozen=True)
class Table:
    """One table of a backup: its model, its role and, when writing, the rows in scope."""

    model: type[models.Model]
    kind: TableKind
    queryset: models.QuerySet | None = None

    @property
    def label(self) -> str:
        """Return "app_label.model_name"."""
        return self.model._meta.label_lower

    @property
    def member(self) -> str:
        """Return the archive member that holds the rows."""
        return f"{DATA_PREFIX}{self.label}.jsonl"


def _project_app_configs():
    """Return the apps of this project (top-level packages next to manage.py)."""
    base = Path(settings.BASE_DIR).resolve()
    return [config for config in apps.get_app_configs() if Path(config.path).parent == base]


def record_models() -> list[type[models.Model]]:
    """Return the project's models that hold business records, parents before children.

    History models, the audit log (archived as its own kind) and the backup catalogue
    are left out. Found at run time, so a model added later is backed up too.
    """
    candidates, history = [], set()
    for config in _project_app_configs():
        for model in config.get_models():
            if model._meta.proxy or not model._meta.managed:
                continue
            candidates.append(model)
            if is_history_tracked(model):
                history.add(get_history_model_for_model(model))
    records = [
        model
        for model in candidates
        if model not in history
        and model._meta.label_lower not in CATALOGUE_LABELS
        and model._meta.label_lower != AUDIT_LABEL
    ]
    return _parents_first(records)


def _parents_first(record_list: list[type[models.Model]]) -> list[type[models.Model]]:
    """Order models so that the targets of foreign keys come first (ties by label)."""
    by_label = {model._meta.label_lower: model for model in record_list}
    waiting = {
        label: {
            field.related_model._meta.label_lower
            for field in model._meta.concrete_fields
            if field.is_relation
            and field.related_model is not model
            and field.related_model._meta.label_lower in by_label
        }
        for label, model in by_label.items()
    }
    ordered = []
    while waiting:
        # A cycle cannot block: foreign keys are checked at commit, so any order loads.
        ready = sorted(label for label, needs in waiting.items() if not needs) or [min(waiting)]
        for label in ready:
            ordered.append(by_label[label])
            del waiting[label]
        for needs in waiting.values():
            needs.difference_update(ready)
    return ordered


def scope_tables(scope: BackupScope, using: str = DEFAULT_DB_ALIAS) -> list[Table]:
    """Return the tables of a backup in restore order, each with its rows in scope."""
    user_model = get_user_model()
    engagement_id = scope.engagement_id
    records, histories = [], []
    for model in record_models():
        rows = model._base_manager.using(using).order_by("pk")
        if engagement_id is not None:
            scope = ENGAGEMENT_SCOPE.get(model._meta.label_lower)
            if scope is None:
                continue
            rows = rows.filter(scope.rows(engagement_id))
        records.append(Table(model, TableKind.RECORDS, rows))
        if is_history_tracked(model):
            history_model = get_history_model_for_model(model)
            history_rows = history_model._base_manager.using(using).order_by("pk")
            if engagement_id is not None:
                history_rows = history_rows.filter(
                    _history_scope(model, history_model, rows, engagement_id)
                )
            histories.append(Table(history_model, TableKind.HISTORY, history_rows))
    audit_rows = AuditLog.objects.using(using).order_by("sequence")
    if engagement_id is not None:
        audit_rows = audit_rows.filter(engagement_id=engagement_id)
    scoped = [*records, *histories, Table(AuditLog, TableKind.AUDIT, audit_rows)]

    if engagement_id is None:
        users = user_model._base_manager.using(using).order_by("pk")
        groups = Group.objects.using(using).order_by("pk")
        return [
            Table(Group, TableKind.GROUPS, groups),
            Table(user_model, TableKind.USERS, users),
            *scoped,
        ]
    # An engagement backup carries the users its rows name, so their foreign keys can
    # be restored into a database that lacks them; accounts stay out of it otherwise.
    user_ids = _referenced_user_ids(scoped, user_model)
    users = user_model._base_manager.using(using).filter(pk__in=sorted(user_ids)).order_by("pk")
    return [Table(user_model, TableKind.USERS, users), *scoped]


def _history_scope(model, history_model, rows: models.QuerySet, engagement_id) -> Q:
    """Return the history rows of an engagement's rows, deleted rows' history included."""
    scope = Q(id__in=rows.values("pk"))
    extra = ENGAGEMENT_SCOPE[model._meta.label_lower].history
    if extra is not None:
        return scope | extra(engagement_id)
    if any(f.name == "engagement" for f in history_model._meta.concrete_fields):
        return scope | Q(engagement_id=engagement_id)
    return scope


def _user_fields(model, user_model) -> list[models.Field]:
    return [
        f for f in model._meta.concrete_fields if f.is_relation and f.related_model is user_model
    ]


def _referenced_user_ids(tables: Iterable[Table], user_model) -> set:
    """Return the ids of every user a row of these tables points to."""
    ids = set()
    for table in tables:
        for user_field in _user_fields(table.model, user_model):
            values = (
                table.queryset.exclude(**{f"{user_field.attname}__isnull": True})
                .order_by()
                .values_list(user_field.attname, flat=True)
                .distinct()
            )
            ids.update(values)
    return ids


def serializer_options(table: Table, scope: BackupScope) -> dict:
    """Return the serializer options of a table (the same for writing and comparing)."""
    if table.kind == TableKind.GROUPS:
        return {"use_natural_foreign_keys": True}
    if table.kind == TableKind.USERS:
        if scope.engagement_id is None:
            # Groups and permissions by natural key: permission ids differ per database.
            return {"use_natural_foreign_keys": True}
        # An engagement backup restores missing accounts, never their groups or rights.
        return {"fields": [f.attname for f in table.model._meta.local_fields if not f.primary_key]}
    return {}


def _file_fields(model) -> list[models.FileField]:
    return [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]


# --- Serialization --------------------------------------------------------------------------


class ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder that keeps the microseconds of timestamps and times.

    Django's encoder cuts them to milliseconds (ECMA-262); a restore must give back
    the very values, and the audit hash chain covers them.
    """

    def default(self, o):
        """Encode datetimes and times in full ISO 8601."""
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def dump_rows(rows: Iterable[models.Model], stream, options: dict) -> None:
    """Write rows to a text stream as JSON lines (original keys, exact timestamps)."""
    serializers.serialize("jsonl", rows, stream=stream, cls=ExactJSONEncoder, **options)


def rows_as_records(rows: Iterable[models.Model], options: dict) -> list[dict]:
    """Return rows as the JSON records an archive holds (to compare with archived ones)."""
    lines = serializers.serialize("jsonl", rows, cls=ExactJSONEncoder, **options)
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


# --- Streams and hashes ---------------------------------------------------------------------


class HashingReader:
    """A binary reader that computes the SHA-256 and size of what passes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Read from the wrapped file, hashing the bytes."""
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left."""
        while self.read(COPY_CHUNK_SIZE):
            pass

    def hexdigest(self) -> str:
        """Return the SHA-256 of the bytes read so far."""
        return self.digest.hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
    """Return the SHA-256 and size of a file, read in chunks."""
    with path.open("rb") as handle:
        reader = HashingReader(handle)
        reader.drain()
    return reader.hexdigest(), reader.size


def _lines(reader) -> Iterator[str]:
    """Yield the text lines of a binary stream, read in chunks (a line may be long)."""
    pending = b""
    while chunk := reader.read(COPY_CHUNK_SIZE):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line.decode("utf-8")
    if pending.strip():
        yield pending.decode("utf-8")


class _Counted:
    """An iterable that counts what it yields and reports it to a progress bar."""

    def __init__(self, iterable, progress):
        self.iterable = iterable
        self.progress = progress
        self.count = 0

    def __iter__(self):
        for item in self.iterable:
            self.count += 1
            self.progress.update(1)
            yield item


class NoProgress:
    """A progress bar that shows nothing (the default)."""

    def __init__(self, *args, **kwargs):
        self.disable = True

    def update(self, n=1):
        """Do nothing."""

    def close(self):
        """Do nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# A callable (description, total) -> a tqdm-like bar; commands pass one that draws on stderr.
ProgressFactory = Callable[[str, int | None], Any]


def terminal_progress(*, disabled: bool = False) -> ProgressFactory:
    """Return a progress-bar factory drawing tqdm bars on stderr, only on a terminal."""
    hidden = disabled or not sys.stderr.isatty()

    def progress(description: str, total: int | None):
        return tqdm(desc=description, total=total, unit=" items", file=sys.stderr, disable=hidden)

    return progress


def app_version() -> str:
    """Return the version of the back office (installed metadata, else pyproject.toml)."""
    try:
        return importlib_metadata.version(APP_DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        pass
    try:
        with (Path(settings.BASE_DIR) / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def safe_storage_name(name: str) -> bool:
    """Return whether a storage name is relative and stays inside the storage."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


# --- Writing an archive ---------------------------------------------------------------------


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
) -> ArchiveSummary:
    """Write the archive of `scope` to `path` (and its .sha256 file); return what it holds.

    Rows are streamed table by table from one consistent read of the database into a
    temporary file, then into the archive; files are streamed from storage in chunks.
    Nothing is left at `path` if it fails.
    """
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
            tables = scope_tables(scope, using)
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
                        }
                    )
                for name, (storage, expected_hash) in file_names:
                    stored = _add_file(tar, storage, name, expected_hash, mtime, problems)
                    if stored is not None:
                        members[FILES_PREFIX + name] = stored
                        files_json[name] = stored
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
                "tables": tables_json,
                "counts": counts,
                "files": files_json,
                "problems": problems,
                "members": members,
            }
            encoded = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
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
    )


class _BytesReader:
    """A minimal reader over bytes (tarfile reads members with read(n))."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk


def _archived_file_names(tables: list[Table]) -> list[tuple[str, tuple[Any, str]]]:
    """Return (storage name, (storage, expected SHA-256)) of every file the rows reference.

    Identical bytes shared by several artefacts are archived once.
    """
    files: dict[str, tuple[Any, str]] = {}
    for table in tables:
        if table.kind != TableKind.RECORDS:
            continue
        has_hash = any(f.name == "content_hash" for f in table.model._meta.concrete_fields)
        for file_field in _file_fields(table.model):
            columns = (file_field.attname, "content_hash") if has_hash else (file_field.attname,)
            rows = (
                table.queryset.exclude(**{file_field.attname: ""}).order_by().values_list(*columns)
            )
            for name, *expected in rows.distinct():
                files.setdefault(name, (file_field.storage, expected[0] if expected else ""))
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


def checksum_path(archive: Path) -> Path:
    """Return the path of an archive's .sha256 file."""
    return archive.with_name(archive.name + CHECKSUM_SUFFIX)


def archive_file_name(scope: BackupScope, backup: Backup, when: datetime.datetime) -> str:
    """Return the file name of a new archive: scope, UTC time, backup id."""
    stamp = when.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    what = "full" if scope.engagement_id is None else f"engagement-{scope.engagement_id}"
    return f"backup-{what}-{stamp}-{str(backup.pk)[:8]}{ARCHIVE_SUFFIX}"


# --- Backup records -------------------------------------------------------------------------


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
) -> Backup:
    """Write a backup archive of `scope` and record it as a completed Backup row.

    The row moves pending → in_progress → completed (or failed) through its lifecycle
    methods, with history; on completion it holds the size, record count, tables,
    SHA-256 of the archive and expires_at (`keep_days` from now; 0 or None: never).
    A data_export audit event is recorded unless `record_event` is false (restore
    records its snapshot's event itself, after the restored audit chain). Raises
    BackupFailed (the row failed, no archive left) if writing fails.
    """
    engagement = None
    if scope.engagement_id is not None:
        engagement = (
            engagement_model().all_objects.using(using).filter(pk=scope.engagement_id).first()
        )
    now = timezone.now()
    backup = Backup(
        backup_type=scope.backup_type,
        engagement=engagement,
        description=description,
        expires_at=now + datetime.timedelta(days=keep_days) if keep_days else None,
        metadata={"scope": scope.as_json(), **(metadata or {})},
    )
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
            scope=scope, path=path, backup_id=backup.pk, progress=progress, using=using
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
    with transaction.atomic():
        backup = Backup.objects.select_for_update().get(pk=backup.pk)
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


# --- Reading and checking an archive -------------------------------------------------------


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


@dataclass(frozen=True)
class Manifest:
    """The manifest of a checked archive."""

    data: dict
    scope: BackupScope
    tables: tuple[ManifestTable, ...]
    members: dict[str, dict]

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
            raise RestoreRefused(BACKUP_NOT_RESTORABLE.format(backup=backup, status=backup.status))
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
            tables.append(ManifestTable(label, kind, entry["member"], int(entry["rows"]), model))
    except RestoreRefused:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise RestoreRefused(MANIFEST_INVALID.format(path=path, error=error)) from error
    return Manifest(data=data, scope=scope, tables=tuple(tables), members=members)


# --- Planning and writing a restore --------------------------------------------------------


class RestoreMode(enum.StrEnum):
    """What a restore does with rows that exist with other values."""

    REFUSE = "refuse"  # the default: refuse the whole restore
    MERGE = "merge"  # keep the database's row, add only missing rows
    OVERWRITE = "overwrite"  # replace the row with the archived one


@dataclass
class Tally:
    """Rows (or files) of one table: added, unchanged, conflicting (replaced or kept)."""

    new: int = 0
    unchanged: int = 0
    conflicting: int = 0

    def as_json(self, mode: RestoreMode) -> dict:
        """Return the counts as the Recovery row records them."""
        data = {"new": self.new, "unchanged": self.unchanged}
        if mode == RestoreMode.OVERWRITE:
            data["replaced"] = self.conflicting
        elif mode == RestoreMode.MERGE:
            data["kept"] = self.conflicting
        else:
            data["conflicting"] = self.conflicting
        return data


@dataclass
class RestorePlan:
    """What a restore does (planned read-only, or done): counts and refusals."""

    mode: RestoreMode
    tables: dict[str, Tally] = field(default_factory=dict)
    files: Tally = field(default_factory=Tally)
    refusals: list[str] = field(default_factory=list)
    refusal_count: int = 0
    warnings: list[str] = field(default_factory=list)

    def refuse(self, message: str) -> None:
        """Note a reason to refuse the restore (the first ones are kept to show)."""
        self.refusal_count += 1
        if len(self.refusals) < MAX_LISTED_PROBLEMS:
            self.refusals.append(message)

    @property
    def rows_written(self) -> int:
        """Return the rows the restore adds or replaces."""
        return sum(self._written(tally) for tally in self.tables.values())

    @property
    def files_written(self) -> int:
        """Return the files the restore writes to storage."""
        return self._written(self.files)

    @property
    def tables_written(self) -> list[str]:
        """Return the tables the restore adds rows to or replaces rows in."""
        return [label for label, tally in self.tables.items() if self._written(tally)]

    def _written(self, tally: Tally) -> int:
        return tally.new + (tally.conflicting if self.mode == RestoreMode.OVERWRITE else 0)

    def refusal_message(self) -> str:
        """Return the message of a refused restore, listing the first problems."""
        problems = list(self.refusals)
        if self.refusal_count > len(problems):
            problems.append(MORE_PROBLEMS.format(count=self.refusal_count - len(problems)))
        return RESTORE_REFUSED.format(problems="\n  ".join(problems))


class _RestoreWalk:
    """One pass over an archive's members, in order: plan (read-only) or write.

    The same code classifies every row in both passes, so what the write pass does
    is what the plan showed (re-checked inside the transaction, under locks).
    """

    def __init__(self, *, source, manifest, mode, write, using, progress):
        self.source = source
        self.manifest = manifest
        self.mode = mode
        self.write = write
        self.using = using
        self.progress = progress
        self.plan = RestorePlan(mode=mode)
        self.tables = {table.member: table for table in manifest.tables}
        self.user_model = get_user_model()
        self.reference_users = manifest.scope.engagement_id is not None
        self.needed_files: dict[str, Any] = {}
        self.written_files: list[Any] = []
        self.restored_models: set[type[models.Model]] = set()
        self.head: tuple[int, str] | None = None

    def run(self) -> RestorePlan:
        """Walk the archive; in the write pass raise RestoreFailed at the first problem."""
        total = self.manifest.total_rows + len(self.manifest.file_names)
        with (
            tarfile.open(self.source.path, "r|gz") as tar,
            self.progress("Restoring" if self.write else "Planning", total) as bar,
        ):
            for member in tar:
                if member.name == MANIFEST_MEMBER:
                    continue
                expected = self.manifest.members.get(member.name)
                if expected is None:
                    self._fatal(MEMBER_UNLISTED.format(path=self.source.path, name=member.name))
                reader = HashingReader(tar.extractfile(member))
                if member.name.startswith(DATA_PREFIX):
                    table = self.tables.get(member.name)
                    if table is None:
                        self._fatal(MEMBER_UNLISTED.format(path=self.source.path, name=member.name))
                    self._table(table, reader, bar)
                else:
                    self._file(member.name[len(FILES_PREFIX) :], reader, expected)
                    bar.update(1)
                reader.drain()
                if reader.hexdigest() != expected["sha256"]:
                    # The archive changed since it was checked: nothing of it is trusted.
                    self._fatal(
                        ARCHIVE_CHANGED.format(
                            name=member.name, actual=reader.hexdigest(), expected=expected["sha256"]
                        )
                    )
        for name in sorted(set(self.needed_files) - self.manifest.file_names):
            storage = self.needed_files[name]
            if not storage.exists(name):
                self.plan.warnings.append(
                    f"file {name}: neither in the archive nor in storage (it was missing when "
                    "the backup was written)"
                )
        return self.plan

    # Rows -----------------------------------------------------------------------------

    def _table(self, table: ManifestTable, reader, bar) -> None:
        tally = self.plan.tables.setdefault(table.label, Tally())
        batch = []
        for line in _lines(reader):
            try:
                record = json.loads(line)
            except ValueError as error:
                self._fatal(ROW_UNREADABLE.format(label=table.label, error=error))
            if record.get("model") != table.label:
                self._fatal(
                    ROW_OUT_OF_PLACE.format(
                        member=table.member, label=record.get("model"), expected=table.label
                    )
                )
            batch.append(record)
            if len(batch) >= RESTORE_BATCH_SIZE:
                self._batch(table, batch, tally)
                bar.update(len(batch))
                batch = []
        if batch:
            self._batch(table, batch, tally)
            bar.update(len(batch))

    def _batch(self, table: ManifestTable, records: list[dict], tally: Tally) -> None:
        """Classify a batch of archived rows against the database and (write pass) apply it."""
        model = table.model
        options = self._compare_options(table)
        if table.kind == TableKind.GROUPS:
            records = self._groups_matched_by_name(records)
        pks = [model._meta.pk.to_python(record["pk"]) for record in records]
        current_rows = model._base_manager.using(self.using).filter(pk__in=pks)
        if self.write and self.mode == RestoreMode.OVERWRITE and table.kind != TableKind.AUDIT:
            current_rows = current_rows.select_for_update()
        current = {row["pk"]: row for row in rows_as_records(current_rows, options)}
        unordered = {f.name for f in model._meta.many_to_many}
        to_insert, to_replace = [], []
        for record in records:
            existing = current.get(record["pk"])
            if table.kind == TableKind.USERS and not self._user_fits(record, existing):
                continue
            # Whether the archived row is what the table holds once the restore is done.
            archived_row_stays = True
            if existing is None:
                to_insert.append(record)
                tally.new += 1
            elif table.kind == TableKind.USERS and self.reference_users:
                # Shared accounts: an engagement restore never changes one that exists.
                tally.unchanged += 1
            elif not (differing := _differing_fields(record, existing, unordered)):
                tally.unchanged += 1
            elif table.kind == TableKind.AUDIT:
                sequence = record["fields"].get("sequence")
                self._problem(AUDIT_ENTRY_DIFFERS.format(pk=record["pk"], sequence=sequence))
                archived_row_stays = False
            else:
                tally.conflicting += 1
                if self.mode == RestoreMode.OVERWRITE:
                    to_replace.append(record)
                else:
                    archived_row_stays = False
                    if self.mode == RestoreMode.REFUSE:
                        fields = ", ".join(differing)
                        self._problem(
                            ROW_CONFLICT.format(label=table.label, pk=record["pk"], fields=fields)
                        )
            if archived_row_stays:
                self._note_files(table, record)
        if table.kind == TableKind.AUDIT:
            self._audit(to_insert)
            return
        self._save(table, to_insert, insert=True)
        self._save(table, to_replace, insert=False)

    def _compare_options(self, table: ManifestTable) -> dict:
        return serializer_options(Table(table.model, table.kind), self.manifest.scope)

    def _user_fits(self, record: dict, existing: dict | None) -> bool:
        """Return whether an archived user is the same account here (or free to restore)."""
        username_field = self.user_model.USERNAME_FIELD
        username = record["fields"].get(username_field)
        if existing is not None:
            found = existing["fields"].get(username_field)
            if found != username:
                self._problem(USER_CLASH.format(pk=record["pk"], archived=username, found=found))
                return False
            return True
        other = (
            self.user_model._base_manager.using(self.using)
            .filter(**{username_field: username})
            .values_list("pk", flat=True)
            .first()
        )
        if other is not None:
            self._problem(USERNAME_TAKEN.format(pk=record["pk"], username=username, other=other))
            return False
        return True

    def _note_files(self, table: ManifestTable, record: dict) -> None:
        """Remember the files of a row that will be in the database after the restore."""
        if table.kind != TableKind.RECORDS:
            return
        for file_field in _file_fields(table.model):
            name = record["fields"].get(file_field.name)
            if name:
                self.needed_files.setdefault(name, file_field.storage)

    def _groups_matched_by_name(self, records: list[dict]) -> list[dict]:
        """Return the archived groups with the ids their names have here, where they exist.

        A group is known by its name (its natural key; users name their groups by it):
        one that `migrate` made, such as Certifiers, may have another id in this
        database than in the archived one.
        """
        names = [record["fields"]["name"] for record in records]
        here = dict(
            Group.objects.using(self.using).filter(name__in=names).values_list("name", "pk")
        )
        return [
            {**record, "pk": here.get(record["fields"]["name"], record["pk"])} for record in records
        ]

    def _deserialize(self, records: list[dict]) -> list | None:
        """Return the rows as model instances; None (plan pass) if one cannot be read."""
        try:
            return list(
                serializers.deserialize(
                    # The plan pass runs before groups are restored: a user's groups may
                    # not exist yet.
                    "python",
                    records,
                    using=self.using,
                    handle_forward_references=not self.write,
                )
            )
        except DeserializationError as error:
            self._problem(ROW_UNREADABLE.format(label=records[0]["model"], error=error))
            return None

    def _save(self, table: ManifestTable, records: list[dict], *, insert: bool) -> None:
        if not records:
            return
        objects = self._deserialize(records)
        if objects is None or not self.write:
            return
        for obj in objects:
            # Raw save: original values as they are (no auto_now), no history row, no services.
            obj.save(using=self.using, force_insert=insert)
        self.restored_models.add(table.model)

    def _audit(self, records: list[dict]) -> None:
        """Check (plan) or append (write) audit entries missing here, in chain order."""
        if not records:
            return
        if self.head is None:
            self.head = _chain_head(self.using)
        deserialized = self._deserialize(records)
        if deserialized is None:
            return
        objects = [obj.object for obj in deserialized]
        for entry in objects:
            sequence, head_hash = self.head
            if entry.sequence != sequence + 1 or entry.previous_hash != head_hash:
                self._problem(
                    AUDIT_ENTRY_UNLINKED.format(
                        pk=entry.pk, sequence=entry.sequence, head_sequence=sequence
                    )
                )
                return
            if entry.compute_hash() != entry.entry_hash:
                self._problem(AUDIT_ENTRY_CHANGED.format(pk=entry.pk, sequence=entry.sequence))
                return
            self.head = (entry.sequence, entry.entry_hash)
        if self.write:
            AuditLog.objects.using(self.using).append_restored(objects)
            self.restored_models.add(AuditLog)

    def _problem(self, message: str) -> None:
        """Refuse: at once while writing (rolls back), after the plan pass otherwise."""
        if self.write:
            raise RestoreFailed(message)
        self.plan.refuse(message)

    def _fatal(self, message: str):
        """Stop the pass: the archive cannot be read as its manifest says."""
        if self.write:
            raise RestoreFailed(message)
        raise RestoreRefused(message)

    # Files ----------------------------------------------------------------------------

    def _file(self, name: str, reader: HashingReader, expected: dict) -> None:
        storage = self.needed_files.get(name)
        if storage is None:
            # No restored row points to these bytes: leave storage alone.
            return
        if storage.exists(name):
            with storage.open(name, "rb") as handle:
                found = HashingReader(handle)
                found.drain()
            if found.hexdigest() == expected["sha256"]:
                self.plan.files.unchanged += 1
                return
            self.plan.files.conflicting += 1
            if self.mode == RestoreMode.REFUSE:
                self._problem(FILE_CONFLICT.format(name=name, found=found.hexdigest()))
                return
            if self.mode == RestoreMode.MERGE:
                return
            replace = True
        else:
            self.plan.files.new += 1
            replace = False
        if self.write:
            self._write_file(storage, name, reader, expected, replace=replace)

    def _write_file(self, storage, name: str, reader, expected: dict, *, replace: bool) -> None:
        """Copy a member to a temporary file, check its hash, then store it under its name."""
        with tempfile.TemporaryFile() as spool:
            while chunk := reader.read(COPY_CHUNK_SIZE):
                spool.write(chunk)
            if reader.hexdigest() != expected["sha256"]:
                raise RestoreFailed(
                    ARCHIVE_CHANGED.format(
                        name=FILES_PREFIX + name,
                        actual=reader.hexdigest(),
                        expected=expected["sha256"],
                    )
                )
            spool.seek(0)
            if replace:
                # Bytes at a content-addressed name that differ from it are damaged.
                storage.delete(name)
            saved = storage.save(name, File(spool, name=PurePosixPath(name).name))
            self.written_files.append((storage, saved))
            if saved != name:
                raise RestoreFailed(FILE_NAME_CHANGED.format(name=name, saved=saved))

    def finish(self) -> None:
        """Check every foreign key and move integer-key sequences past the restored ids."""
        connection = connections[self.using]
        connection.check_constraints(
            table_names=sorted({model._meta.db_table for model in self.restored_models})
        )
        sequenced = [
            model
            for model in self.restored_models
            if isinstance(
                model._meta.pk, models.AutoField | models.BigAutoField | models.SmallAutoField
            )
        ]
        statements = connection.ops.sequence_reset_sql(no_style(), sequenced)
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)

    def remove_written_files(self) -> None:
        """Remove the files this pass stored (the restore failed)."""
        for storage, name in reversed(self.written_files):
            try:
                storage.delete(name)
            except Exception:
                logger.exception("Could not remove %s after a failed restore", name)


def _differing_fields(archived: dict, current: dict, unordered: set[str]) -> list[str]:
    """Return the fields whose archived value differs from the database's (archive's fields).

    Fields the database has and the archive lacks (added since) are not compared;
    `unordered` names the many-to-many fields, whose lists come in no particular order.
    """
    differing = []
    for name, value in archived["fields"].items():
        found = current["fields"].get(name)
        if name in unordered and isinstance(value, list) and isinstance(found, list):
            value, found = _sorted_json(value), _sorted_json(found)
        if value != found:
            differing.append(name)
    return differing


def _sorted_json(values: list) -> list:
    return sorted(values, key=lambda value: json.dumps(value, sort_keys=True))


def _chain_head(using: str) -> tuple[int, str]:
    """Return the current chain head (sequence, hash), as the next append would see it."""
    head = (
        AuditChainHead.objects.using(using)
        .filter(pk=AuditChainHead.SINGLETON_ID)
        .values_list("sequence", "entry_hash")
        .first()
    )
    if head is not None:
        return head
    last = (
        AuditLog.objects.using(using)
        .order_by("-sequence")
        .values_list("sequence", "entry_hash")
        .first()
    )
    return last or (0, GENESIS_HASH)


@dataclass
class RestoreResult:
    """What a restore did, or (dry run) would do."""

    source: ArchiveSource
    manifest: Manifest
    plan: RestorePlan
    recovery: Recovery | None = None
    snapshot: Backup | None = None
    dry_run: bool = False

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

    1. Check the archive's SHA-256 and every member hash (RestoreRefused, nothing written).
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
    manifest = verify_archive(archive, progress=progress)
    try:
        plan = _RestoreWalk(
            source=archive,
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
    result = RestoreResult(source=archive, manifest=manifest, plan=plan, dry_run=dry_run)
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
        metadata=_recovery_metadata(archive, manifest),
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
        source=archive, manifest=manifest, mode=mode, write=True, using=using, progress=progress
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
        backup_type=scope.backup_type,
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
