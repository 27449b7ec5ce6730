"""Admin for workflow runs."""

from django.contrib import admin

from audit.admin import RecordAdmin

from .models import WorkflowRun


@admin.register(WorkflowRun)
class WorkflowRunAdmin(RecordAdmin):
    list_display = (
        "name",
        "engagement",
        "workflow_type",
        "period",
        "status",
        "progress",
        "started_at",
        "completed_at",
        "agent_name",
    )
    list_filter = ("status", "workflow_type", "agent_name")
    search_fields = ("name", "description", "period", "engagement__name", "engagement__client_code")
    list_select_related = ("engagement",)
    autocomplete_fields = ("engagement",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "started_at",
        "completed_at",
        "current_step",
        "output_summary",
        "error_message",
        "error_details",
        "metrics",
    )

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.progress_percent}%"
