"""Restore a backup archive exactly as it was written: ids, timestamps, files, audit chain.

The archive's checksum and every member hash are checked before anything is written;
existing rows with other values are refused unless --merge or --overwrite; a
pre-recovery snapshot is written first; the rows go in one transaction; a Recovery
row and a data_import audit event record it. An incremental or differential archive
is restored with every base it builds on, each archive and link checked first (listed
by --dry-run). See docs/operators/backups.md.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.backup import (
    BackupError,
    RestoreMode,
    RestoreResult,
    backup_restore,
    terminal_progress,
)

CHAIN_HEADER = "Chain of {count} archive(s), restored in this order:"
CHAIN_LINE = "  {position}. {backup_type} backup {backup_id} ({created_at}): {archive}"
TABLE_LINE = "  {label}: {counts}"
FILES_LINE = "  files: {counts}"
WARNING_LINE = "Warning: {warning}"
NOTHING_TO_DO = (
    "Nothing to restore: every row and file of {path} is already in place "
    "({rows} rows checked); nothing was changed."
)
DRY_RUN_SUMMARY = (
    "Dry run: restoring {path} would write {rows} row(s) into {tables} tables and {files} "
    "file(s) ({mode}); nothing was changed."
)
SUMMARY = (
    "Restored {rows} row(s) into {tables} tables and {files} file(s) from {path} "
    "(recovery {recovery_id}; {mode}); pre-recovery snapshot {snapshot}."
)
MODE_DESCRIPTIONS = {
    RestoreMode.REFUSE: "only missing rows added, none changed",
    RestoreMode.MERGE: "missing rows added, differing rows kept as they were",
    RestoreMode.OVERWRITE: "missing rows added, differing rows replaced",
}


class Command(BaseCommand):
    help = (
        "Restore a backup archive (a Backup id or a path): verify it, refuse conflicts "
        "unless --merge or --overwrite, snapshot, then restore in one transaction."
    )

    def add_arguments(self, parser):
        """Declare the archive, the conflict mode, dry run and progress options."""
        parser.add_argument("backup", metavar="BACKUP", help="A Backup id or an archive path.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--overwrite",
            action="store_true",
            help="Replace rows (and damaged files) that exist with other values.",
        )
        mode.add_argument(
            "--merge",
            action="store_true",
            help="Keep rows that exist with other values; add only the missing ones.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Verify the archive and show what would be restored; change nothing.",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bars.")

    def handle(self, *args, backup, overwrite, merge, dry_run, no_progress, **options):
        """Restore (or plan) and print what was done; exit non-zero on refusal or failure."""
        self.verbosity = options["verbosity"]
        mode = RestoreMode.REFUSE
        if overwrite:
            mode = RestoreMode.OVERWRITE
        elif merge:
            mode = RestoreMode.MERGE
        try:
            result = backup_restore(
                source=backup,
                mode=mode,
                dry_run=dry_run,
                progress=terminal_progress(disabled=no_progress),
            )
        except BackupError as error:
            raise CommandError(error.message) from error
        self._report(result)

    def _report(self, result: RestoreResult) -> None:
        if result.dry_run or len(result.chain) > 1:
            self.stdout.write(CHAIN_HEADER.format(count=len(result.chain)))
            for position, link in enumerate(result.chain, start=1):
                self.stdout.write(CHAIN_LINE.format(position=position, **link.as_json()))
        plan = result.plan
        mode = plan.mode
        for label, tally in plan.tables.items():
            if self.verbosity >= 2 or tally.new or tally.conflicting:
                counts = ", ".join(f"{key} {value}" for key, value in tally.as_json(mode).items())
                self.stdout.write(TABLE_LINE.format(label=label, counts=counts))
        if self.verbosity >= 2 or plan.files.new or plan.files.conflicting:
            counts = ", ".join(f"{key} {value}" for key, value in plan.files.as_json(mode).items())
            self.stdout.write(FILES_LINE.format(counts=counts))
        for warning in plan.warnings:
            self.stdout.write(self.style.WARNING(WARNING_LINE.format(warning=warning)))
        path = result.source.path
        if result.nothing_to_do:
            self.stdout.write(
                self.style.SUCCESS(NOTHING_TO_DO.format(path=path, rows=result.manifest.total_rows))
            )
        elif result.dry_run:
            self.stdout.write(
                DRY_RUN_SUMMARY.format(
                    path=path,
                    rows=plan.rows_written,
                    tables=len(plan.tables_written),
                    files=plan.files_written,
                    mode=MODE_DESCRIPTIONS[mode],
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    SUMMARY.format(
                        rows=plan.rows_written,
                        tables=len(plan.tables_written),
                        files=plan.files_written,
                        path=path,
                        recovery_id=result.recovery.pk,
                        mode=MODE_DESCRIPTIONS[mode],
                        snapshot=result.recovery.pre_recovery_snapshot,
                    )
                )
            )
