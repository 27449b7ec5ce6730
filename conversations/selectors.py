"""Reads of chat sessions the lower layers apply: whose they are, which an engagement had."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db.models import QuerySet
from simple_history.utils import get_history_model_for_model

from .models import Session

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser


def chat_sessions_of(queryset: QuerySet[Session], user: AbstractUser) -> QuerySet[Session]:
    """Return the sessions of `queryset` that `user` owns (superusers: all of them)."""
    return queryset if user.is_superuser else queryset.filter(user=user)


def historical_session_ids(engagement_id: uuid.UUID) -> QuerySet:
    """Return the ids of every session ever recorded for the engagement, deleted ones included."""
    history = get_history_model_for_model(Session)
    return history._base_manager.filter(engagement_id=engagement_id).values("id")
