"""Reads of notifications: a person's unread count and list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .models import Notification

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser


def notifications_of(user: AbstractUser):
    """Return the user's notifications, newest first (nobody else's, superusers included)."""
    return Notification.objects.filter(recipient=user).select_related("actor")


# The header counts at most this many unread notifications ("99+" beyond).
UNREAD_COUNT_CAP = 99


def unread_count(user: AbstractUser, *, cap: int = UNREAD_COUNT_CAP) -> int:
    """Return how many of the user's notifications are unread, up to `cap` + 1.

    One query over the (recipient, read_at) index that reads at most `cap` + 1 ids, so
    the header costs the same for someone who never reads their notifications; like the
    audit log's changelist, it never counts a whole table.
    """
    ids = Notification.objects.filter(recipient=user, read_at__isnull=True).values_list(
        "pk", flat=True
    )
    return len(ids[: cap + 1])
