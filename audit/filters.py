"""Filters of the audit log, backup and recovery lists (django-filter FilterSets)."""

import django_filters

from records.api.filters import DateTimeFilter, IntegerFilter, TrackedFilterSet

from .choices import AuditAction, BackupStatus, BackupType, RecoveryStatus, Severity
from .models import AuditLog, Backup, Recovery


class AuditLogFilterSet(django_filters.FilterSet):
    """Audit events by action, severity, resource, user, engagement, session, trace and time."""

    action = django_filters.MultipleChoiceFilter(
        choices=AuditAction.choices, help_text="One or more actions (repeat the parameter)."
    )
    severity = django_filters.MultipleChoiceFilter(
        choices=Severity.choices, help_text="One or more severities."
    )
    resource_type = django_filters.CharFilter(help_text='Resource type, e.g. "artefact".')
    resource_id = django_filters.UUIDFilter(help_text="Id of the resource.")
    user_id = IntegerFilter(help_text="Id of the acting user.")
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    session_id = django_filters.UUIDFilter(help_text="Id of the chat session.")
    trace_id = django_filters.CharFilter(help_text="AI agent trace id.")
    created_after = DateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="At or after (ISO 8601)."
    )
    created_before = DateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="At or before (ISO 8601)."
    )
    sequence_after = IntegerFilter(
        field_name="sequence", lookup_expr="gt", help_text="Only entries after this sequence."
    )

    class Meta:
        model = AuditLog
        fields = ()


class BackupFilterSet(TrackedFilterSet):
    """Backups by state, type, engagement and dates."""

    status = django_filters.MultipleChoiceFilter(
        choices=BackupStatus.choices, help_text="One or more statuses."
    )
    backup_type = django_filters.MultipleChoiceFilter(
        choices=BackupType.choices, help_text="One or more backup types."
    )
    engagement_id = django_filters.UUIDFilter(help_text="Id of the engagement.")
    expires_before = DateTimeFilter(
        field_name="expires_at", lookup_expr="lte", help_text="Expires at or before."
    )

    class Meta:
        model = Backup
        fields = ()


class RecoveryFilterSet(TrackedFilterSet):
    """Recoveries by state, backup, engagement and dates."""

    status = django_filters.MultipleChoiceFilter(
        choices=RecoveryStatus.choices, help_text="One or more statuses."
    )
    backup_id = django_filters.UUIDFilter(help_text="Id of the backup restored.")
    engagement_id = django_filters.UUIDFilter(help_text="Id of the target engagement.")

    class Meta:
        model = Recovery
        fields = ()
