"""Walk the AuditLog hash chain and prove that no entry was changed, removed or inserted.

With --archive, check an audit-log archive instead: its segment of the chain, and that
it matches the live chain (and, with --previous, follows the previous archive).
"""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from tqdm import tqdm

from audit.backup import BackupError, resolve_source, terminal_progress, verify_audit_archive
from audit.chain import GENESIS_HASH
from audit.models import AuditChainHead, AuditLog
from audit.triggers import append_only_trigger_problems
from audit.verification import (
    ANCHOR_MISMATCH,
    ENTRY_HASH_MISMATCH,
    PREVIOUS_HASH_MISMATCH,
    SEQUENCE_GAP,
    Break,
    walk_chain,
)

__all__ = (
    "ANCHOR_MISMATCH",
    "ENTRY_HASH_MISMATCH",
    "PREVIOUS_HASH_MISMATCH",
    "SEQUENCE_GAP",
    "Break",
)

DEFAULT_CHUNK_SIZE = 5000

HEAD_MISMATCH = (
    "chain head mismatch: the head records sequence {head_sequence} ({head_hash}), "
    "but the last entry is sequence {last_sequence} ({last_hash}) (entries removed at the end?)"
)
HEAD_MISSING = "chain head missing: {count} entries but no chain head row"
BEYOND_HEAD = (
    "entries beyond the chain head: the head records sequence {head_sequence}, but the log "
    "holds sequence {last_sequence} (entries slipped in at the end?)"
)
ANCHOR_NOT_FOUND = "anchor mismatch: sequence {sequence} is not in the audit log"
BAD_ANCHOR = "Anchors are SEQUENCE:HASH, e.g. 1200:3f7a…; got {value!r}."
BROKEN = "Audit log chain BROKEN at sequence {sequence}: {problem}"
TRIGGERS_BROKEN = "Audit log protection incomplete: {problems}"
INTACT = "Audit log intact: {count} entries, head sequence {sequence}, head hash {hash}"
APPENDED_DURING_CHECK = (
    "{count} entries appended while checking (after sequence {sequence}) are checked next time."
)
EMPTY = "Audit log is empty: nothing to verify (genesis hash {hash})"
ARCHIVE_INTACT = (
    "Audit archive {path} intact: entries {from_sequence}..{to_sequence} ({entries}), hash "
    "before {head_hash_before}, after {head_hash_after}; live chain: {checked} entries "
    "identical, {missing} no longer stored here{previous}."
)
FOLLOWS = "; follows {previous}"
PREVIOUS_WITHOUT_ARCHIVE = "--previous goes with --archive."


def _anchor(value: str) -> tuple[int, str]:
    sequence, sep, entry_hash = value.partition(":")
    if not sep or not sequence.isdigit() or len(entry_hash) != 64:
        raise CommandError(BAD_ANCHOR.format(value=value))
    return int(sequence), entry_hash.lower()


def _default_workers(database) -> int:
    """Return one worker per CPU on PostgreSQL, else 1 (and 1 inside a transaction).

    Worker processes read through connections of their own: only committed rows, on a
    database server several processes can reach (not an in-memory SQLite database).
    """
    connection = connections[database]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _head(database) -> AuditChainHead | None:
    return AuditChainHead.objects.using(database).filter(pk=AuditChainHead.SINGLETON_ID).first()


