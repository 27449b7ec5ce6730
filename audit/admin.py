"""Admin for the audit trail, and the admin base class every domain model admin uses."""

import json
import uuid

from django.contrib import admin, messages
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections, router
from django.db.models import Q
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from config.exceptions import DomainError
from conversations.models import Session
from engagements.models import Engagement, EngagementMember
from engagements.selectors import (
    VIEW_ALL_PERMISSION,
    engagement_can_view,
    engagements_visible_to,
    scope_to_user,
)

from .models import AuditLog, Backup, Recovery
from .selectors import TIMELINE_DEFAULT_LIMIT, engagement_timeline, user_has_audit_trail
from .services import user_deactivate
from .transactions import audited_transaction

TIMELINE_MAX_LIMIT = 2000
NO_ENGAGEMENT = "No engagement with this id."
# Below this many rows an exact COUNT(*) is cheap, and exact is better.
EXACT_COUNT_THRESHOLD = 10_000

# Users other than superusers pick a designated approver among the people on their
# engagements' teams (the service refuses anyone else); (app_label, model_name, field).
TEAM_USER_FIELDS = frozenset({("approvals", "approval", "designated_approver")})

TRACKED_FIELDS = ("created_at", "created_by", "updated_at", "updated_by")
SOFT_DELETE_FIELDS = ("is_deleted", "deleted_at", "deleted_by")


class RecordAdmin(SimpleHistoryAdmin):
    """Admin of a domain record: history view, audit fields read-only, stamped with the user.

    `status` is always read-only: states change only through lifecycle actions.
    Deleting a soft-deletable record hides it instead of destroying it.
    """

    readonly_record_fields = ("id", "status", *TRACKED_FIELDS, *SOFT_DELETE_FIELDS, "trace_id")

    # Saving and deleting run in an audited transaction, not Django's plain atomic
    # block: the services they call then append their audit events when the whole
    # page's work is done, taking the chain head last (see audit.transactions).
    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return self._changeform_view(request, object_id, form_url, extra_context)
        with audited_transaction(using=router.db_for_write(self.model)):
            return self._changeform_view(request, object_id, form_url, extra_context)

    @csrf_protect_m
    def delete_view(self, request, object_id, extra_context=None):
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return self._delete_view(request, object_id, extra_context)
        with audited_transaction(using=router.db_for_write(self.model)):
            return self._delete_view(request, object_id, extra_context)

    def get_readonly_fields(self, request, obj=None):
        own = tuple(super().get_readonly_fields(request, obj))
        model_fields = {f.name for f in self.model._meta.get_fields()}
        shared = tuple(f for f in self.readonly_record_fields if f in model_fields)
        return own + tuple(f for f in shared if f not in own)

    def save_model(self, request, obj, form, change):
        if hasattr(obj, "updated_by_id"):
            if not change:
                obj.created_by = request.user
            obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        if hasattr(obj, "soft_delete"):
            obj.soft_delete(request.user)
        else:
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        if hasattr(queryset.model, "soft_delete"):
            for obj in queryset:
                obj.soft_delete(request.user)
        else:
            super().delete_queryset(request, queryset)

    def history_view(self, request, object_id, extra_context=None):
        # django-simple-history falls back to the history rows of an object the queryset
        # does not hold: another team's object must stay as if it did not exist.
        if not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _in_scope(self, request, object_id) -> bool:
        """Return whether the user's queryset holds the object (superusers: deleted ones too)."""
        if request.user.is_superuser:
            return True
        return self.get_object(request, unquote(object_id)) is not None

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A form offers (and accepts) only the engagements, runs, artefacts and chat
        # sessions the user may see: a hand-typed id of another engagement's object
        # is "not a valid choice", as if it did not exist.
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if formfield is not None and hasattr(formfield, "queryset"):
            formfield.queryset = scoped_choices(formfield.queryset, request.user)
        return formfield


def scoped_choices(queryset, user):
    """Return the rows of `queryset` (engagements, or rows of an engagement) `user` may see.

    Chat sessions are their owner's; other models are returned as they are.
    """
    model = queryset.model
    if model is Engagement:
        return scope_to_user(queryset, user, engagement_path="")
    if model is Session:
        return queryset if user.is_superuser else queryset.filter(user=user)
    if any(f.name == "engagement" and f.is_relation for f in model._meta.get_fields()):
        return scope_to_user(queryset, user)
    return queryset


def sees_every_engagement(user) -> bool:
    """Return whether `user` sees every engagement (superuser or the global view permission)."""
    return user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION)


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


class EngagementListFilter(admin.SimpleListFilter):
    """Filter by engagement: those the user may see (by the indexed engagement_id column).

    Works on the audit log's engagement_id and on every model with an engagement
    foreign key (whose column is engagement_id too); a model that reaches its
    engagement through another row names the lookup in `engagement_field`.
    """

    title = "engagement"
    parameter_name = "engagement_id"
    engagement_field = "engagement_id"

    def lookups(self, request, model_admin):
        if request.user.is_superuser:
            # Deleted engagements keep their audit trail, runs and artefacts.
            engagements = Engagement.all_objects.all()
        else:
            engagements = engagements_visible_to(request.user)
        engagements = engagements.order_by("client_code", "name").only("id", "client_code", "name")
        return [(str(engagement.pk), str(engagement)) for engagement in engagements]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            engagement_id = uuid.UUID(self.value())
        except ValueError:
            return queryset.none()
        return queryset.filter(**{self.engagement_field: engagement_id})


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
    list_filter = ("action", "severity", "user", EngagementListFilter, "created_at")
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
        engagement = Engagement.all_objects.filter(pk=engagement_id).first()
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


User = get_user_model()


@admin.action(description="Deactivate selected users")
def deactivate_users(modeladmin, request, queryset):
    """Deactivate the selected active users (they keep their place in the audit trail)."""
    deactivated = 0
    for user in queryset.filter(is_active=True):
        try:
            user_deactivate(user=user, actor=request.user)
        except DomainError as error:
            modeladmin.message_user(request, error.message, messages.ERROR)
        else:
            deactivated += 1
    modeladmin.message_user(request, f"Deactivated {deactivated} user(s).", messages.SUCCESS)


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    """User admin that deactivates users instead of deleting those in the audit trail."""

    actions = (deactivate_users,)

    def get_queryset(self, request):
        # Staff pick colleagues who can still act; a designated approver must moreover
        # be on the team of one of their engagements (the autocomplete says which field).
        queryset = super().get_queryset(request)
        user = request.user
        if user.is_superuser:
            return queryset
        queryset = queryset.filter(is_active=True)
        if _autocomplete_source(request) in TEAM_USER_FIELDS:
            teams = engagements_visible_to(user).values("pk")
            queryset = queryset.filter(
                pk__in=EngagementMember.objects.filter(engagement__in=teams).values("user")
            )
        return queryset

    def has_delete_permission(self, request, obj=None):
        # Without an object this is the bulk delete action, which would fail
        # half-way on the first user with a trail: offer deactivation instead.
        if obj is None or user_has_audit_trail(obj):
            return False
        return super().has_delete_permission(request, obj)


def _autocomplete_source(request) -> tuple[str, str, str] | None:
    """Return (app_label, model_name, field_name) of the autocomplete being served, if any."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name != "autocomplete":
        return None
    return (
        request.GET.get("app_label", ""),
        request.GET.get("model_name", ""),
        request.GET.get("field_name", ""),
    )


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
