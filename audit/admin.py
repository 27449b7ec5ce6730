"""Admin for the audit trail: the append-only log, an engagement's timeline, backups.

The admin base every domain admin uses is `records.admin`; the user admin (deactivate
instead of delete) is `engagements.admin.users`, since it picks people by team.
"""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from records.admin import EngagementListFilter, RecordAdmin, UserListFilter
from records.scoping import (
    engagement_can_view,
    engagement_model,
    engagements_visible_to,
    scope_to_user,
    sees_every_engagement,
)

from .models import AuditLog, Backup, Recovery
from .selectors import TIMELINE_DEFAULT_LIMIT, engagement_timeline

TIMELINE_MAX_LIMIT = 2000
NO_ENGAGEMENT = "No engagement with this id."
# Below this many rows an exact COUNT(*) is cheap, and exact is better.
EXACT_COUNT_THRESHOLD = 10_000


class EstimatedCountPaginator(Paginator):
    """Paginator that asks PostgreSQL's planner for the row count instead of COUNT(*).

    COUNT(*) reads every row: seconds on millions of audit entries. Unfiltered,
    the estimate is pg_class.reltuples (kept fresh by autovacuum's ANALYZE);
    filtered, it is the planner's row estimate for the query. Small results get
    an exact count. Other databases count exactly.
    """

    @cached_property
    def count(self):
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        estimate = self._estimate(queryset, connection)
        if estimate is None or estimate < EXACT_COUNT_THRESHOLD:
            return super().count
        return estimate

    @staticmethod
    def _estimate(queryset, connection) -> int | None:
        if not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            # reltuples is -1 until the table is first analyzed.
            return int(row[0]) if row and row[0] >= 0 else None
        plan = json.loads(queryset.explain(format="json"))
        return int(plan[0]["Plan"]["Plan Rows"])


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """The audit log is its own record: nobody adds, changes or deletes rows here.

    Built for millions of rows: an estimated count (no COUNT(*) per page), only
    filters served by an index and with no query over the log to build them,
    exact-match search on indexed columns, keyset-friendly ordering by sequence.
    """

    list_display = (
        "sequence",
        "created_at",
        "action",
        "severity",
        "user",
        "resource_type",
        "resource_id",
        "engagement_link",
        "ip_address",
    )
    list_filter = ("action", "severity", UserListFilter, EngagementListFilter, "created_at")
    # Exact lookups only: each is an index probe; a term that is not a valid
    # UUID or number is skipped for that field instead of scanning the table.
    search_fields = (
        "sequence__exact",
        "resource_id__exact",
        "engagement_id__exact",
        "session_id__exact",
        "trace_id__exact",
        "entry_hash__exact",
    )
    list_select_related = ("user",)
    ordering = ("-sequence",)
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        # The API's rule: the events of your engagements, and your own.
        queryset = super().get_queryset(request)
        user = request.user
        if sees_every_engagement(user):
            return queryset
        visible = engagements_visible_to(user).values("pk")
        return queryset.filter(Q(engagement_id__in=visible) | Q(user=user))

    def get_readonly_fields(self, request, obj=None):
        return tuple(f.name for f in self.model._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="engagement", ordering="engagement_id")
    def engagement_link(self, obj):
        if obj.engagement_id is None:
            return "-"
        url = reverse("admin:audit_auditlog_timeline", args=(obj.engagement_id,))
        return format_html('<a href="{}" title="Timeline">{}</a>', url, obj.engagement_id)

    def get_urls(self):
        timeline = path(
            "timeline/<uuid:engagement_id>/",
            self.admin_site.admin_view(self.timeline_view),
            name="audit_auditlog_timeline",
        )
        return [timeline, *super().get_urls()]

    def timeline_view(self, request, engagement_id):
        """Show an engagement's audit events and change history, newest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        engagement = engagement_model().all_objects.filter(pk=engagement_id).first()
        if engagement is None or not engagement_can_view(engagement=engagement, user=request.user):
            # Another team's engagement is answered as if it did not exist.
            raise Http404(NO_ENGAGEMENT)
        try:
            limit = int(request.GET.get("limit", TIMELINE_DEFAULT_LIMIT))
        except ValueError:
            limit = TIMELINE_DEFAULT_LIMIT
        limit = max(1, min(limit, TIMELINE_MAX_LIMIT))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Timeline of {engagement}",
            "engagement": engagement,
            "entries": engagement_timeline(engagement, limit=limit),
            "limit": limit,
        }
        return TemplateResponse(request, "admin/audit/engagement_timeline.html", context)


class EngagementScopedAdmin(RecordAdmin):
    """Admin of maintenance records: those of the user's engagements (all for admins)."""

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)


@admin.register(Backup)
class BackupAdmin(EngagementScopedAdmin):
    list_display = (
        "name",
        "backup_type",
        "status",
        "engagement",
        "record_count",
        "file_size_bytes",
        "completed_at",
        "expires_at",
    )
    list_filter = ("status", "backup_type", "storage_provider")
    search_fields = ("name", "description", "storage_path", "checksum")
    list_select_related = ("engagement",)
    autocomplete_fields = ("engagement",)
    ordering = ("-created_at",)


@admin.register(Recovery)
class RecoveryAdmin(EngagementScopedAdmin):
    list_display = ("name", "backup", "status", "engagement", "records_recovered", "completed_at")
    list_filter = ("status",)
    search_fields = ("name", "description", "backup__name")
    list_select_related = ("backup", "engagement")
    autocomplete_fields = ("engagement",)
    raw_id_fields = ("backup",)
    ordering = ("-created_at",)
