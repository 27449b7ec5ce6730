"""Admin for workflow runs: create, edit and move them through `workflows.services`."""

from django.contrib import admin

from audit.admin import RecordAdmin
from config.service_admin import AdminMove, ServiceAdminMixin, adopt, changed_data, form_data
from engagements.selectors import scope_to_user

from .models import WorkflowRun
from .services import (
    EDITABLE_FIELDS,
    EDITABLE_STATUSES,
    workflow_run_cancel,
    workflow_run_create,
    workflow_run_delete,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_resume,
    workflow_run_start,
    workflow_run_update,
)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ServiceAdminMixin, RecordAdmin):
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
        "started_by",
        "completed_at",
        "current_step",
        "output_summary",
        "error_message",
        "error_details",
        "metrics",
    )

    service_object_argument = "run"
    service_moves = (
        AdminMove("queue", "Queue", workflow_run_queue),
        AdminMove("start", "Start", workflow_run_start),
        AdminMove("pause", "Pause", workflow_run_pause),
        AdminMove("resume", "Resume", workflow_run_resume),
        AdminMove("cancel", "Cancel", workflow_run_cancel),
    )
    delete_service = workflow_run_delete

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        # A run stays in its engagement; once started, its record is kept as it ran.
        extra = ["engagement"]
        if obj.status not in EDITABLE_STATUSES:
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def save_model(self, request, obj, form, change):
        if not change:
            saved = workflow_run_create(
                engagement=form.cleaned_data["engagement"],
                actor=request.user,
                **form_data(form, EDITABLE_FIELDS),
            )
        else:
            data = changed_data(form, EDITABLE_FIELDS)
            if not data:
                return
            saved = workflow_run_update(run=obj, actor=request.user, data=data)
        adopt(obj, saved)
