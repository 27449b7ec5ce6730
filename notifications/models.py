"""Notifications: what each person is told, how they want it, and every delivery on record.

A `Notification` is one message to one person about one event (an audit event, or a
reminder of a date). It is shown in the admin and, by the person's preference, sent
by email on its own or in a daily digest (`EmailDelivery`). Webhook endpoints
registered by superusers receive signed JSON about the events they subscribe to
(`WebhookDelivery`). Deliveries are records: status, attempts, last error, and a
unique key so a task delivered twice sends once.
"""

import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from audit.models import TrackedModel, UUIDModel, empty_dict, empty_list

from .choices import (
    ATTEMPTABLE_STATUSES,
    DeliveryStatus,
    EmailMode,
    NotificationEmail,
    NotificationEvent,
)

# A claimed delivery whose worker died is attempted again after this long.
CLAIM_TIMEOUT = datetime.timedelta(minutes=15)
MAX_ERROR_LENGTH = 2000


class NotificationPreference(TrackedModel):
    """How one person wants to be told: which events, and email on or off, each or a digest.

    A person without a row gets every event, each by its own email.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    email_enabled = models.BooleanField(
        "email me", default=True, help_text="Off: notifications are only shown in the back office."
    )
    email_mode = models.CharField(
        "email delivery",
        max_length=10,
        choices=EmailMode.choices,
        default=EmailMode.IMMEDIATE,
        help_text="One email per notification, or one digest a day.",
    )
    muted_events = models.JSONField(
        default=empty_list,
        blank=True,
        help_text="The events this person does not want to hear about.",
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = "notification preference"

    def __str__(self):
        return f"Notification preferences of {self.user}"

    def get_absolute_url(self):
        return reverse("admin:notifications_notificationpreference_change", args=(self.pk,))

    def wants(self, event: str) -> bool:
        """Return whether the person wants to hear about `event` at all."""
        return event not in self.muted_events

    def email_for(self, event: str) -> str:
        """Return how a notification of `event` is emailed to this person (NotificationEmail)."""
        if not self.email_enabled or not self.wants(event):
            return NotificationEmail.NONE
        if self.email_mode == EmailMode.DIGEST:
            return NotificationEmail.DIGEST
        return NotificationEmail.IMMEDIATE


class Notification(UUIDModel):
    """One message to one person about one event; read or unread.

    `key` names what it is about (the audit event, or the reminded object and date):
    a person is told about the same thing once, however often the work is repeated.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    event = models.CharField(max_length=40, choices=NotificationEvent.choices, db_index=True)
    key = models.CharField(max_length=200, help_text="What it is about, for uniqueness.")
    subject = models.CharField(max_length=255)
    message = models.TextField(help_text="Sentences with names: what happened and what to do.")
    link = models.CharField(
        max_length=500, blank=True, help_text="The admin page of what it is about (a path)."
    )
    engagement_id = models.UUIDField(null=True, blank=True, db_index=True)
    engagement_label = models.CharField(max_length=320, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who did it; empty for the system.",
    )
    # No database constraint: nothing may stand in the way of the audit log's own
    # protections (its triggers refuse TRUNCATE and DELETE; rows are never removed).
    audit_event = models.ForeignKey(
        "audit.AuditLog",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        help_text="The audit event it tells of; empty for reminders.",
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    email = models.CharField(
        max_length=10,
        choices=NotificationEmail.choices,
        default=NotificationEmail.NONE,
        help_text="How it is emailed, by the recipient's preference when it was created.",
    )
    digest = models.ForeignKey(
        "EmailDelivery",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="digest_notifications",
        help_text="The daily digest that carried it.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        constraints = (
            models.UniqueConstraint(
                fields=("recipient", "event", "key"), name="notification_once_per_recipient"
            ),
        )
        indexes = (
            models.Index(fields=("recipient", "read_at"), name="notification_unread_idx"),
            models.Index(fields=("recipient", "-created_at"), name="notification_recent_idx"),
        )

    def __str__(self):
        return self.subject

    def get_absolute_url(self):
        return reverse("admin:notifications_notification_open", args=(self.pk,))

    @property
    def is_read(self) -> bool:
        """Return whether the recipient has read it."""
        return self.read_at is not None


class Delivery(models.Model):
    """The record of sending something: status, attempts, the last error, the next retry.

    A task claims the delivery (attemptable → sending) in a short transaction before it
    sends, so a task delivered twice, or a second worker, finds it claimed or sent and
    sends nothing. A claim older than CLAIM_TIMEOUT (the worker died) may be taken again.
    """

    status = models.CharField(
        max_length=10,
        choices=DeliveryStatus.choices,
        default=DeliveryStatus.PENDING,
        db_index=True,
    )
    attempts = models.PositiveIntegerField(default=0)
    attempt_limit = models.PositiveIntegerField(
        default=1, help_text="Attempts allowed in all; a resend allows more."
    )
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        abstract = True

    def is_claimable(self, now: datetime.datetime) -> bool:
        """Return whether a task may attempt it now."""
        if self.status in ATTEMPTABLE_STATUSES:
            return self.next_attempt_at is None or self.next_attempt_at <= now
        if self.status == DeliveryStatus.SENDING:
            return self.claimed_at is None or self.claimed_at <= now - CLAIM_TIMEOUT
        return False

    def claim(self, now: datetime.datetime) -> None:
        """Take the delivery for one attempt (in memory)."""
        self.status = DeliveryStatus.SENDING
        self.attempts += 1
        self.claimed_at = now
        self.next_attempt_at = None

    claim.alters_data = True

    def succeed(self, now: datetime.datetime) -> None:
        """Record a successful attempt."""
        self.status = DeliveryStatus.SENT
        self.sent_at = now
        self.last_error = ""
        self.claimed_at = None

    succeed.alters_data = True

    def fail(self, error: str, *, retry_at: datetime.datetime | None) -> None:
        """Record a failed attempt: retry at `retry_at`, or give up when it is None."""
        self.status = DeliveryStatus.RETRYING if retry_at else DeliveryStatus.FAILED
        self.next_attempt_at = retry_at
        self.last_error = error[:MAX_ERROR_LENGTH]
        self.claimed_at = None

    fail.alters_data = True

    def reopen(self, *, attempts: int) -> None:
        """Allow `attempts` more attempts from now (a resend)."""
        self.status = DeliveryStatus.PENDING
        self.attempt_limit = self.attempts + attempts
        self.next_attempt_at = None
        self.claimed_at = None

    reopen.alters_data = True

    @property
    def has_attempts_left(self) -> bool:
        """Return whether another attempt is allowed after the current one."""
        return self.attempts < self.attempt_limit


class EmailDelivery(Delivery, UUIDModel):
    """One email: a notification on its own, or a person's digest of one day.

    Unique: one email per notification (`notification`), one digest per person per day.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_deliveries"
    )
    mode = models.CharField(max_length=10, choices=EmailMode.choices, db_index=True)
    notification = models.OneToOneField(
        Notification,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="email_delivery",
        help_text="The notification of an immediate email.",
    )
    digest_date = models.DateField(null=True, blank=True, help_text="The day of a digest.")
    to_address = models.EmailField(max_length=254)
    subject = models.CharField(max_length=255)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "email delivery"
        verbose_name_plural = "email deliveries"
        constraints = (
            models.UniqueConstraint(
                fields=("recipient", "digest_date"),
                condition=models.Q(mode=EmailMode.DIGEST),
                name="email_digest_once_a_day",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        mode=EmailMode.IMMEDIATE,
                        notification__isnull=False,
                        digest_date__isnull=True,
                    )
                    | models.Q(
                        mode=EmailMode.DIGEST, notification__isnull=True, digest_date__isnull=False
                    )
                ),
                name="email_delivery_immediate_or_digest",
            ),
        )

    def __str__(self):
        return f"Email to {self.to_address}: {self.subject}"


class WebhookEndpoint(TrackedModel):
    """A URL of another system that receives signed JSON about the events it subscribes to.

    Registered by superusers. Each payload holds only what `owner` could see through the
    API: events of engagements the owner may see, about records the owner may view.
    The secret is never kept in the history.
    """

    name = models.CharField(max_length=100)
    url = models.URLField("URL", max_length=500, help_text="http(s) URL that receives POSTs.")
    events = models.JSONField(
        default=empty_list, blank=True, help_text="The events it subscribes to."
    )
    secret = models.CharField(
        max_length=128, help_text="Signs every delivery (HMAC-SHA256); share it with the receiver."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="webhook_endpoints",
        help_text="Payloads hold only what this user could see through the API.",
    )
    is_active = models.BooleanField("active", default=True)
    description = models.TextField(blank=True)

    history = HistoricalRecords(excluded_fields=("secret",))

    class Meta:
        ordering = ("name",)
        verbose_name = "webhook endpoint"

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("admin:notifications_webhookendpoint_change", args=(self.pk,))

    def subscribes_to(self, event: str) -> bool:
        """Return whether the endpoint wants deliveries of `event`."""
        return self.is_active and event in self.events


class WebhookDelivery(Delivery, UUIDModel):
    """One event delivered (or being delivered) to one endpoint, with its exact payload."""

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    event = models.CharField(max_length=40, choices=NotificationEvent.choices, db_index=True)
    key = models.CharField(max_length=200, help_text="What it is about, for uniqueness.")
    audit_event = models.ForeignKey(
        "audit.AuditLog",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    payload = models.JSONField(default=empty_dict)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "webhook delivery"
        verbose_name_plural = "webhook deliveries"
        constraints = (
            models.UniqueConstraint(
                fields=("endpoint", "event", "key"), name="webhook_delivery_once_per_endpoint"
            ),
        )

    def __str__(self):
        return f"{self.get_event_display()} to {self.endpoint}"
