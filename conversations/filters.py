"""Filters of chat sessions and messages (django-filter FilterSets)."""

import django_filters

from records.api.filters import DateTimeFilter, IntegerFilter, TrackedFilterSet

from .choices import MessageRole
from .models import ChatMessage, Session


class SessionFilterSet(TrackedFilterSet):
    """Chat sessions by engagement, owner and activity."""

    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement discussed.")
    user_id = IntegerFilter(help_text="Id of the owner (superusers see all).")
    active_after = DateTimeFilter(
        field_name="last_activity_at", lookup_expr="gte", help_text="Last active at or after."
    )
    active_before = DateTimeFilter(
        field_name="last_activity_at", lookup_expr="lte", help_text="Last active at or before."
    )
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")

    class Meta:
        model = Session
        fields = ()


class ChatMessageFilterSet(django_filters.FilterSet):
    """Messages of a session by role, thread and time."""

    role = django_filters.MultipleChoiceFilter(
        choices=MessageRole.choices, help_text="One or more roles (repeat the parameter)."
    )
    parent_id = django_filters.UUIDFilter(help_text="Only replies to this message.")
    tool_name = django_filters.CharFilter(help_text="Only calls to (or results of) this tool.")
    created_after = DateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Sent at or after (ISO 8601)."
    )
    created_before = DateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Sent at or before (ISO 8601)."
    )

    class Meta:
        model = ChatMessage
        fields = ()
