"""Every write of the notifications app: announce, read, prefer, register endpoints, resend.

`announce` records what an `Announcement` (from `notifications.recipients`) tells: one
notification per person who wants it, one email delivery per immediate email, one
webhook delivery per subscribed endpoint allowed to see it. Each is unique (a task
delivered twice, or a reminder run twice, adds nothing); the sends are enqueued once
the records are committed, and run in the background (`notifications.tasks`).
"""

from __future__ import annotations

import datetime
import logging
import secrets
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.services import audit_record
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import status_label
from records.services import apply_changes, changes, save_with_history, snapshot, validate

from . import delivery
from .choices import (
    ATTEMPTABLE_STATUSES,
    RESENDABLE_STATUSES,
    DeliveryStatus,
    EmailMode,
    NotificationEmail,
    NotificationEvent,
)
from .models import (
    CLAIM_TIMEOUT,
    EmailDelivery,
    Notification,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
)
from .webhooks import endpoint_may_see, webhook_payload

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from .recipients import Announcement

logger = logging.getLogger(__name__)

SECRET_BYTES = 32
PREFERENCE_FIELDS = frozenset({"email_enabled", "email_mode", "muted_events"})
ENDPOINT_FIELDS = frozenset({"name", "url", "events", "owner", "is_active", "description"})
NOT_PREFERENCE_FIELDS = "only email_enabled, email_mode and muted_events are preferences"
NOT_ENDPOINT_FIELDS = "the secret is rotated, never edited; other fields do not exist"

NOT_YOUR_NOTIFICATION = "{user} may not change notification “{notification}”: it is not theirs."
NOT_YOUR_PREFERENCES = "{user} may not change the notification preferences of {owner}."
SUPERUSERS_ONLY = "Only superusers {verb} webhook endpoints; {user} is not one."
UNKNOWN_EVENTS = "Unknown event(s): {events}. Choose among: {choices}."
EVENTS_REQUIRED = "Choose at least one event for the endpoint to receive."
OWNER_INACTIVE = "The owner {owner} is inactive: payloads are scoped by an active user."
URL_SCHEME = "The URL must start with http:// or https://, not “{url}”."
NOT_RESENDABLE = (
    "Cannot resend {what} “{delivery}”: it is {status} (only sent or failed deliveries "
    "are resent; pending ones are still being attempted)."
)


@dataclass(frozen=True)
class AnnounceResult:
    """What one announcement recorded: new notifications, email and webhook deliveries."""

    notifications: int = 0
    emails: int = 0
    webhooks: int = 0


# --- announcing --------------------------------------------------------------------------


def announce(announcement: Announcement) -> AnnounceResult:
    """Record the announcement's notifications and deliveries once; send them once committed.

    A person who muted the event gets no notification. Immediate emails are queued as
    their own delivery; digest ones wait for `send_digests`. Endpoints subscribed to the
    event receive it only if their owner may see it (`endpoint_may_see`). Anything
    recorded before (same recipient or endpoint, event and key) is left as it is.
    """
    notifications = emails = 0
    email_ids, webhook_ids = [], []
    with transaction.atomic():
        preferences = preferences_for([user for user, _text in announcement.recipients.values()])
        for user, text in announcement.recipients.values():
            preference = preferences[user.pk]
            if not preference.wants(announcement.event):
                continue
            email = (
                preference.email_for(announcement.event) if user.email else NotificationEmail.NONE
            )
            notification = _create_once(
                Notification,
                recipient=user,
                event=announcement.event,
                key=announcement.key,
                subject=text.subject[:255],
                message=text.message,
                link=announcement.link,
                engagement_id=announcement.engagement.pk if announcement.engagement else None,
                engagement_label=str(announcement.engagement or "")[:320],
                actor=announcement.actor,
                audit_event=announcement.audit_event,
                email=email,
            )
            if notification is None:
                continue
            notifications += 1
            if email == NotificationEmail.IMMEDIATE:
                sent = EmailDelivery.objects.create(
                    recipient=user,
                    mode=EmailMode.IMMEDIATE,
                    notification=notification,
                    to_address=user.email,
                    subject=delivery.email_subject(notification.subject),
                    attempt_limit=delivery.max_attempts(),
                )
                email_ids.append(sent.pk)
                emails += 1
        for endpoint in subscribed_endpoints(announcement.event):
            if not endpoint_may_see(endpoint, announcement):
                continue
            record = WebhookDelivery(
                endpoint=endpoint,
                event=announcement.event,
                key=announcement.key,
                audit_event=announcement.audit_event,
                attempt_limit=delivery.max_attempts(),
            )
            record.payload = webhook_payload(announcement, delivery_id=record.pk)
            if _save_once(record) is not None:
                webhook_ids.append(record.pk)
        if email_ids or webhook_ids:
            transaction.on_commit(
                partial(delivery.enqueue_sends, email_ids, webhook_ids), robust=True
            )
    return AnnounceResult(notifications, emails, len(webhook_ids))


