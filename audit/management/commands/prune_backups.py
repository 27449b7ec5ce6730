"""Remove the archives of backups past their expiry date and mark their rows expired.

Each backup goes through `audit.backup.backup_expire`: the row is locked, its archive
and .sha256 file removed (an archive already gone is fine), the row moved to expired
with history, and a data_export audit event with {"pruned": true} recorded. Backups
still pending or in progress are never touched. Safe to run again.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from audit.backup import backup_expire
from audit.choices import BACKUP_TRANSITIONS
from audit.models import Backup
from records.exceptions import DomainError

EXPIRABLE = BACKUP_TRANSITIONS["expire"][0]

BACKUP_LINE = (
    "{verb} backup {backup_id} “{backup}” (expired {expires_at:%Y-%m-%d %H:%M} UTC): {path}"
)
SKIPPED_LINE = "Skipped backup {backup_id} “{backup}”: {reason}"
SUMMARY = (
    "Pruned {count} expired backup(s): {removed} archive(s) removed, {missing} already gone; "
    "skipped {skipped}."
)
DRY_RUN_SUMMARY = (
    "Dry run: {count} backup(s) are past their expiry date and would be pruned; "
    "nothing was changed."
)


class Command(BaseCommand):
    help = "Remove the archives of expired backups and mark their rows expired (audited)."

    def add_arguments(self, parser):
        """Declare --dry-run and --no-progress."""
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be pruned; change nothing."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, dry_run, no_progress, verbosity, **options):
        """Prune every expired backup and print a summary."""
        due = Backup.objects.filter(expires_at__lte=timezone.now(), status__in=EXPIRABLE).order_by(
            "expires_at", "pk"
        )
        if dry_run:
            count = 0
            for backup in due:
                count += 1
                self._line("Would prune", backup)
            self.stdout.write(DRY_RUN_SUMMARY.format(count=count))
            return
        backups = list(due)
        removed = missing = skipped = 0
        progress = tqdm(
            total=len(backups),
            unit=" backups",
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        with progress:
            for backup in backups:
                try:
                    archive_removed = backup_expire(backup=backup, actor=None)
                except DomainError as refused:
                    # Expired, kept longer or removed since the list was read: leave it be.
                    skipped += 1
                    with tqdm.external_write_mode(file=sys.stderr):
                        self.stdout.write(
                            self.style.WARNING(
                                SKIPPED_LINE.format(
                                    backup_id=backup.pk, backup=backup, reason=refused.message
                                )
                            )
                        )
                else:
                    removed += archive_removed
                    missing += not archive_removed
                    if verbosity >= 2:
                        with tqdm.external_write_mode(file=sys.stderr):
                            self._line("Pruned", backup)
                progress.update(1)
        self.stdout.write(
            self.style.SUCCESS(
                SUMMARY.format(
                    count=removed + missing, removed=removed, missing=missing, skipped=skipped
                )
            )
        )

    def _line(self, verb: str, backup: Backup) -> None:
        self.stdout.write(
            BACKUP_LINE.format(
                verb=verb,
                backup_id=backup.pk,
                backup=backup,
                expires_at=backup.expires_at,
                path=(
                    backup.storage_path
                    if backup.storage_provider == "local"
                    else f"{backup.storage_path} ({backup.storage_provider})"
                )
                or "(no archive)",
            )
        )
