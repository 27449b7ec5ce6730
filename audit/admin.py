"""Admin for the audit trail, and the admin base class every domain model admin uses."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import AuditLog, Backup, Recovery

TRACKED_FIELDS = ("created_at", "created_by", "updated_at", "updated_by")
SOFT_DELETE_FIELDS = ("is_deleted", "deleted_at", "deleted_by")


class RecordAdmin(SimpleHistoryAdmin):
    """Admin of a domain record: history view, audit fields read-only, stamped with the user.

    `status` is always read-only: states change only through lifecycle actions.
    Deleting a soft-deletable record hides it instead of destroying it.
    """

    readonly_record_fields = ("id", "status", *TRACKED_FIELDS, *SOFT_DELETE_FIELDS, "trace_id")

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


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """The audit log is its own record: nobody adds, changes or deletes rows here."""

    list_display = (
        "created_at",
        "action",
        "severity",
        "user",
        "resource_type",
        "resource_id",
        "engagement_id",
        "ip_address",
    )
    list_filter = ("severity", "action", "resource_type", "created_at")
    search_fields = ("description", "resource_type", "=resource_id", "=engagement_id", "=trace_id")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return tuple(f.name for f in self.model._meta.fields)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Backup)
class BackupAdmin(RecordAdmin):
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
class RecoveryAdmin(RecordAdmin):
    list_display = ("name", "backup", "status", "engagement", "records_recovered", "completed_at")
    list_filter = ("status",)
    search_fields = ("name", "description", "backup__name")
    list_select_related = ("backup", "engagement")
    autocomplete_fields = ("engagement",)
    raw_id_fields = ("backup",)
    ordering = ("-created_at",)
