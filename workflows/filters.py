"""Filters of the workflow run list (django-filter FilterSets)."""

import django_filters

from records.api.filters import (
    DateTimeFilter,
    IntegerFilter,
    MultipleChoiceFilter,
    TrackedFilterSet,
)

from .choices import WorkflowStatus, WorkflowType
from .models import WorkflowRun


class WorkflowRunFilterSet(TrackedFilterSet):
    """Workflow runs by state, type, engagement, period, agent and dates."""

    status = MultipleChoiceFilter(
        choices=WorkflowStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    workflow_type = MultipleChoiceFilter(
        choices=WorkflowType.choices, help_text="One or more workflow types."
    )
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    client_code = django_filters.CharFilter(
        field_name="engagement__client_code",
        lookup_expr="iexact",
        help_text="Client code of the engagement (exact, case-insensitive).",
    )
    period = django_filters.CharFilter(help_text='Reporting period, e.g. "2024-Q4".')
    agent_name = django_filters.CharFilter(help_text="Name of the agent that ran it.")
    started_by_id = IntegerFilter(help_text="Id of the user who started it.")
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")
    started_after = DateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Started at or after (ISO 8601)."
    )
    started_before = DateTimeFilter(
        field_name="started_at", lookup_expr="lte", help_text="Started at or before (ISO 8601)."
    )
    completed_after = DateTimeFilter(
        field_name="completed_at", lookup_expr="gte", help_text="Ended at or after (ISO 8601)."
    )
    completed_before = DateTimeFilter(
        field_name="completed_at", lookup_expr="lte", help_text="Ended at or before (ISO 8601)."
    )

    class Meta:
        model = WorkflowRun
        fields = ()