def preferences_for(users) -> dict[int, NotificationPreference]:
    """Return each user's preferences (unsaved defaults for those who set none), by id."""
    ids = [user.pk for user in users]
    stored = {p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=ids)}
    return {user.pk: stored.get(user.pk) or NotificationPreference(user=user) for user in users}


def subscribed_endpoints(event: str) -> list[WebhookEndpoint]:
    """Return the active endpoints subscribed to `event`, with their owners."""
    endpoints = WebhookEndpoint.objects.filter(is_active=True).select_related("owner")
    return [endpoint for endpoint in endpoints if endpoint.subscribes_to(event)]


def _create_once(model, **values):
    """Create a row unless its unique key exists (then return None), race-safe."""
    return _save_once(model(**values))


def _save_once(record):
    lookup = {"key": record.key, "event": record.event}
    if isinstance(record, Notification):
        lookup["recipient"] = record.recipient
    else:
        lookup["endpoint"] = record.endpoint
    if type(record).objects.filter(**lookup).exists():
        return None
    try:
        # A savepoint: a concurrent delivery of the same task may insert it first.
        with transaction.atomic():
            record.save(force_insert=True)
    except IntegrityError:
        return None
    return record


# --- reading notifications ---------------------------------------------------------------


@transaction.atomic
def notification_mark_read(*, notification: Notification, actor: AbstractUser) -> Notification:
    """Mark one of the actor's notifications as read (already read: unchanged)."""
    notification = _own_notification(notification, actor)
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification._change_reason = "Read"
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notification_mark_unread(*, notification: Notification, actor: AbstractUser) -> Notification:
    """Mark one of the actor's notifications as unread again."""
    notification = _own_notification(notification, actor)
    if notification.read_at is not None:
        notification.read_at = None
        notification._change_reason = "Marked unread"
        notification.save(update_fields=["read_at"])
    return notification


@transaction.atomic
def notifications_mark_all_read(*, actor: AbstractUser) -> int:
    """Mark every unread notification of the actor as read; return how many."""
    unread = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    # RecordQuerySet.update saves row by row, so each keeps its history.
    return unread.update(read_at=timezone.now())


def _own_notification(notification: Notification, actor: AbstractUser) -> Notification:
    notification = Notification.objects.select_for_update().get(pk=notification.pk)
    if notification.recipient_id != actor.pk:
        raise NotAllowed(NOT_YOUR_NOTIFICATION.format(user=actor, notification=notification))
    return notification


# --- preferences -------------------------------------------------------------------------


@transaction.atomic
def notification_preference_update(
    *, user: AbstractUser, actor: AbstractUser, data: dict[str, Any]
) -> NotificationPreference:
    """Change how `user` is told (the user themselves, or a superuser); return the row.

    `data` may hold `email_enabled`, `email_mode` and `muted_events` (event values).
    """
    if actor.pk != user.pk and not actor.is_superuser:
        raise NotAllowed(NOT_YOUR_PREFERENCES.format(user=actor, owner=user))
    preference, created = NotificationPreference.objects.select_for_update().get_or_create(
        user=user, defaults={"created_by": actor, "updated_by": actor}
    )
    if "muted_events" in data:
        data = {**data, "muted_events": _checked_events(data["muted_events"], field="muted_events")}
    before = snapshot(preference)
    apply_changes(preference, data=data, allowed=PREFERENCE_FIELDS, reason=NOT_PREFERENCE_FIELDS)
    _old, new = changes(before, snapshot(preference))
    if new or created:
        validate(preference)
        save_with_history(preference, actor=actor, reason="Preferences: " + ", ".join(sorted(new)))
    return preference


