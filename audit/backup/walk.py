"""The restore's pass over an archive: plan it read-only, then write it exactly as planned.

The same code classifies every row in both passes, so what the write pass does is
what the plan showed (re-checked inside the transaction, under locks).
"""

from __future__ import annotations

import enum
import json
import logging
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import serializers
from django.core.files import File
from django.core.management.color import no_style
from django.core.serializers.base import DeserializationError
from django.db import connections, models

from ..chain import GENESIS_HASH
from ..choices import BackupType
from ..models import AuditChainHead, AuditLog
from .archive import (
    COPY_CHUNK_SIZE,
    DATA_PREFIX,
    FILES_PREFIX,
    MANIFEST_MEMBER,
    RESTORE_BATCH_SIZE,
    HashingReader,
    _lines,
    rows_as_records,
)
from .errors import RestoreFailed, RestoreRefused
from .manifest import MEMBER_UNLISTED, ManifestTable
from .scope import Table, TableKind, _file_fields, serializer_options

logger = logging.getLogger(__name__)


# How many conflicts a refusal names before it only counts the rest.
MAX_LISTED_PROBLEMS = 20

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
FILE_FIELD_UNKNOWN = "file {name}: the archive names field “{field}”, which this back office lacks"
FILE_NOT_AS_RECORDED = (
    "file {name}: the archived bytes (SHA-256 {actual}) are not those its record names "
    "({recorded}); they were archived as found"
)
RESTORE_REFUSED = "Restore refused, nothing was changed:\n  {problems}"
MORE_PROBLEMS = "… and {count} more"

FILE_NAME_CHANGED = "storage saved “{name}” as “{saved}”"
ARCHIVE_CHANGED = (
    "member “{name}” changed while it was being restored (SHA-256 {actual}, expected {expected})"
)


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
        if manifest.backup_type == BackupType.ARTEFACTS:
            self._files_of_artefact_archive()

    def _files_of_artefact_archive(self) -> None:
        """Note the storage of every file an artefacts archive holds (it has no rows)."""
        for name, info in (self.manifest.data.get("files") or {}).items():
            label, _dot, field_name = str(info.get("field") or "").rpartition(".")
            try:
                storage = apps.get_model(label)._meta.get_field(field_name).storage
            except (LookupError, ValueError, AttributeError):
                self._problem(FILE_FIELD_UNKNOWN.format(name=name, field=info.get("field")))
                continue
            self.needed_files[name] = storage
            recorded = info.get("recorded_sha256")
            if recorded and recorded != info.get("sha256"):
                self.plan.warnings.append(
                    FILE_NOT_AS_RECORDED.format(
                        name=name, actual=info.get("sha256"), recorded=recorded
                    )
                )

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