class Command(BaseCommand):
    help = (
        "Verify the AuditLog hash chain entry by entry (streaming, bounded memory); report "
        "the first broken link and exit non-zero, or print the head hash to anchor elsewhere."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help=f"Entries read per query (default {DEFAULT_CHUNK_SIZE}).",
        )
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQUENCE:HASH",
            help="A head hash recorded earlier (e.g. in a sign-off report); may repeat.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Processes checking stretches of the chain at once (default: one per CPU "
            "on PostgreSQL, 1 on SQLite).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--archive",
            metavar="BACKUP",
            help="Check an audit-log archive (a Backup id or a path) against the live chain.",
        )
        parser.add_argument(
            "--previous",
            metavar="BACKUP",
            help="With --archive: the audit-log archive before it, which it must follow.",
        )

    def handle(
        self,
        *args,
        chunk_size,
        anchor,
        workers,
        no_progress,
        database,
        archive,
        previous,
        **options,
    ):
        if previous and not archive:
            raise CommandError(PREVIOUS_WITHOUT_ARCHIVE)
        if archive:
            self._check_archive(archive, previous, database, no_progress)
            return
        if workers is not None and workers < 1:
            raise CommandError("--workers must be 1 or more.")
        self.workers = workers or _default_workers(database)
        anchors = dict(_anchor(value) for value in anchor)
        # The check covers the chain as of this moment: up to the head read now. Writers
        # append entries and move the head in one transaction, so every entry up to it
        # is committed, and entries appended while the check runs lie beyond it.
        head = _head(database)
        progress = tqdm(
            total=head.sequence if head else None,
            unit=" entries",
            unit_scale=True,
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        bound = head.sequence if head is not None else None
        with progress:
            count, last, broken = self._walk(database, chunk_size, anchors, progress, bound)
        if broken is None:
            broken = self._check_head(head, count, last)
        if broken is None and head is not None:
            broken = self._check_beyond_head(database)
        if broken is None and anchors:
            missing = min(anchors)
            broken = Break(missing, ANCHOR_NOT_FOUND.format(sequence=missing))
        if broken is not None:
            raise CommandError(BROKEN.format(sequence=broken.sequence, problem=broken.problem))

        problems = append_only_trigger_problems(connections[database])
        if problems:
            raise CommandError(TRIGGERS_BROKEN.format(problems="; ".join(problems)))
        if last is None:
            self.stdout.write(self.style.SUCCESS(EMPTY.format(hash=GENESIS_HASH)))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    INTACT.format(count=count, sequence=last["sequence"], hash=last["entry_hash"])
                )
            )
        if bound is not None:
            later = AuditLog.objects.using(database).filter(sequence__gt=bound).count()
            if later:
                self.stdout.write(APPENDED_DURING_CHECK.format(count=later, sequence=bound))

    def _check_archive(
        self, archive: str, previous: str | None, database: str, no_progress: bool
    ) -> None:
        """Check an audit-log archive's segment, against the live chain and the previous one."""
        try:
            check = verify_audit_archive(
                resolve_source(archive, using=database),
                previous=None if previous is None else resolve_source(previous, using=database),
                progress=terminal_progress(disabled=no_progress),
                using=database,
            )
        except BackupError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(
                ARCHIVE_INTACT.format(
                    path=archive,
                    entries=check.entries,
                    checked=check.live_checked,
                    missing=check.live_missing,
                    previous=FOLLOWS.format(previous=check.previous) if check.previous else "",
                    **check.segment,
                )
            )
        )

    def _walk(self, database, chunk_size, anchors, progress, bound):
        """Check every link in sequence order up to `bound` (`audit.verification`).

        Return (entries checked, last entry, first break or None). Stretches of the
        chain are checked in `--workers` processes and joined at their seams; rows are
        read in pages of `chunk_size`, so memory stays bounded whatever the size
        of the log. Anchors found on the way are checked and removed from `anchors`.
        `bound` (the head's sequence at the start; None without a head) leaves out
        entries appended meanwhile.
        """
        return walk_chain(
            database=database,
            bound=bound,
            anchors=anchors,
            page_size=chunk_size,
            workers=getattr(self, "workers", 1),
            advance=progress.update,
        )

    @staticmethod
    def _check_beyond_head(database) -> Break | None:
        """Find entries past the chain head (inserted without moving it).

        The last sequence is read before the head: an honest append commits both
        together, so a head read afterwards is at least as far on.
        """
        last_sequence = (
            AuditLog.objects.using(database)
            .order_by("-sequence")
            .values_list("sequence", flat=True)
            .first()
        )
        head = _head(database)
        if last_sequence is not None and (head is None or last_sequence > head.sequence):
            head_sequence = head.sequence if head is not None else 0
            return Break(
                last_sequence,
                BEYOND_HEAD.format(head_sequence=head_sequence, last_sequence=last_sequence),
            )
        return None

    @staticmethod
    def _check_head(head, count, last) -> Break | None:
        """Compare the chain head with the last entry: catches entries cut off the end."""
        if last is None:
            if head is not None and head.sequence != 0:
                return Break(
                    head.sequence,
                    HEAD_MISMATCH.format(
                        head_sequence=head.sequence,
                        head_hash=head.entry_hash,
                        last_sequence=0,
                        last_hash=GENESIS_HASH,
                    ),
                )
            return None
        if head is None:
            return Break(last["sequence"], HEAD_MISSING.format(count=count))
        if (head.sequence, head.entry_hash) != (last["sequence"], last["entry_hash"]):
            return Break(
                last["sequence"],
                HEAD_MISMATCH.format(
                    head_sequence=head.sequence,
                    head_hash=head.entry_hash,
                    last_sequence=last["sequence"],
                    last_hash=last["entry_hash"],
                ),
            )
        return None