def _checked_events(events, *, field: str, required: bool = False) -> list[str]:
    values = list(dict.fromkeys(str(event) for event in (events or [])))
    unknown = [event for event in values if event not in NotificationEvent.values]
    if unknown:
        raise InvalidInput(
            UNKNOWN_EVENTS.format(
                events=", ".join(unknown), choices=", ".join(NotificationEvent.values)
            ),
            field=field,
        )
    if required and not values:
        raise InvalidInput(EVENTS_REQUIRED, field=field)
    return sorted(values)


# --- webhook endpoints -------------------------------------------------------------------


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: AbstractUser,
    name: str,
    url: str,
    events: list[str],
    owner: AbstractUser,
    secret: str = "",
    is_active: bool = True,
    description: str = "",
) -> WebhookEndpoint:
    """Register an endpoint (superusers only); a secret is generated unless given.

    Recorded as a settings_change audit event (never with the secret).
    """
    _require_superuser(actor, verb="register")
    endpoint = WebhookEndpoint(
        name=name,
        url=url,
        events=_checked_events(events, field="events", required=True),
        owner=owner,
        secret=secret or secrets.token_urlsafe(SECRET_BYTES),
        is_active=is_active,
        description=description,
    )
    _check_endpoint(endpoint)
    save_with_history(endpoint, actor=actor, reason="Registered", created=True)
    audit_record(
        action=AuditAction.SETTINGS_CHANGE,
        resource=endpoint,
        user=actor,
        description=f"Webhook endpoint registered: {endpoint} ({endpoint.url})",
        new_value=_endpoint_snapshot(endpoint),
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, actor: AbstractUser, data: dict[str, Any]
) -> WebhookEndpoint:
    """Change an endpoint's name, URL, events, owner, activity or description (superusers)."""
    _require_superuser(actor, verb="change")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if "events" in data:
        data = {**data, "events": _checked_events(data["events"], field="events", required=True)}
    before = _endpoint_snapshot(endpoint)
    apply_changes(endpoint, data=data, allowed=ENDPOINT_FIELDS, reason=NOT_ENDPOINT_FIELDS)
    old, new = changes(before, _endpoint_snapshot(endpoint))
    if not new:
        return endpoint
    _check_endpoint(endpoint)
    save_with_history(endpoint, actor=actor, reason="Edited: " + ", ".join(sorted(new)))
    audit_record(
        action=AuditAction.SETTINGS_CHANGE,
        resource=endpoint,
        user=actor,
        description=f"Webhook endpoint changed: {endpoint}",
        old_value=old,
        new_value=new,
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: AbstractUser) -> str:
    """Give the endpoint a new random secret (superusers); return it."""
    _require_superuser(actor, verb="change")
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    endpoint.secret = secrets.token_urlsafe(SECRET_BYTES)
    save_with_history(endpoint, actor=actor, reason="Secret rotated")
    audit_record(
        action=AuditAction.SETTINGS_CHANGE,
        resource=endpoint,
        user=actor,
        description=f"Webhook endpoint secret rotated: {endpoint}",
        metadata={"secret_rotated": True},
    )
    return endpoint.secret


def _require_superuser(actor: AbstractUser, *, verb: str) -> None:
    if not (actor.is_active and actor.is_superuser):
        raise NotAllowed(SUPERUSERS_ONLY.format(verb=verb, user=actor))


def _check_endpoint(endpoint: WebhookEndpoint) -> None:
    if not endpoint.url.lower().startswith(("http://", "https://")):
        raise InvalidInput(URL_SCHEME.format(url=endpoint.url), field="url")
    if not endpoint.owner.is_active:
        raise InvalidInput(OWNER_INACTIVE.format(owner=endpoint.owner), field="owner")
    validate(endpoint)


def _endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return snapshot(endpoint, sorted(ENDPOINT_FIELDS))


# --- resending ---------------------------------------------------------------------------


def webhook_delivery_resend(*, delivery_record: WebhookDelivery, actor: AbstractUser):
    """Deliver a sent or failed webhook delivery again, with a new round of attempts."""
    _require_superuser(actor, verb="resend deliveries of")
    return _resend(WebhookDelivery, delivery_record, what="webhook delivery", actor=actor)


