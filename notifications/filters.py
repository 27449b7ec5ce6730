"""Filters of a person's notifications (django-filter FilterSets)."""

import django_filters

from records.api.filters import DateTimeFilter

from .choices import NotificationEvent
from .models import Notification


class NotificationFilterSet(django_filters.FilterSet):
    """Notifications by read state, event, engagement and time."""

    read = django_filters.BooleanFilter(
        field_name="read_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: read ones only; false: unread ones only.",
    )
    event = django_filters.MultipleChoiceFilter(
        choices=NotificationEvent.choices, help_text="One or more events (repeat the parameter)."
    )
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement it is about.")
    created_after = DateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = DateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Created at or before (ISO 8601)."
    )

    class Meta:
        model = Notification
        fields = ()
