"""Chains of archives: find every base a backup needs, check each link, merge them into one.

An incremental or differential archive names its base (id, archive name, archive and
manifest SHA-256). Restoring it needs the whole chain down to a full backup: every
archive is found and checked (its own hashes, and that it is exactly the base its
successor names) before anything is written. The checked chain is then merged into
one temporary archive holding the rows as they stood when the last archive was
written — a later copy of a row replaces an earlier one, a row deleted later is left
out, a table archived whole replaces every earlier copy — which the restore walks
like any full archive.
"""

from __future__ import annotations

import json
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS

from ..choices import BackupStatus
from ..models import Backup
from .archive import (
    DATA_PREFIX,
    FILES_PREFIX,
    MANIFEST_MEMBER,
    HashingReader,
    NoProgress,
    ProgressFactory,
    _BytesReader,
    _lines,
)
from .create import _add_member
from .errors import RestoreRefused
from .manifest import ARCHIVE_UNREADABLE, ArchiveSource, Manifest, _parse_manifest, verify_archive

# A chain longer than this is a loop or a mistake, not a backup schedule.
MAX_CHAIN_LENGTH = 1000

BASE_MISSING = (
    "Archive {path} builds on {backup_type} backup {backup_id} ({name}), which is missing: "
    "no completed backup with that id has its archive in place, and there is no {name} "
    "next to {path}. Nothing was restored."
)
BASE_ALTERED = (
    "Archive {path} builds on {backup_type} backup {backup_id}, but the archive found at "
    "{found} is not that backup: {reason}. Nothing was restored."
)
CHAIN_TOO_LONG = (
    f"Archive {{path}} is the end of a chain of more than {MAX_CHAIN_LENGTH} archives "
    "(or of a loop). Nothing was restored."
)
CHAIN_MEMBER_CHANGED = (
    "Archive {path} changed while the chain was being merged: member “{name}” has SHA-256 "
    "{actual}, its manifest records {expected}. Nothing was restored."
)


@dataclass(frozen=True)
class ChainLink:
    """One checked archive of a chain."""

    source: ArchiveSource
    manifest: Manifest

    def as_json(self) -> dict:
        """Return the archive as a Recovery row records it."""
        return {
            "backup_id": self.manifest.data.get("backup_id"),
            "backup_type": self.manifest.backup_type,
            "archive": str(self.source.path),
            "manifest_sha256": self.manifest.sha256,
            "created_at": self.manifest.data.get("created_at"),
        }


def resolve_chain(
    source: ArchiveSource,
    *,
    progress: ProgressFactory = NoProgress,
    using: str = DEFAULT_DB_ALIAS,
) -> list[ChainLink]:
    """Return the archives a restore of `source` needs, full backup first, each one checked.

    Every archive's SHA-256 and member hashes are checked (verify_archive); each base
    must be found (its Backup row, else its file next to the archive naming it) and be
    exactly the archive its successor names: same SHA-256, manifest hash and backup id.
    Raises RestoreRefused otherwise; nothing is written.
    """
    links: list[ChainLink] = []
    current = source
    while True:
        manifest = verify_archive(current, progress=progress)
        links.append(ChainLink(current, manifest))
        link = manifest.base
        if link is None:
            break
        if len(links) >= MAX_CHAIN_LENGTH:
            raise RestoreRefused(CHAIN_TOO_LONG.format(path=source.path))
        base = _base_source(current, link, using)
        base_manifest = _verified_base(current, base, link, progress)
        if base_manifest.sha256 != link.get("manifest_sha256"):
            raise RestoreRefused(
                _altered(
                    current,
                    link,
                    base,
                    f"its manifest has SHA-256 {base_manifest.sha256}, the link records "
                    f"{link.get('manifest_sha256')}",
                )
            )
        if base_manifest.data.get("backup_id") != link.get("backup_id"):
            raise RestoreRefused(
                _altered(
                    current,
                    link,
                    base,
                    f"it is backup {base_manifest.data.get('backup_id')}",
                )
            )
        current = base
    links.reverse()
    return links


def _base_source(child: ArchiveSource, link: dict, using: str) -> ArchiveSource:
    """Find the base a link names: its Backup row's archive, else the file next to the child."""
    expected = str(link.get("archive_sha256") or "")
    backup = (
        Backup.objects.using(using)
        .filter(pk=link.get("backup_id"), status=BackupStatus.COMPLETED)
        .first()
    )
    if backup is not None and Path(backup.storage_path).is_file():
        return ArchiveSource(
            Path(backup.storage_path), backup, expected, f"the link of {child.path}"
        )
    name = Path(str(link.get("archive_name") or "")).name
    candidate = child.path.parent / name
    if name and candidate.is_file():
        return ArchiveSource(candidate, None, expected, f"the link of {child.path}")
    raise RestoreRefused(
        BASE_MISSING.format(
            path=child.path,
            backup_type=link.get("backup_type"),
            backup_id=link.get("backup_id"),
            name=name or "(no name)",
        )
    )


def _verified_base(
    child: ArchiveSource, base: ArchiveSource, link: dict, progress: ProgressFactory
) -> Manifest:
    """Check the base against the hashes its successor's link records."""
    if not base.expected_checksum:
        raise RestoreRefused(_altered(child, link, base, "the link records no archive SHA-256"))
    try:
        return verify_archive(base, progress=progress)
    except RestoreRefused as refused:
        raise RestoreRefused(_altered(child, link, base, refused.message)) from refused


