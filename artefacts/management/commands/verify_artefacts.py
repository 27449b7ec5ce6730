"""Re-hash every stored artefact file and report the ones that are missing or corrupted.

Every artefact is checked, soft-deleted and superseded ones included: their bytes are
still the record of what was reviewed. Each problem is printed and written to the
AuditLog as a critical artefact_access event (a failed integrity read of the bytes).
There is deliberately no option to skip the audit events: an integrity failure in a
system of record must leave a trace, whoever runs the check.

Exit status: 0 when every file matches its record; 1 when any file is missing or
corrupted, or the engagement given does not exist; 2 for a malformed argument.
"""

from __future__ import annotations

import sys
import uuid

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from artefacts.files import FileStatus, record_file_problem, verify_artefact_file
from artefacts.models import Artefact
from engagements.models import Engagement

DEFAULT_CHUNK_SIZE = 500
AUDIT_SOURCE = "verify_artefacts"

PROBLEM_LINE = (
    "{status}: artefact {artefact_id} “{artefact}” ({state}) of engagement “{engagement}” "
    "({engagement_id}): file “{storage_name}”, expected SHA-256 {expected_hash} "
    "({expected_size} bytes), found {actual}"
)
SUMMARY = (
    "Checked {count} artefact files{scope}: {ok} ok, {missing} missing, {corrupted} corrupted."
)
FAILED = (
    "{problems} artefact file(s) failed the integrity check ({missing} missing, "
    "{corrupted} corrupted); critical audit events were written."
)
NO_SUCH_ENGAGEMENT = "No engagement with id {engagement_id}."


class Command(BaseCommand):
    help = (
        "Re-hash every stored artefact file (or those of one engagement), report missing "
        "and corrupted files with a critical audit event each, and exit non-zero if any."
    )

    def add_arguments(self, parser):
        """Declare --engagement, --chunk-size and --no-progress."""
        parser.add_argument(
            "--engagement",
            type=uuid.UUID,
            metavar="UUID",
            help="Only check the artefacts of this engagement.",
        )
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK_SIZE,
            help=f"Artefact rows read per database round trip (default {DEFAULT_CHUNK_SIZE}).",
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="Hide the progress bar (it is hidden anyway when stdout is not a terminal).",
        )

    def handle(self, *args, engagement, chunk_size, no_progress, **options):
        """Check every artefact in scope, report problems, and fail if there were any."""
        artefacts = self._artefacts(engagement)
        counts = dict.fromkeys(FileStatus, 0)
        progress = tqdm(
            total=artefacts.count(),
            unit=" files",
            file=sys.stderr,
            disable=no_progress or not self.stdout.isatty(),
        )
        with progress:
            for artefact in artefacts.iterator(chunk_size=chunk_size):
                check = verify_artefact_file(artefact)
                counts[check.status] += 1
                if not check.ok:
                    self._report(artefact, check)
                    record_file_problem(artefact=artefact, check=check, source=AUDIT_SOURCE)
                progress.update(1)

        missing, corrupted = counts[FileStatus.MISSING], counts[FileStatus.CORRUPTED]
        summary = SUMMARY.format(
            count=sum(counts.values()),
            scope=f" of engagement {engagement}" if engagement else "",
            ok=counts[FileStatus.OK],
            missing=missing,
            corrupted=corrupted,
        )
        if missing or corrupted:
            self.stdout.write(self.style.WARNING(summary))
            raise CommandError(
                FAILED.format(problems=missing + corrupted, missing=missing, corrupted=corrupted)
            )
        self.stdout.write(self.style.SUCCESS(summary))

    @staticmethod
    def _artefacts(engagement_id):
        """Return the artefacts to check, every one of them, with only the columns needed."""
        artefacts = (
            Artefact.all_objects.select_related("engagement")
            .only(
                "id",
                "name",
                "version",
                "status",
                "is_deleted",
                "file",
                "content_hash",
                "file_size",
                "engagement__id",
                "engagement__client_code",
                "engagement__name",
            )
            .order_by("pk")
        )
        if engagement_id is None:
            return artefacts
        if not Engagement.all_objects.filter(pk=engagement_id).exists():
            raise CommandError(NO_SUCH_ENGAGEMENT.format(engagement_id=engagement_id))
        return artefacts.filter(engagement_id=engagement_id)

    def _report(self, artefact, check):
        """Print one problem, clearing the progress bar around it."""
        if check.status == FileStatus.MISSING:
            actual = "no file"
        else:
            actual = f"SHA-256 {check.actual_hash} ({check.actual_size} bytes)"
        state = f"{artefact.status}, deleted" if artefact.is_deleted else artefact.status
        line = PROBLEM_LINE.format(
            status=str(check.status).upper(),
            artefact_id=artefact.pk,
            artefact=artefact,
            state=state,
            engagement=artefact.engagement,
            engagement_id=artefact.engagement_id,
            storage_name=check.storage_name,
            expected_hash=check.expected_hash or "(none recorded)",
            expected_size=check.expected_size,
            actual=actual,
        )
        with tqdm.external_write_mode(file=sys.stdout):
            self.stdout.write(self.style.ERROR(line))
