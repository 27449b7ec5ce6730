"""Send what notifications owe today: date reminders, daily digests, retries left behind.

For cron, once a day (docs/notifications.md). Safe to run again the same day: each
reminder is recorded once per approval and expiry date (or engagement and due date),
each person gets one digest a day, and a delivery is attempted only when it is owed.
"""

from __future__ import annotations

import datetime
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from notifications import delivery
from notifications.models import Notification
from notifications.recipients import (
    approval_expiring_announcements,
    engagement_due_announcements,
)
from notifications.services import announce, deliveries_due, digests_send, preferences_for
from notifications.tasks import deliver_webhook, send_email

REMINDER_LINE = "{verb} {event} reminder “{subject}” to {people}"
SUMMARY = (
    "Reminders for {day}: {notifications} new notification(s) ({emails} email(s), "
    "{webhooks} webhook delivery(ies)) about {approvals} approval(s) expiring within "
    "{approval_days} day(s) and {engagements} engagement(s) due within {engagement_days} "
    "day(s); digests: {digests} queued ({digest_notifications} notification(s)), "
    "{already} already sent today; retries: {retries} delivery(ies) enqueued."
)
DRY_RUN_SUMMARY = (
    "Dry run for {day}: {notifications} reminder notification(s) would be recorded about "
    "{approvals} approval(s) and {engagements} engagement(s); {digests} digest(s) would be "
    "queued ({digest_notifications} notification(s)); {retries} delivery(ies) are owed an "
    "attempt. Nothing was changed."
)
BAD_DATE = "--date must be a date as YYYY-MM-DD, not “{value}”."


class Command(BaseCommand):
    help = (
        "Remind of approvals about to expire and engagements falling due, send the daily "
        "digests and re-enqueue owed deliveries. Idempotent: run it daily from cron."
    )

    def add_arguments(self, parser):
        """Declare --dry-run, --date and --no-progress."""
        parser.add_argument(
            "--dry-run", action="store_true", help="Say what would be sent; change nothing."
        )
        parser.add_argument(
            "--date", help="The day to remind for, YYYY-MM-DD (default: today, UTC)."
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, dry_run, date, no_progress, verbosity, **options):
        """Remind, then queue digests (today's reminders included), then sweep retries."""
        day = self._day(date)
        approval_days = settings.NOTIFICATIONS_APPROVAL_EXPIRY_DAYS
        engagement_days = settings.NOTIFICATIONS_ENGAGEMENT_DUE_DAYS
        announcements = [
            *approval_expiring_announcements(today=day, days=approval_days),
            *engagement_due_announcements(today=day, days=engagement_days),
        ]
        counted = {"approvals": 0, "engagements": 0}
        for announcement in announcements:
            kind = "approvals" if announcement.event == "approval_expiring" else "engagements"
            counted[kind] += 1

        emails_due, webhooks_due = deliveries_due()
        if dry_run:
            new = 0
            for announcement in announcements:
                people = self._not_yet_told(announcement)
                new += len(people)
                if people and verbosity >= 1:
                    self._line("Would send", announcement, people)
            digest = digests_send(day=day, dry_run=True)
            self.stdout.write(
                DRY_RUN_SUMMARY.format(
                    day=day,
                    notifications=new,
                    digests=digest.queued,
                    digest_notifications=digest.notifications,
                    retries=len(emails_due) + len(webhooks_due),
                    **counted,
                )
            )
            return

        totals = {"notifications": 0, "emails": 0, "webhooks": 0}
        progress = tqdm(
            total=len(announcements),
            unit=" reminders",
            file=sys.stderr,
            disable=no_progress or not sys.stderr.isatty(),
        )
        with progress:
            for announcement in announcements:
                result = announce(announcement)
                totals["notifications"] += result.notifications
                totals["emails"] += result.emails
                totals["webhooks"] += result.webhooks
                if result.notifications and verbosity >= 2:
                    with tqdm.external_write_mode(file=sys.stderr):
                        self._line(
                            "Sent", announcement, [u for u, _t in announcement.recipients.values()]
                        )
                progress.update(1)
        digest = digests_send(day=day)
        retries = 0
        for task, ids in ((send_email, emails_due), (deliver_webhook, webhooks_due)):
            for pk in ids:
                retries += delivery.enqueue(task, pk)
        self.stdout.write(
            self.style.SUCCESS(
                SUMMARY.format(
                    day=day,
                    approval_days=approval_days,
                    engagement_days=engagement_days,
                    digests=digest.queued,
                    digest_notifications=digest.notifications,
                    already=digest.already_sent,
                    retries=retries,
                    **totals,
                    **counted,
                )
            )
        )

    def _day(self, value: str | None) -> datetime.date:
        if not value:
            return timezone.now().date()
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            raise CommandError(BAD_DATE.format(value=value)) from None

    def _not_yet_told(self, announcement) -> list:
        users = [user for user, _text in announcement.recipients.values()]
        preferences = preferences_for(users)
        told = set(
            Notification.objects.filter(
                event=announcement.event, key=announcement.key, recipient__in=users
            ).values_list("recipient_id", flat=True)
        )
        return [
            user
            for user in users
            if user.pk not in told and preferences[user.pk].wants(announcement.event)
        ]

    def _line(self, verb: str, announcement, people) -> None:
        self.stdout.write(
            REMINDER_LINE.format(
                verb=verb,
                event=announcement.event.replace("_", " "),
                subject=announcement.text.subject,
                people=", ".join(user.get_username() for user in people) or "nobody",
            )
        )
