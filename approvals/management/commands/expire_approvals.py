"""Mark pending approvals past their expiry date as expired, through the approval service.

Each one goes through `approvals.services.approval_expire` (actor None: the system),
which locks it, re-checks it, saves it with history and records an approval_expire
audit event. An approval decided or edited meanwhile is skipped, not forced. Safe to
run again: only pending approvals past expires_at are ever touched.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from approvals.choices import ApprovalStatus
from approvals.models import Approval
from approvals.services import approval_expire
from records.exceptions import DomainError

APPROVAL_LINE = (
    "{verb} approval {approval_id} “{approval}” (expired {expires_at:%Y-%m-%d %H:%M} UTC)"
)
SKIPPED_LINE = "Skipped approval {approval_id} “{approval}”: {reason}"
SUMMARY = "Expired {expired} approval(s) past their expiry date; skipped {skipped}."
DRY_RUN_SUMMARY = (
    "Dry run: {count} pending approval(s) are past their expiry date and would expire; "
    "nothing was changed."
)


class Command(BaseCommand):
    help = (
        "Expire pending approvals past their expiry date (with history and an audit event "
        "each, through approval_expire)."
    )

    def add_arguments(self, parser):
        """Declare --dry-run and --no-progress."""
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would expire; change nothing."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, dry_run, no_progress, verbosity, **options):
        """Expire every due approval one by one and print a summary."""
        due = list(
            Approval.objects.filter(status=ApprovalStatus.PENDING, expires_at__lte=timezone.now())
            .order_by("expires_at", "pk")
            .values_list("pk", flat=True)
        )
        if dry_run:
            for approval in Approval.objects.filter(pk__in=due).order_by("expires_at", "pk"):
                self._line(APPROVAL_LINE, "Would expire", approval)
            self.stdout.write(DRY_RUN_SUMMARY.format(count=len(due)))
            return
        expired = skipped = 0
        progress = tqdm(
            total=len(due),
            unit=" approvals",
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        with progress:
            for pk in due:
                approval = Approval.objects.filter(pk=pk).first()
                if approval is None:
                    skipped += 1
                    continue
                try:
                    approval = approval_expire(approval=approval, actor=None)
                except DomainError as refused:
                    # Decided, extended or deleted since the list was read: leave it be.
                    skipped += 1
                    with tqdm.external_write_mode(file=sys.stderr):
                        self.stdout.write(
                            self.style.WARNING(
                                SKIPPED_LINE.format(
                                    approval_id=pk, approval=approval, reason=refused.message
                                )
                            )
                        )
                else:
                    expired += 1
                    if verbosity >= 2:
                        with tqdm.external_write_mode(file=sys.stderr):
                            self._line(APPROVAL_LINE, "Expired", approval)
                progress.update(1)
        self.stdout.write(self.style.SUCCESS(SUMMARY.format(expired=expired, skipped=skipped)))

    def _line(self, template: str, verb: str, approval: Approval) -> None:
        self.stdout.write(
            template.format(
                verb=verb,
                approval_id=approval.pk,
                approval=approval,
                expires_at=approval.expires_at,
            )
        )
