"""Admin for engagements: the actuaries' main screen, with team, runs, artefacts, approvals."""

from django.contrib import admin

from approvals.models import Approval
from artefacts.models import Artefact
from audit.admin import RecordAdmin
from workflows.models import WorkflowRun

from .models import Engagement, EngagementMember


class TeamInline(admin.TabularInline):
    model = EngagementMember
    fk_name = "engagement"
    extra = 0
    fields = ("user", "role")
    autocomplete_fields = ("user",)
    verbose_name_plural = "team"


class ReadOnlyInline(admin.TabularInline):
    """Summary rows of an engagement's contents; open a row to work on it."""

    extra = 0
    show_change_link = True
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class WorkflowRunInline(ReadOnlyInline):
    model = WorkflowRun
    fields = ("name", "workflow_type", "period", "status", "started_at", "completed_at")
    ordering = ("-created_at",)


class ArtefactInline(ReadOnlyInline):
    model = Artefact
    fk_name = "engagement"
    fields = ("name", "artefact_type", "version", "status", "file_size", "created_at")
    ordering = ("-created_at",)


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fk_name = "engagement"
    fields = ("approval_type", "artefact", "status", "requested_by", "approver", "requested_at")
    ordering = ("-requested_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("artefact", "requested_by", "approver")


@admin.register(Engagement)
class EngagementAdmin(RecordAdmin):
    list_display = (
        "client_code",
        "name",
        "client_name",
        "engagement_type",
        "status",
        "lead_actuary",
        "reviewer",
        "due_date",
    )
    list_filter = ("status", "engagement_type", "due_date")
    search_fields = ("client_code", "client_name", "name", "description")
    list_select_related = ("lead_actuary", "reviewer")
    autocomplete_fields = ("lead_actuary", "reviewer")
    date_hierarchy = "due_date"
    ordering = ("-created_at",)
    inlines = (TeamInline, WorkflowRunInline, ArtefactInline, ApprovalInline)
    fieldsets = (
        (None, {"fields": ("client_code", "client_name", "name", "description")}),
        (
            "Scope",
            {"fields": ("engagement_type", "status", "period_start", "period_end", "due_date")},
        ),
        ("People", {"fields": ("lead_actuary", "reviewer")}),
        ("Settings", {"classes": ("collapse",), "fields": ("config", "metadata")}),
        (
            "Record",
            {
                "classes": ("collapse",),
                "fields": ("id", "created_at", "created_by", "updated_at", "updated_by"),
            },
        ),
    )


@admin.register(EngagementMember)
class EngagementMemberAdmin(RecordAdmin):
    list_display = ("engagement", "user", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("engagement__name", "engagement__client_code", "user__username")
    list_select_related = ("engagement", "user")
    autocomplete_fields = ("engagement", "user")
    ordering = ("engagement", "role")
