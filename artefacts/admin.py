"""Admin for artefacts."""

from django.contrib import admin

from audit.admin import RecordAdmin

from .models import Artefact


@admin.register(Artefact)
class ArtefactAdmin(RecordAdmin):
    list_display = (
        "name",
        "engagement",
        "artefact_type",
        "version",
        "status",
        "file_size",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "artefact_type")
    search_fields = ("name", "description", "file_name", "=content_hash", "engagement__name")
    list_select_related = ("engagement", "created_by")
    autocomplete_fields = ("engagement", "workflow_run")
    raw_id_fields = ("previous_version",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "file_name",
        "mime_type",
        "file_size",
        "storage_path",
        "content_hash",
        "version",
        "previous_version",
    )