def _altered(child: ArchiveSource, link: dict, base: ArchiveSource, reason: str) -> str:
    return BASE_ALTERED.format(
        path=child.path,
        backup_type=link.get("backup_type"),
        backup_id=link.get("backup_id"),
        found=base.path,
        reason=reason,
    )


@contextmanager
def merged_archive(
    links: list[ChainLink], *, progress: ProgressFactory = NoProgress
) -> Iterator[tuple[ArchiveSource, Manifest]]:
    """Yield the archive to walk and its manifest: the one archive, or the chain merged.

    The merged archive lives in a temporary folder removed afterwards; its rows are
    those of the last archive's point in time.
    """
    if len(links) == 1:
        yield links[0].source, links[0].manifest
        return
    with tempfile.TemporaryDirectory(prefix="restore-chain-") as staging:
        path = Path(staging) / "chain.tar.gz"
        try:
            manifest = _merge(links, Path(staging), path, progress)
        except (tarfile.TarError, EOFError, zlib.error, OSError, UnicodeError) as error:
            raise RestoreRefused(ARCHIVE_UNREADABLE.format(path=path, error=error)) from error
        head = links[-1].source
        yield ArchiveSource(path, head.backup, "", "the checked chain"), manifest


def _stage_rows(links: list[ChainLink], staging: Path) -> None:
    """Copy every data member of every archive to staging/<index>/, re-checking its hash."""
    for index, link in enumerate(links):
        folder = staging / str(index)
        folder.mkdir()
        with tarfile.open(link.source.path, "r|gz") as tar:
            for member in tar:
                if not member.name.startswith(DATA_PREFIX):
                    continue
                reader = HashingReader(tar.extractfile(member))
                with (folder / member.name[len(DATA_PREFIX) :]).open("wb") as out:
                    while chunk := reader.read(256 * 1024):
                        out.write(chunk)
                _check_hash(link, member.name, reader)


def _check_hash(link: ChainLink, name: str, reader: HashingReader) -> None:
    expected = link.manifest.members.get(name, {}).get("sha256")
    if reader.hexdigest() != expected:
        raise RestoreRefused(
            CHAIN_MEMBER_CHANGED.format(
                path=link.source.path, name=name, actual=reader.hexdigest(), expected=expected
            )
        )


def _pk_of(line: str):
    return json.loads(line)["pk"]


def _merge(links: list[ChainLink], staging: Path, path: Path, progress) -> Manifest:
    """Write the chain as one archive at `path`; return its manifest."""
    _stage_rows(links, staging)
    labels: list[str] = []
    entries: dict[str, list] = {}
    for index, link in enumerate(links):
        for table in link.manifest.tables:
            if table.label not in entries:
                labels.append(table.label)
                entries[table.label] = []
            entries[table.label].append((index, table))
    head = links[-1].manifest
    tables_json, members, counts, files = [], {}, {}, {}
    with (
        tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar,
        progress("Merging the chain", len(labels)) as bar,
    ):
        for label in labels:
            member, rows = _merge_table(entries[label], staging, tar, members)
            first = entries[label][0][1]
            counts[label] = rows
            tables_json.append(
                {"label": label, "kind": str(first.kind), "member": member, "rows": rows}
            )
            bar.update(1)
        for link in links:
            with tarfile.open(link.source.path, "r|gz") as source:
                for member in source:
                    name = member.name
                    if not name.startswith(FILES_PREFIX) or name in members:
                        continue
                    reader = HashingReader(source.extractfile(member))
                    members[name] = _add_member(tar, name, reader, member.size, member.mtime)
                    _check_hash(link, name, reader)
                    files[name[len(FILES_PREFIX) :]] = members[name]
        manifest = {
            **head.data,
            "scope": head.scope.as_json(),
            "base": None,
            "chain": [link.as_json() for link in links],
            "tables": tables_json,
            "counts": counts,
            "files": files,
            "members": members,
            "problems": [p for link in links for p in link.manifest.data.get("problems", [])],
        }
        encoded = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        info = tarfile.TarInfo(MANIFEST_MEMBER)
        info.size, info.mode = len(encoded), 0o644
        tar.addfile(info, _BytesReader(encoded))
    return _parse_manifest(path, encoded)


def _merge_table(archived: list, staging: Path, tar, members: dict) -> tuple[str, int]:
    """Add one table's rows as of the chain's end to the merged archive; return member, rows.

    A row is taken from the last archive holding it; rows of an archive before one that
    holds the table whole, and rows deleted in a later archive, are left out.
    """
    # The index of the last archive that holds (or deleted) each row changed after the first.
    last_index: dict = {}
    whole_from = 0
    for index, table in reversed(archived):
        if table.complete:
            whole_from = max(whole_from, index)
    for index, table in archived:
        if index == 0 or index < whole_from:
            continue
        for pk in table.deleted:
            last_index[pk] = index
        with (staging / str(index) / table.member[len(DATA_PREFIX) :]).open("rb") as handle:
            for line in _lines(handle):
                last_index[str(_pk_of(line))] = index
    member = archived[-1][1].member
    merged = staging / "merged.jsonl"
    rows = 0
    with merged.open("w", encoding="utf-8", newline="\n") as out:
        for index, table in archived:
            if index < whole_from:
                continue
            with (staging / str(index) / table.member[len(DATA_PREFIX) :]).open("rb") as handle:
                for line in _lines(handle):
                    if last_index.get(str(_pk_of(line)), index) == index:
                        out.write(line + "\n")
                        rows += 1
    with merged.open("rb") as handle:
        members[member] = _add_member(tar, member, handle, merged.stat().st_size, 0)
    merged.unlink()
    return member, rows
