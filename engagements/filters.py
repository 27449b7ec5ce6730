"""Filters of the engagement, team member and user lists (django-filter FilterSets)."""

import django_filters
from django.contrib.auth import get_user_model

from records.api.filters import IntegerFilter, MultipleChoiceFilter, TrackedFilterSet

from .choices import EngagementStatus, EngagementType, TeamRole
from .models import Engagement, EngagementMember
from .selectors import engagements_visible_to


class EngagementFilterSet(TrackedFilterSet):
    """Engagements by state, type, client, people and dates."""

    status = MultipleChoiceFilter(
        choices=EngagementStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    engagement_type = MultipleChoiceFilter(
        choices=EngagementType.choices, help_text="One or more engagement types."
    )
    client_code = django_filters.CharFilter(
        lookup_expr="iexact", help_text="Client code (exact, case-insensitive)."
    )
    lead_actuary_id = IntegerFilter(help_text="Id of the lead actuary.")
    reviewer_id = IntegerFilter(help_text="Id of the reviewer.")
    member_id = IntegerFilter(
        field_name="team__user_id", help_text="Id of a user on the engagement's team."
    )
    due_after = django_filters.DateFilter(
        field_name="due_date", lookup_expr="gte", help_text="Due on or after this date."
    )
    due_before = django_filters.DateFilter(
        field_name="due_date", lookup_expr="lte", help_text="Due on or before this date."
    )
    period_start_after = django_filters.DateFilter(
        field_name="period_start", lookup_expr="gte", help_text="Period starts on or after."
    )
    period_end_before = django_filters.DateFilter(
        field_name="period_end", lookup_expr="lte", help_text="Period ends on or before."
    )

    class Meta:
        model = Engagement
        fields = ()


class EngagementMemberFilterSet(TrackedFilterSet):
    """Team members by engagement, user and role."""

    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    user_id = IntegerFilter(help_text="Id of the user.")
    role = MultipleChoiceFilter(choices=TeamRole.choices, help_text="One or more team roles.")

    class Meta:
        model = EngagementMember
        fields = ()


class UserFilterSet(django_filters.FilterSet):
    """Users by the engagement whose team they are on (only engagements you may see)."""

    engagement_id = django_filters.UUIDFilter(
        method="filter_engagement", help_text="Only the team of this engagement."
    )

    class Meta:
        model = get_user_model()
        fields = ()

    def filter_engagement(self, queryset, name, value):
        """Keep the team of one engagement, if the requesting user may see it."""
        user = getattr(self.request, "user", None)
        visible = engagements_visible_to(user).filter(pk=value)
        return queryset.filter(engagement_memberships__engagement__in=visible)
