"""Filters of the approval and professional qualification lists (django-filter FilterSets)."""

import django_filters
from django.db.models import Q

from records.api.filters import DateTimeFilter, IntegerFilter, TrackedFilterSet

from .choices import (
    ApprovalStatus,
    ApprovalType,
    Designation,
    DisclosureChecklistStatus,
    ReviewPointSeverity,
    ReviewPointStatus,
)
from .models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint


class ApprovalFilterSet(django_filters.FilterSet):
    """Approvals by state, type, subject, people and dates."""

    status = django_filters.MultipleChoiceFilter(
        choices=ApprovalStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    approval_type = django_filters.MultipleChoiceFilter(
        choices=ApprovalType.choices, help_text="One or more approval types."
    )
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    client_code = django_filters.CharFilter(
        field_name="engagement__client_code",
        lookup_expr="iexact",
        help_text="Client code of the engagement (exact, case-insensitive).",
    )
    artefact_id = django_filters.UUIDFilter(help_text="Id of the artefact under review.")
    workflow_run_id = django_filters.UUIDFilter(help_text="Id of the run it releases.")
    requested_by_id = IntegerFilter(help_text="Id of the requester.")
    approver_id = IntegerFilter(help_text="Id of the user who decided.")
    designated_approver_id = IntegerFilter(help_text="Id of the designated approver.")
    revoked_by_id = IntegerFilter(help_text="Id of the user who revoked it.")
    requested_after = DateTimeFilter(
        field_name="requested_at", lookup_expr="gte", help_text="Requested at or after."
    )
    requested_before = DateTimeFilter(
        field_name="requested_at", lookup_expr="lte", help_text="Requested at or before."
    )
    reviewed_after = DateTimeFilter(
        field_name="reviewed_at", lookup_expr="gte", help_text="Decided at or after."
    )
    reviewed_before = DateTimeFilter(
        field_name="reviewed_at", lookup_expr="lte", help_text="Decided at or before."
    )
    expires_after = DateTimeFilter(
        field_name="expires_at", lookup_expr="gte", help_text="Expires at or after."
    )
    expires_before = DateTimeFilter(
        field_name="expires_at", lookup_expr="lte", help_text="Expires at or before."
    )
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")

    class Meta:
        model = Approval
        fields = ()


class ReviewPointFilterSet(TrackedFilterSet):
    """Review points by approval, engagement, state, severity, people and subject."""

    approval_id = django_filters.UUIDFilter(help_text="Id of the approval.")
    engagement_id = django_filters.UUIDFilter(
        field_name="approval__engagement_id", help_text="Id of the engagement."
    )
    status = django_filters.MultipleChoiceFilter(
        choices=ReviewPointStatus.choices, help_text="One or more statuses."
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=ReviewPointSeverity.choices, help_text="One or more severities."
    )
    raised_by_id = IntegerFilter(help_text="Id of the reviewer who raised it.")
    responded_by_id = IntegerFilter(help_text="Id of the user who answered it.")
    resolved_by_id = IntegerFilter(help_text="Id of the user who resolved it.")
    artefact_id = django_filters.UUIDFilter(help_text="Id of the artefact it concerns.")
    workflow_run_id = django_filters.UUIDFilter(help_text="Id of the run it concerns.")
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")

    class Meta:
        model = ReviewPoint
        fields = ()


class DisclosureChecklistFilterSet(TrackedFilterSet):
    """Disclosure checklists by engagement, state and whether they are frozen."""

    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    status = django_filters.MultipleChoiceFilter(
        choices=DisclosureChecklistStatus.choices, help_text="One or more statuses."
    )
    responsible_actuary_id = IntegerFilter(help_text="Id of the responsible actuary.")
    frozen_into_id = django_filters.UUIDFilter(help_text="Id of the final sign-off it froze into.")
    frozen = django_filters.BooleanFilter(
        field_name="frozen_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: only checklists frozen into a final sign-off; false: only open ones.",
    )

    class Meta:
        model = DisclosureChecklist
        fields = ()


class ProfessionalQualificationFilterSet(TrackedFilterSet):
    """Qualifications by holder, designation and validity."""

    user_id = IntegerFilter(help_text="Id of the holder.")
    designation = django_filters.MultipleChoiceFilter(
        choices=Designation.choices, help_text="One or more designations."
    )
    issuing_body = django_filters.CharFilter(
        lookup_expr="icontains", help_text="Issuing body (contains, case-insensitive)."
    )
    valid_on = django_filters.DateFilter(
        method="filter_valid_on", help_text="Only qualifications valid on this date."
    )

    class Meta:
        model = ProfessionalQualification
        fields = ()

    def filter_valid_on(self, queryset, name, value):
        """Keep qualifications valid on the given day (open-ended ones included)."""
        return queryset.filter(valid_from__lte=value).filter(
            Q(valid_until__isnull=True) | Q(valid_until__gte=value)
        )
