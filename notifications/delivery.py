"""Sending: one attempt at an email or a webhook delivery, its record, and the retry schedule.

Every attempt first claims its delivery in a short transaction (an exclusive one on
SQLite): a task delivered twice, or taken by two workers, finds the delivery claimed or
sent and sends nothing. The send happens outside any transaction, so a slow mail server
or receiver holds no lock, and a failure is recorded on the delivery — never on the
business change, committed long before. A failed attempt is retried after
NOTIFICATIONS_RETRY_DELAY seconds, doubling each time, up to NOTIFICATIONS_MAX_ATTEMPTS
attempts; then the delivery is failed (an admin action resends it).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.utils import exclusive_transaction

from . import webhooks
from .choices import EmailMode
from .messages import name, when

logger = logging.getLogger(__name__)

SKIPPED = "skipped"
MISSING = "missing"


def max_attempts() -> int:
    """Return how many attempts a delivery gets (NOTIFICATIONS_MAX_ATTEMPTS, at least 1)."""
    return max(1, int(settings.NOTIFICATIONS_MAX_ATTEMPTS))


def retry_delay(attempts: int) -> datetime.timedelta:
    """Return the wait before the next attempt after `attempts` failed ones (doubling)."""
    base = max(1, int(settings.NOTIFICATIONS_RETRY_DELAY))
    return datetime.timedelta(seconds=base * 2 ** max(0, attempts - 1))


def email_subject(subject: str) -> str:
    """Return an email subject with the configured prefix, within 255 characters."""
    prefix = settings.NOTIFICATIONS_EMAIL_SUBJECT_PREFIX.strip()
    return (f"{prefix} {subject}" if prefix else subject)[:255]


def digest_subject(day: datetime.date, count: int) -> str:
    """Return the subject of a person's digest of `day`."""
    return f"Your daily digest for {when(day)}: {count} notification(s)"


# --- enqueueing --------------------------------------------------------------------------


def enqueue_sends(email_ids: Iterable, webhook_ids: Iterable) -> None:
    """Enqueue one send task per delivery (called once the deliveries are committed)."""
    from .tasks import deliver_webhook, send_email

    for task, ids in ((send_email, email_ids), (deliver_webhook, webhook_ids)):
        for pk in ids:
            enqueue(task, pk)


def enqueue(task, pk, *, run_after: datetime.datetime | None = None) -> bool:
    """Enqueue `task(pk)`, later if `run_after` is given; return whether it was enqueued.

    A backend that cannot defer tasks (the immediate one) leaves a retry to the sweep of
    `send_due_reminders`. An enqueue that fails is logged: the delivery stays pending and
    the sweep sends it.
    """
    try:
        if run_after is not None:
            if not task.get_backend().supports_defer:
                return False
            task = task.using(run_after=run_after)
        task.enqueue(str(pk))
    except Exception:
        logger.exception("Could not enqueue %s for delivery %s; the sweep will", task.name, pk)
        return False
    return True


# --- attempting --------------------------------------------------------------------------


def _claim(model, pk):
    """Return the delivery claimed for one attempt, or why not (SKIPPED, MISSING)."""
    now = timezone.now()
    with exclusive_transaction():
        record = model.objects.select_for_update().filter(pk=pk).first()
        if record is None:
            return MISSING
        if not record.is_claimable(now):
            return SKIPPED
        record.claim(now)
        record._change_reason = f"Attempt {record.attempts}"
        record.save()
    return record


def _record_failure(record, error: str, *, task, status_code: int | None = None) -> str:
    retry_at = timezone.now() + retry_delay(record.attempts) if record.has_attempts_left else None
    with transaction.atomic():
        record.fail(error, retry_at=retry_at)
        if status_code is not None:
            record.last_status_code = status_code
        record._change_reason = f"Attempt {record.attempts} failed"
        record.save()
    logger.warning(
        "%s %s: attempt %s of %s failed: %s",
        record._meta.verbose_name.capitalize(),
        record.pk,
        record.attempts,
        record.attempt_limit,
        error,
    )
    if retry_at is not None:
        enqueue(task, record.pk, run_after=retry_at)
    return record.status


def _record_success(record, *, status_code: int | None = None) -> str:
    with transaction.atomic():
        record.succeed(timezone.now())
        if status_code is not None:
            record.last_status_code = status_code
        record._change_reason = f"Attempt {record.attempts} succeeded"
        record.save()
    return record.status


def attempt_email(pk) -> str:
    """Send the email delivery `pk` once if it is owed; return its status or SKIPPED."""
    from .models import EmailDelivery
    from .tasks import send_email

    record = _claim(EmailDelivery, pk)
    if isinstance(record, str):
        return record
    try:
        message = email_message(record)
        message.send(using="default")
    except Exception as error:
        return _record_failure(record, f"{type(error).__name__}: {error}", task=send_email)
    return _record_success(record)


def attempt_webhook(pk) -> str:
    """POST the webhook delivery `pk` once if it is owed; return its status or SKIPPED."""
    from .models import WebhookDelivery
    from .tasks import deliver_webhook

    record = _claim(WebhookDelivery, pk)
    if isinstance(record, str):
        return record
    endpoint = record.endpoint
    if not endpoint.is_active:
        return _record_failure(
            record, "The endpoint was deactivated; nothing was sent.", task=deliver_webhook
        )
    result = webhooks.post(
        url=endpoint.url,
        secret=endpoint.secret,
        event=record.event,
        delivery_id=str(record.pk),
        payload=record.payload,
    )
    if not result.ok:
        return _record_failure(
            record, result.error, task=deliver_webhook, status_code=result.status_code
        )
    return _record_success(record, status_code=result.status_code)


# --- the emails --------------------------------------------------------------------------


def email_message(record) -> EmailMultiAlternatives:
    """Return the email of a delivery: plain text and HTML, written from its notification(s)."""
    recipient = record.recipient
    context = {
        "recipient_name": name(recipient),
        "preferences_url": webhooks.absolute_url(
            reverse("admin:notifications_notificationpreference_mine")
        ),
        "notifications_url": webhooks.absolute_url(
            reverse("admin:notifications_notification_changelist")
        ),
        "site_name": "AI Actuary back office",
    }
    if record.mode == EmailMode.IMMEDIATE:
        template = "notifications/email/notification"
        context["notification"] = _with_url(record.notification)
    else:
        template = "notifications/email/digest"
        context["day"] = when(record.digest_date)
        context["notifications"] = [
            _with_url(notification)
            for notification in record.digest_notifications.order_by("created_at")
        ]
    context["subject"] = record.subject
    message = EmailMultiAlternatives(
        subject=record.subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[record.to_address],
        headers={"X-AI-Actuary-Delivery": str(record.pk)},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def _with_url(notification):
    notification.url = webhooks.absolute_url(notification.link)
    notification.paragraphs = [p for p in notification.message.split("\n\n") if p]
    return notification
