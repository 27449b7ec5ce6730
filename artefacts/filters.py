"""Filters of the artefact list (django-filter FilterSets)."""

import django_filters

from records.api.filters import IntegerFilter, MultipleChoiceFilter, TrackedFilterSet

from .choices import ArtefactStatus, ArtefactType, DataProviderType
from .models import Artefact, DataReliance


class ArtefactFilterSet(TrackedFilterSet):
    """Artefacts by state, type, engagement, run, version chain, content and dates."""

    status = MultipleChoiceFilter(
        choices=ArtefactStatus.choices, help_text="One or more statuses (repeat the parameter)."
    )
    artefact_type = MultipleChoiceFilter(
        choices=ArtefactType.choices, help_text="One or more artefact types."
    )
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    client_code = django_filters.CharFilter(
        field_name="engagement__client_code",
        lookup_expr="iexact",
        help_text="Client code of the engagement (exact, case-insensitive).",
    )
    workflow_run_id = django_filters.UUIDFilter(help_text="Id of the run that produced it.")
    previous_version_id = django_filters.UUIDFilter(help_text="Id of the version it replaces.")
    content_hash = django_filters.CharFilter(
        lookup_expr="iexact", help_text="SHA-256 of the bytes (64 hex digits)."
    )
    mime_type = django_filters.CharFilter(help_text='MIME type, e.g. "text/csv".')
    version = IntegerFilter(help_text="Version number (1 for the first upload).")
    latest = django_filters.BooleanFilter(
        method="filter_latest",
        help_text="true: only the newest version of each chain; false: only older ones.",
    )
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")

    class Meta:
        model = Artefact
        fields = ()

    def filter_latest(self, queryset, name, value):
        """Keep the versions no other version replaces (or, false, those replaced)."""
        replaced = Artefact.objects.filter(previous_version__isnull=False).values(
            "previous_version_id"
        )
        if value:
            return queryset.exclude(pk__in=replaced)
        return queryset.filter(pk__in=replaced)


class DataRelianceFilterSet(TrackedFilterSet):
    """Data reliance entries by engagement, artefact, provider, review and data date."""

    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    artefact_id = django_filters.UUIDFilter(help_text="Id of the input artefact.")
    validation_run_id = django_filters.UUIDFilter(help_text="Id of the supporting validation run.")
    provider_type = MultipleChoiceFilter(
        choices=DataProviderType.choices, help_text="One or more provider types."
    )
    provider_name = django_filters.CharFilter(
        lookup_expr="icontains", help_text="Provider name (contains, case-insensitive)."
    )
    reviewed = django_filters.BooleanFilter(help_text="Whether the data was reviewed.")
    data_as_of_after = django_filters.DateFilter(
        field_name="data_as_of", lookup_expr="gte", help_text="Data as of this date or later."
    )
    data_as_of_before = django_filters.DateFilter(
        field_name="data_as_of", lookup_expr="lte", help_text="Data as of this date or earlier."
    )

    class Meta:
        model = DataReliance
        fields = ()
