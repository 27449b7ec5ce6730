"""Audit-log archives: a segment of the hash chain, and the proof that nothing was rewritten.

`backup --audit-logs` archives the entries after a sequence (by default, after the last
audit-log archive) with the chain hash before the segment and after it. Checking an
archive recomputes every entry's hash and link from the hash before to the hash after;
comparing those with the live chain (the entry before the segment, every entry of it
still stored) or with the previous archive (its hash after is this one's hash before)
proves that no entry was changed, removed or inserted between them. A firm keeps
years of audit history offline this way.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass

from django.core import serializers
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Max

from ..chain import GENESIS_HASH
from ..choices import BackupStatus, BackupType
from ..models import AuditLog, Backup
from .archive import RESTORE_BATCH_SIZE, _lines
from .errors import BackupFailed, RestoreRefused
from .manifest import ArchiveSource, Manifest, verify_archive
from .scope import AUDIT_LABEL, Table, TableKind

NO_SUCH_SEQUENCE = (
    "The audit log has no entry with sequence {since} (its head is {head}): an audit-log "
    "archive starts after an entry that exists."
)
NOT_AN_AUDIT_ARCHIVE = "Archive {path} is a {backup_type} backup, not an audit-log archive."
SEGMENT_BROKEN = "Audit archive {path} is BROKEN at sequence {sequence}: {problem}"
LIVE_MISMATCH = (
    "Audit archive {path} does not match the live chain at sequence {sequence}: the "
    "archive records {archived}, the live chain holds {live} (an entry was rewritten)"
)
PREVIOUS_MISMATCH = (
    "Audit archive {path} does not follow {previous}: {problem} (entries were rewritten, "
    "removed or inserted between them)"
)


def default_since(using: str = DEFAULT_DB_ALIAS) -> int:
    """Return where the next audit-log archive starts: after the last one, else the genesis."""
    last = (
        Backup.objects.using(using)
        .filter(backup_type=BackupType.AUDIT_LOGS, status=BackupStatus.COMPLETED)
        .order_by("-created_at")
        .first()
    )
    if last is None:
        return 0
    return int((last.metadata.get("audit_segment") or {}).get("to_sequence") or 0)


def audit_segment(since: int, using: str = DEFAULT_DB_ALIAS) -> tuple[list[Table], dict]:
    """Return the table of the entries after `since` and the segment's hashes before/after.

    Read inside the archive's consistent read. Raises BackupFailed if `since` is no entry.
    """
    entries = AuditLog.objects.using(using).filter(sequence__gt=since).order_by("sequence")
    head = AuditLog.objects.using(using).aggregate(last=Max("sequence"))["last"] or 0
    if since == 0:
        before = GENESIS_HASH
    else:
        before = (
            AuditLog.objects.using(using)
            .filter(sequence=since)
            .values_list("entry_hash", flat=True)
            .first()
        )
        if before is None:
            raise BackupFailed(NO_SUCH_SEQUENCE.format(since=since, head=head))
    last = entries.order_by("-sequence").values("sequence", "entry_hash").first()
    segment = {
        "from_sequence": since + 1,
        "to_sequence": last["sequence"] if last else since,
        "head_hash_before": before,
        "head_hash_after": last["entry_hash"] if last else before,
    }
    return [Table(AuditLog, TableKind.AUDIT, entries)], segment


@dataclass(frozen=True)
class SegmentCheck:
    """What checking an audit-log archive found (it raises on any problem)."""

    segment: dict
    entries: int
    live_checked: int
    live_missing: int
    previous: str | None = None


def verify_audit_archive(
    source: ArchiveSource,
    *,
    previous: ArchiveSource | None = None,
    live: bool = True,
    using: str = DEFAULT_DB_ALIAS,
) -> SegmentCheck:
    """Check an audit-log archive: its hashes, its segment, and the live chain or previous one.

    Every entry must hash to its `entry_hash` and link to the one before, from the
    segment's hash before to its hash after. With `live`, the live entry before the
    segment must hash to the hash before, and every archived entry still stored must be
    identical in hash. With `previous` (another audit-log archive), its hash after must
    be this one's hash before and its last sequence the one before this one's first.
    Raises RestoreRefused naming the first problem.
    """
    manifest = _audit_manifest(source)
    segment = manifest.data["audit_segment"]
    entries = _check_segment(source, manifest, segment)
    checked = missing = 0
    if live:
        checked, missing = _check_live(source, manifest, segment, using)
    previous_name = None
    if previous is not None:
        earlier = _audit_manifest(previous).data["audit_segment"]
        _check_previous(source, previous, earlier, segment)
        previous_name = str(previous.path)
    return SegmentCheck(segment, entries, checked, missing, previous_name)


def _audit_manifest(source: ArchiveSource) -> Manifest:
    manifest = verify_archive(source)
    if manifest.backup_type != BackupType.AUDIT_LOGS or "audit_segment" not in manifest.data:
        raise RestoreRefused(
            NOT_AN_AUDIT_ARCHIVE.format(path=source.path, backup_type=manifest.backup_type)
        )
    return manifest


def _archived_entries(source: ArchiveSource, manifest: Manifest):
    """Yield the archived entries as unsaved AuditLog objects, in chain order."""
    (table,) = [table for table in manifest.tables if table.label == AUDIT_LABEL]
    with tarfile.open(source.path, "r|gz") as tar:
        for member in tar:
            if member.name != table.member:
                continue
            batch = []
            for line in _lines(tar.extractfile(member)):
                batch.append(json.loads(line))
                if len(batch) >= RESTORE_BATCH_SIZE:
                    yield from (obj.object for obj in serializers.deserialize("python", batch))
                    batch = []
            yield from (obj.object for obj in serializers.deserialize("python", batch))


def _check_segment(source: ArchiveSource, manifest: Manifest, segment: dict) -> int:
    sequence, previous_hash = segment["from_sequence"] - 1, segment["head_hash_before"]
    count = 0
    for entry in _archived_entries(source, manifest):
        problem = None
        if entry.sequence != sequence + 1:
            problem = f"expected sequence {sequence + 1}, found {entry.sequence}"
        elif entry.previous_hash != previous_hash:
            problem = (
                f"the entry points to {entry.previous_hash}, the one before is {previous_hash}"
            )
        elif entry.compute_hash() != entry.entry_hash:
            problem = "its content does not match its hash"
        if problem:
            raise RestoreRefused(
                SEGMENT_BROKEN.format(path=source.path, sequence=entry.sequence, problem=problem)
            )
        sequence, previous_hash = entry.sequence, entry.entry_hash
        count += 1
    if (sequence, previous_hash) != (segment["to_sequence"], segment["head_hash_after"]):
        raise RestoreRefused(
            SEGMENT_BROKEN.format(
                path=source.path,
                sequence=sequence,
                problem=(
                    f"the segment ends at {sequence} ({previous_hash}), the manifest records "
                    f"{segment['to_sequence']} ({segment['head_hash_after']})"
                ),
            )
        )
    return count


def _check_live(source, manifest, segment, using) -> tuple[int, int]:
    """Compare the segment with the live chain; return (entries compared, entries not stored)."""
    live = AuditLog.objects.using(using)
    first = segment["from_sequence"]
    if first > 1:
        before = live.filter(sequence=first - 1).values_list("entry_hash", flat=True).first()
        if before is not None and before != segment["head_hash_before"]:
            raise RestoreRefused(
                LIVE_MISMATCH.format(
                    path=source.path,
                    sequence=first - 1,
                    archived=segment["head_hash_before"],
                    live=before,
                )
            )
    checked = missing = 0
    batch: list[AuditLog] = []

    def compare(batch):
        nonlocal checked, missing
        stored = dict(
            live.filter(sequence__in=[entry.sequence for entry in batch]).values_list(
                "sequence", "entry_hash"
            )
        )
        for entry in batch:
            found = stored.get(entry.sequence)
            if found is None:
                missing += 1
            elif found != entry.entry_hash:
                raise RestoreRefused(
                    LIVE_MISMATCH.format(
                        path=source.path,
                        sequence=entry.sequence,
                        archived=entry.entry_hash,
                        live=found,
                    )
                )
            else:
                checked += 1

    for entry in _archived_entries(source, manifest):
        batch.append(entry)
        if len(batch) >= RESTORE_BATCH_SIZE:
            compare(batch)
            batch = []
    if batch:
        compare(batch)
    return checked, missing


def _check_previous(source, previous, earlier: dict, segment: dict) -> None:
    problem = None
    if earlier["to_sequence"] + 1 != segment["from_sequence"]:
        problem = (
            f"it ends at sequence {earlier['to_sequence']}, this one starts at "
            f"{segment['from_sequence']}"
        )
    elif earlier["head_hash_after"] != segment["head_hash_before"]:
        problem = (
            f"its hash after is {earlier['head_hash_after']}, this one's hash before is "
            f"{segment['head_hash_before']}"
        )
    if problem:
        raise RestoreRefused(
            PREVIOUS_MISMATCH.format(path=source.path, previous=previous.path, problem=problem)
        )
