"""Choices of the notifications app: what people are told about, how, and how deliveries stand."""

from django.db import models


class NotificationEvent(models.TextChoices):
    """What happened, as the people concerned (and webhook subscribers) are told.

    The values are API contracts: webhook endpoints subscribe to them, preferences
    name them, and payloads carry them.
    """

    APPROVAL_REQUESTED = "approval_requested", "Approval requested from me"
    APPROVAL_DECIDED = "approval_decided", "Approval approved or rejected"
    APPROVAL_REVOKED = "approval_revoked", "Approval revoked"
    APPROVAL_EXPIRED = "approval_expired", "Approval expired"
    APPROVAL_EXPIRING = "approval_expiring", "Approval about to expire"
    REVIEW_POINT_RAISED = "review_point_raised", "Review point raised or reopened"
    REVIEW_POINT_ANSWERED = "review_point_answered", "Review point answered"
    REVIEW_POINT_RESOLVED = "review_point_resolved", "Review point resolved"
    RUN_COMPLETED = "run_completed", "Workflow run completed"
    RUN_FAILED = "run_failed", "Workflow run failed"
    RUN_WAITING_APPROVAL = "run_waiting_approval", "Workflow run waiting for approval"
    ENGAGEMENT_DUE = "engagement_due", "Engagement falling due"
    CRITICAL_EVENT = "critical_event", "Critical audit event"


class EmailMode(models.TextChoices):
    """How a person receives notifications by email."""

    IMMEDIATE = "immediate", "One email per notification"
    DIGEST = "digest", "One daily digest"


class NotificationEmail(models.TextChoices):
    """What was decided for one notification's email when it was created."""

    NONE = "none", "No email"
    IMMEDIATE = "immediate", "Its own email"
    DIGEST = "digest", "The next daily digest"


class DeliveryStatus(models.TextChoices):
    """Where an email or a webhook delivery stands."""

    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Waiting to retry"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


# A delivery in these states may be claimed by a task and attempted.
ATTEMPTABLE_STATUSES = frozenset({DeliveryStatus.PENDING, DeliveryStatus.RETRYING})
# Resending is offered for these (a sent one too: the receiver may have lost it).
RESENDABLE_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED})
