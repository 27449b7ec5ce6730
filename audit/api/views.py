"""API views of the audit log, backups and recoveries: read-only, scoped to your engagements."""

from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters, viewsets

from records.api.filters import FilterBackend
from records.api.pagination import CursorPagination
from records.api.viewsets import ServiceViewSetMixin
from records.scoping import engagements_visible_to, sees_every_engagement

from ..filters import AuditLogFilterSet, BackupFilterSet, RecoveryFilterSet
from ..models import AuditLog, Backup, Recovery
from .serializers import AuditLogSerializer, BackupSerializer, RecoverySerializer


class AuditLogPagination(CursorPagination):
    """Newest first, in chain order: the cursor is the entry's sequence number."""

    ordering = "-sequence"


@extend_schema_view(
    list=extend_schema(
        summary="List audit events, newest first (cursor pagination)",
        description="Events of the engagements you are on, and your own; superusers and "
        "holders of engagements.view_all_engagements see every event.",
    )
)
class AuditLogViewSet(ServiceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """The append-only audit log: nobody changes or deletes an event, through any path."""

    queryset = AuditLog.objects.all()
    serializer_class = AuditLogSerializer
    filterset_class = AuditLogFilterSet
    # Cursor pagination orders by sequence; a client-chosen ordering would break it.
    filter_backends = (FilterBackend, filters.SearchFilter)
    pagination_class = AuditLogPagination
    search_fields = ("description", "resource_type")
    engagement_path = None

    def get_queryset(self):
        queryset = super().get_queryset()
        user = self.request.user
        if sees_every_engagement(user):
            return queryset
        # The ids as a list, not a subquery: PostgreSQL then reads the entries of those
        # engagements and the user's own from their indexes (a BitmapOr) and sorts that
        # share of the log, instead of walking the whole chain backwards until a page of
        # theirs turns up (issue 18; tests/audit/test_query_plans.py).
        visible = list(engagements_visible_to(user).values_list("pk", flat=True).distinct())
        return queryset.filter(Q(engagement_id__in=visible) | Q(user=user))


class BackupViewSet(ServiceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Backup records (written by the backup command); those of your engagements."""

    queryset = Backup.objects.all()
    serializer_class = BackupSerializer
    filterset_class = BackupFilterSet
    search_fields = ("name", "description")
    ordering_fields = ("created_at", "completed_at", "expires_at", "name", "status")


class RecoveryViewSet(ServiceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Recovery records (written by the restore command); those of your engagements."""

    queryset = Recovery.objects.all()
    serializer_class = RecoverySerializer
    filterset_class = RecoveryFilterSet
    search_fields = ("name", "description")
    ordering_fields = ("created_at", "completed_at", "name", "status")
