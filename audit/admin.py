"""Admin for the audit trail: the append-only log, an engagement's timeline, backups.

The admin base every domain admin uses is `records.admin`; the user admin (deactivate
instead of delete) is `engagements.admin.users`, since it picks people by team.
"""

import json

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
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

from .file_note import engagement_file_note, people_on
from .file_note_views import FileNoteFilterForm, file_note_docx_response
from .models import AuditLog, Backup, Recovery

TIMELINE_MAX_LIMIT = 2000
TIMELINE_PAGE_SIZE = 50
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


def _resource_names(events) -> dict:
    """Return {event pk: (resource name, admin URL)}: one query per kind of resource."""
    wanted: dict[str, set] = {}
    for event in events:
        if event.resource_id is not None and event.resource_type:
            wanted.setdefault(event.resource_type, set()).add(event.resource_id)
    models_by_name = {}
    for model in apps.get_models():
        models_by_name.setdefault(model._meta.model_name, model)
    found = {}
    for resource_type, ids in wanted.items():
        model = models_by_name.get(resource_type)
        if model is None:
            continue
        objects = model._base_manager.filter(pk__in=ids)
        if related := _names_path(model):  # select_related() with no names is deprecated
            objects = objects.select_related(*related)
        for obj in objects:
            found[(resource_type, str(obj.pk))] = obj
    names = {}
    for event in events:
        model = models_by_name.get(event.resource_type)
        kind = str(model._meta.verbose_name) if model is not None else event.resource_type
        obj = found.get((event.resource_type, str(event.resource_id)))
        if obj is None:
            names[event.pk] = (
                kind.capitalize() if event.resource_id is None else f"{kind} (removed)",
                "",
            )
            continue
        try:
            url = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=(obj.pk,)
            )
        except NoReverseMatch:
            url = ""
        names[event.pk] = (f"{kind.capitalize()} “{obj}”", url)
    return names


def _names_path(model) -> list[str]:
    """Return the relations a row's name reads, two levels deep (an approval's artefact,
    a review point's approval and its run): read with the rows, not one query each."""
    paths = []
    for field in model._meta.concrete_fields:
        if (field.many_to_one or field.one_to_one) and field.related_model is not None:
            paths.append(field.name)
            paths += [
                f"{field.name}__{inner.name}"
                for inner in field.related_model._meta.concrete_fields
                if (inner.many_to_one or inner.one_to_one) and inner.related_model is not None
            ]
    return paths


class NamedAuditChangeList(ChangeList):
    """The audit log's list, with each page's resources and engagements named in bulk."""

    def get_results(self, request):
        super().get_results(request)
        events = list(self.result_list)
        names = _resource_names(events)
        engagement_ids = {event.engagement_id for event in events if event.engagement_id}
        engagements = {
            engagement.pk: str(engagement)
            for engagement in engagement_model().all_objects.filter(pk__in=engagement_ids)
        }
        for event in events:
            event.resource_named = names[event.pk]
            if event.engagement_id:
                event.engagement_named = engagements.get(
                    event.engagement_id, "(removed engagement)"
                )
        self.result_list = events


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
        "action_label",
        "severity",
        "user",
        "resource_link",
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
        return (*(f.name for f in self.model._meta.fields), "resource_link", "engagement_link")

    def get_fields(self, request, obj=None):
        # The resource and engagement by name, with links, in place of their ids.
        named = {"resource_type": "resource_link", "engagement_id": "engagement_link"}
        fields = [named.get(f.name, f.name) for f in self.model._meta.fields]
        return [f for f in fields if f != "resource_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changelist(self, request, **kwargs):
        return NamedAuditChangeList

    @admin.display(description="event", ordering="action")
    def action_label(self, obj):
        return obj.get_action_display()

    @admin.display(description="resource")
    def resource_link(self, obj):
        label, url = getattr(obj, "resource_named", None) or _resource_names([obj])[obj.pk]
        if url:
            return format_html('<a href="{}">{}</a>', url, label)
        return label

    @admin.display(description="engagement", ordering="engagement_id")
    def engagement_link(self, obj):
        if obj.engagement_id is None:
            return "-"
        name = getattr(obj, "engagement_named", None)
        if name is None:
            engagement = engagement_model().all_objects.filter(pk=obj.engagement_id).first()
            name = str(engagement) if engagement is not None else "(removed engagement)"
        url = reverse("admin:audit_auditlog_timeline", args=(obj.engagement_id,))
        return format_html('<a href="{}" title="File note of the engagement">{}</a>', url, name)

    def get_urls(self):
        timeline = path(
            "timeline/<uuid:engagement_id>/",
            self.admin_site.admin_view(self.timeline_view),
            name="audit_auditlog_timeline",
        )
        return [timeline, *super().get_urls()]

    def timeline_view(self, request, engagement_id):
        """Show an engagement's file note: one sentence per business event, newest first.

        Filtered by kind, person and date (access, chat and progress hidden unless
        asked for), paginated, and exported to Word with `?export=docx`.
        """
        if not self.has_view_permission(request):
            raise PermissionDenied
        engagement = engagement_model().all_objects.filter(pk=engagement_id).first()
        if engagement is None or not engagement_can_view(engagement=engagement, user=request.user):
            # Another team's engagement is answered as if it did not exist.
            raise Http404(NO_ENGAGEMENT)
        form = FileNoteFilterForm(request.GET or None)
        note_filter = form.note_filter()
        everything = engagement_file_note(
            engagement, limit=TIMELINE_MAX_LIMIT, note_filter=note_filter.without_person()
        )
        form.offer_people(people_on(everything))
        entries = [entry for entry in everything if note_filter.keeps(entry)]
        if request.GET.get("export") == "docx":
            return file_note_docx_response(engagement, entries, form.described())
        page = Paginator(entries, TIMELINE_PAGE_SIZE).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        query.pop("export", None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"File note of {engagement}",
            "engagement": engagement,
            "form": form,
            "page": page,
            "entries": page.object_list,
            "count": len(entries),
            "query": query.urlencode(),
            "filters_described": form.described(),
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
