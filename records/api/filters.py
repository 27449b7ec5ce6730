"""The filters every tracked record's FilterSet starts from."""

import django_filters


class TrackedFilterSet(django_filters.FilterSet):
    """Filters every tracked record has: who created it, and when (ISO dates or datetimes)."""

    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Created at or before (ISO 8601)."
    )
    created_by_id = django_filters.NumberFilter(
        field_name="created_by_id", help_text="Id of the user who created it."
    )
