"""API views of the audit log, backups and recoveries: read-only, scoped to your engagements."""

import dataclasses

from django.db import connection
from django.db.models import Q
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import filters, viewsets

from records.api.filters import FilterBackend
from records.api.pagination import CursorPagination
from records.api.viewsets import ServiceViewSetMixin
from records.scoping import engagements_visible_to, sees_every_engagement

from ..filters import AuditLogFilterSet, BackupFilterSet, RecoveryFilterSet
from ..models import AuditLog, Backup, Recovery
from ..selectors import AuditLogBranches, audit_log_first_in_branches
from .serializers import AuditLogSerializer, BackupSerializer, RecoverySerializer


class AuditLogPagination(CursorPagination):
    """Newest first, in chain order: the cursor is the entry's sequence number.

    When the view names the branches a user's share of the log is read from
    (`view.audit_branches`), the page is taken from the first entries of each branch
    within the cursor's bound (audit.selectors.audit_log_first_in_branches), so its
    cost does not grow with the log nor with how long ago those branches were active.
    """

    ordering = "-sequence"

    def paginate_queryset(self, queryset, request, view=None):
        """Narrow the entries to those the page can hold, branch by branch; then paginate."""
        branches = getattr(view, "audit_branches", None)
        ordering = self.get_ordering(request, queryset, view)
        if branches is not None and branches.entries is not None and ordering == (self.ordering,):
            queryset = self.first_in_branches(queryset, request, branches)
        return super().paginate_queryset(queryset, request, view)

    def first_in_branches(self, queryset, request, branches: AuditLogBranches):
        """Return `queryset` narrowed to the entries the page (and the next one's marker) needs.

        The same bound as the page's: the cursor's position (entries before it, or
        after it going back), its offset, the page size and one more to tell whether
        a page follows. The list's filters are in `queryset` and, over the whole log,
        in `branches.entries` (the view's filter_queryset), so in every branch too.
        """
        self.position_field = queryset.model._meta.get_field("sequence")
        cursor = self.decode_cursor(request)
        offset, reverse, position = cursor if cursor is not None else (0, False, None)
        bound = {}
        if position is not None:
            bound["sequence__gt" if reverse else "sequence__lt"] = position
        return audit_log_first_in_branches(
            queryset,
            branches=branches,
            size=offset + self.get_page_size(request) + 1,
            descending=not reverse,
            **bound,
        )


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
    # Set by get_queryset for a user who sees only part of the log, on PostgreSQL.
    audit_branches: AuditLogBranches | None = None

    def get_queryset(self):
        queryset = super().get_queryset()
        user = self.request.user
        if sees_every_engagement(user):
            return queryset
        # The ids as a list, not a subquery. On PostgreSQL the list's page is read branch
        # by branch, the newest entries of each engagement and the user's own from
        # their (…, sequence) indexes (AuditLogPagination), never by walking the chain
        # backwards until a page of theirs turns up (issue 18; test_query_plans.py).
        visible = list(engagements_visible_to(user).values_list("pk", flat=True).distinct())
        if connection.vendor == "postgresql":
            # The list reads its page branch by branch (AuditLogPagination).
            self.audit_branches = AuditLogBranches(engagement_ids=tuple(visible), user_id=user.pk)
        return queryset.filter(Q(engagement_id__in=visible) | Q(user=user))

    def filter_queryset(self, queryset):
        """Return the queryset filtered; keep the same filters over the whole log for the page."""
        if self.audit_branches is not None:
            self.audit_branches = dataclasses.replace(
                self.audit_branches, entries=super().filter_queryset(AuditLog.objects.all())
            )
        return super().filter_queryset(queryset)


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
