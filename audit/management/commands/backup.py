"""Write one compressed archive of the whole back office, of one engagement, or of changes.

The archive holds the rows (soft-deleted ones, history and audit events included),
the artefact files and a manifest with the SHA-256 of every member; a Backup row and
a data_export audit event record it. --incremental and --differential archive what
changed since the chain's last backup or last full backup, naming that base. See
docs/operators/backups.md.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.backup import (
    DEFAULT_KEEP_DAYS,
    BackupError,
    BackupScope,
    audit_segment,
    backup_create,
    base_link,
    chain_base,
    changed_tables,
    default_since,
    scope_tables,
    terminal_progress,
)
from audit.choices import BackupType
from records.scoping import engagement_model

NO_SUCH_ENGAGEMENT = "No engagement with id {engagement_id} (deleted ones included)."
NEGATIVE_KEEP_DAYS = "--keep-days must be 0 (keep for ever) or more, not {days}."
DRY_RUN_TABLE = "  {label}: {rows} row(s)"
DRY_RUN_SUMMARY = (
    "Dry run: a backup of {scope} would hold {rows} row(s) from {tables} tables and the "
    "files of their artefacts, written to {output_dir}; nothing was written."
)
SCOPE_FULL = "everything"
SCOPE_ENGAGEMENT = "engagement {engagement_id}"
SCOPE_CHANGES = "the changes since {base_type} backup {base_id} ({base})"
NOTHING_CHOSEN = (
    "Say what to back up: --full, --incremental, --differential, --audit-logs, --artefacts "
    "or --engagement UUID."
)
ENGAGEMENT_ALONE = "--engagement goes alone (one engagement) or with --artefacts (its files)."
SINCE_ONLY_AUDIT = "--since SEQ (0 or more) goes with --audit-logs only."
SCOPE_AUDIT = (
    "the audit entries {from_sequence}..{to_sequence} (hash before {head_hash_before}, "
    "after {head_hash_after})"
)
SCOPE_ARTEFACTS = "the artefact files of {scope}"
SEGMENT = (
    "; audit entries {from_sequence}..{to_sequence}, hash before {head_hash_before}, "
    "after {head_hash_after}"
)
BASE = "; builds on {base_type} backup {base_id} (manifest SHA-256 {manifest_sha256})"
PROBLEM_LINE = "Warning: {problem}"
SUMMARY = (
    "Backup {backup_id} completed: {rows} row(s) from {tables} tables and {files} file(s) "
    "({size} bytes) in {path}, SHA-256 {checksum}, {expiry}{base}."
)
EXPIRES = "expires {expires_at:%Y-%m-%d %H:%M} UTC"
NEVER_EXPIRES = "kept until removed by hand"


class Command(BaseCommand):
    help = (
        "Write a compressed backup archive (rows, history, audit events, artefact files, "
        "manifest with SHA-256 of every member) of everything (--full) or of one engagement."
    )

    def add_arguments(self, parser):
        """Declare the scope, retention, output folder, dry run and progress options."""
        scope = parser.add_mutually_exclusive_group()
        parser.add_argument(
            "--engagement",
            type=uuid.UUID,
            metavar="UUID",
            help="Back up one engagement with everything in it (with --artefacts: its files).",
        )
        scope.add_argument("--full", action="store_true", help="Back up everything.")
        scope.add_argument(
            "--incremental",
            action="store_true",
            help="Back up what changed since the last backup of the chain (full, "
            "incremental or differential), deletes included.",
        )
        scope.add_argument(
            "--differential",
            action="store_true",
            help="Back up what changed since the last full backup, deletes included.",
        )
        scope.add_argument(
            "--audit-logs",
            action="store_true",
            help="Archive a segment of the audit chain with its hash before and after.",
        )
        scope.add_argument(
            "--artefacts",
            action="store_true",
            help="Archive the artefact files (of one engagement with --engagement) only.",
        )
        parser.add_argument(
            "--since",
            type=int,
            metavar="SEQ",
            help="With --audit-logs: archive the entries after this sequence (default: "
            "after the last audit-log archive).",
        )
        parser.add_argument(
            "--keep-days",
            type=int,
            default=DEFAULT_KEEP_DAYS,
            help=(
                f"Days until prune_backups may remove the archive (default {DEFAULT_KEEP_DAYS}; "
                "0 keeps it until removed by hand)."
            ),
        )
        parser.add_argument(
            "--output-dir",
            type=Path,
            help="Folder of the archive (default: the BACKUP_ROOT setting).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be backed up; write nothing."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(
        self,
        *args,
        engagement,
        full,
        incremental,
        differential,
        audit_logs,
        artefacts,
        since,
        keep_days,
        output_dir,
        dry_run,
        no_progress,
        **options,
    ):
        """Write the archive (or, with --dry-run, count it) and print a summary."""
        self.verbosity = options["verbosity"]
        if keep_days < 0:
            raise CommandError(NEGATIVE_KEEP_DAYS.format(days=keep_days))
        if (
            engagement is not None
            and not engagement_model().all_objects.filter(pk=engagement).exists()
        ):
            raise CommandError(NO_SUCH_ENGAGEMENT.format(engagement_id=engagement))
        if not (full or incremental or differential or audit_logs or artefacts or engagement):
            raise CommandError(NOTHING_CHOSEN)
        if engagement is not None and (full or incremental or differential or audit_logs):
            raise CommandError(ENGAGEMENT_ALONE)
        if since is not None and (not audit_logs or since < 0):
            raise CommandError(SINCE_ONLY_AUDIT)
        scope = BackupScope(engagement_id=engagement)
        backup_type = scope.backup_type
        if incremental:
            backup_type = BackupType.INCREMENTAL
        elif differential:
            backup_type = BackupType.DIFFERENTIAL
        elif audit_logs:
            backup_type = BackupType.AUDIT_LOGS
        elif artefacts:
            backup_type = BackupType.ARTEFACTS
        output_dir = Path(str(output_dir or settings.BACKUP_ROOT)).resolve()
        try:
            if dry_run:
                self._dry_run(scope, backup_type, output_dir, since)
                return
            backup = backup_create(
                scope=scope,
                output_dir=output_dir,
                keep_days=keep_days,
                progress=terminal_progress(disabled=no_progress),
                backup_type=backup_type,
                audit_since=since,
            )
        except BackupError as error:
            raise CommandError(error.message) from error
        base = backup.metadata.get("base")
        base_text = ""
        if base:
            base_text = BASE.format(
                base_type=base["backup_type"],
                base_id=base["backup_id"],
                manifest_sha256=base["manifest_sha256"],
            )
        segment = backup.metadata.get("audit_segment")
        if segment:
            base_text = SEGMENT.format(**segment)
        for problem in backup.metadata.get("problems", []):
            self.stdout.write(self.style.WARNING(PROBLEM_LINE.format(problem=problem)))
        self.stdout.write(
            self.style.SUCCESS(
                SUMMARY.format(
                    backup_id=backup.pk,
                    rows=backup.record_count,
                    tables=len(backup.tables_included),
                    files=backup.metadata.get("files", 0),
                    size=backup.file_size_bytes,
                    path=backup.storage_path,
                    checksum=backup.checksum,
                    expiry=(
                        EXPIRES.format(expires_at=backup.expires_at)
                        if backup.expires_at
                        else NEVER_EXPIRES
                    ),
                    base=base_text,
                )
            )
        )

    def _dry_run(self, scope: BackupScope, backup_type: str, output_dir: Path, since) -> None:
        """Print the tables and row counts a backup of `scope` would hold."""
        described = (
            SCOPE_FULL
            if scope.engagement_id is None
            else SCOPE_ENGAGEMENT.format(engagement_id=scope.engagement_id)
        )
        if backup_type == BackupType.AUDIT_LOGS:
            since = default_since() if since is None else since
            tables, segment = audit_segment(since)
            described = SCOPE_AUDIT.format(**segment)
        elif backup_type == BackupType.ARTEFACTS:
            tables = []
            described = SCOPE_ARTEFACTS.format(scope=described)
        elif backup_type in (BackupType.INCREMENTAL, BackupType.DIFFERENTIAL):
            base = chain_base(backup_type)
            tables = changed_tables(base_link(base)["watermark"])
            described = SCOPE_CHANGES.format(
                base_type=base.backup_type, base_id=base.pk, base=base.name
            )
        else:
            tables = scope_tables(scope)
        total = 0
        for table in tables:
            rows = table.queryset.count()
            total += rows
            if self.verbosity >= 2 or rows:
                self.stdout.write(DRY_RUN_TABLE.format(label=table.label, rows=rows))
        self.stdout.write(
            DRY_RUN_SUMMARY.format(
                scope=described,
                rows=total,
                tables=len(tables),
                output_dir=output_dir,
            )
        )