def email_delivery_resend(*, delivery_record: EmailDelivery, actor: AbstractUser):
    """Send a sent or failed email again, with a new round of attempts (superusers)."""
    _require_superuser(actor, verb="resend emails of")
    return _resend(EmailDelivery, delivery_record, what="email delivery", actor=actor)


def _resend(model, record, *, what: str, actor: AbstractUser):
    with transaction.atomic():
        record = model.objects.select_for_update().get(pk=record.pk)
        if record.status not in RESENDABLE_STATUSES:
            raise Conflict(
                NOT_RESENDABLE.format(what=what, delivery=record, status=status_label(record))
            )
        record.reopen(attempts=delivery.max_attempts())
        save_with_history(record, actor=actor, reason=f"Resend requested by {actor}")
        emails, webhooks = ([record.pk], []) if model is EmailDelivery else ([], [record.pk])
        transaction.on_commit(partial(delivery.enqueue_sends, emails, webhooks), robust=True)
    return record


# --- daily digests -----------------------------------------------------------------------


@dataclass(frozen=True)
class DigestResult:
    """What one digest run did: digests queued, people already sent today's."""

    queued: int = 0
    already_sent: int = 0
    notifications: int = 0


def digests_send(*, day: datetime.date, dry_run: bool = False) -> DigestResult:
    """Queue today's digest email for everyone with unread notifications waiting for one.

    One digest per person per day (a second run that day sends nothing again; what
    arrives later waits for tomorrow's). Notifications the person has read meanwhile,
    or whose email they turned off since, are left out.
    """
    waiting = (
        Notification.objects.filter(
            email=NotificationEmail.DIGEST, digest__isnull=True, read_at__isnull=True
        )
        .exclude(recipient__email="")
        .filter(recipient__is_active=True)
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    queued = already = count = 0
    for user_id in sorted(set(waiting)):
        with transaction.atomic():
            preference = NotificationPreference.objects.filter(user_id=user_id).first()
            if preference is not None and not preference.email_enabled:
                continue
            if EmailDelivery.objects.filter(
                recipient_id=user_id, mode=EmailMode.DIGEST, digest_date=day
            ).exists():
                already += 1
                continue
            pending = Notification.objects.filter(
                recipient_id=user_id,
                email=NotificationEmail.DIGEST,
                digest__isnull=True,
                read_at__isnull=True,
            ).select_related("recipient")
            notes = list(pending.order_by("created_at"))
            if not notes:
                continue
            count += len(notes)
            queued += 1
            if dry_run:
                continue
            recipient = notes[0].recipient
            digest = _save_digest(recipient, day, len(notes))
            if digest is None:
                already += 1
                queued -= 1
                continue
            Notification.objects.filter(pk__in=[n.pk for n in notes]).update(digest=digest)
            transaction.on_commit(partial(delivery.enqueue_sends, [digest.pk], []), robust=True)
    return DigestResult(queued=queued, already_sent=already, notifications=count)


def _save_digest(recipient, day: datetime.date, count: int) -> EmailDelivery | None:
    digest = EmailDelivery(
        recipient=recipient,
        mode=EmailMode.DIGEST,
        digest_date=day,
        to_address=recipient.email,
        subject=delivery.email_subject(delivery.digest_subject(day, count)),
        attempt_limit=delivery.max_attempts(),
    )
    try:
        with transaction.atomic():
            digest.save(force_insert=True)
    except IntegrityError:
        return None
    return digest


# --- the retry sweep ---------------------------------------------------------------------


def deliveries_due(*, now: datetime.datetime | None = None) -> tuple[list, list]:
    """Return the ids of email and webhook deliveries an attempt is owed to now.

    Pending or retrying ones whose time has come, and claims left by a dead worker.
    With a task backend that runs tasks later (`run_after`) they are attempted on their
    own; this sweep (in `send_due_reminders`) catches what a lost task or a backend
    without deferred tasks left behind.
    """
    now = now or timezone.now()
    owed = Q(status__in=ATTEMPTABLE_STATUSES) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    abandoned = Q(status=DeliveryStatus.SENDING) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lte=now - CLAIM_TIMEOUT)
    )
    return tuple(
        list(
            model.objects.filter(owed | abandoned)
            .order_by("created_at")
            .values_list("pk", flat=True)
        )
        for model in (EmailDelivery, WebhookDelivery)
    )
