"""Admin for artefacts: upload, describe, version and move them through `artefacts.services`.

The bytes never change in place: the file is read-only once stored, and changed
content is uploaded as a new version from the change page.
"""

from django import forms
from django.contrib import admin

from audit.admin import RecordAdmin
from config.service_admin import AdminMove, ServiceAdminMixin, adopt, changed_data
from engagements.selectors import scope_to_user

from .choices import ArtefactStatus
from .models import Artefact
from .services import (
    EDITABLE_FIELDS,
    artefact_archive,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    artefact_submit_for_review,
    artefact_update,
)


class NewVersionForm(forms.Form):
    """The changed file of a new version, and what changed."""

    upload = forms.FileField(label="File")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Leave empty to keep the previous version's description.",
    )


def artefact_upload_new_version(*, artefact, actor, upload, description=""):
    """Store `upload` as the next version of `artefact` (admin form adapter)."""
    return artefact_new_version(
        artefact=artefact, actor=actor, upload=upload, description=description or None
    )


@admin.register(Artefact)
class ArtefactAdmin(ServiceAdminMixin, RecordAdmin):
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

    service_object_argument = "artefact"
    service_moves = (
        AdminMove("submit_for_review", "Submit for review", artefact_submit_for_review),
        AdminMove(
            "new_version",
            "Upload new version",
            artefact_upload_new_version,
            form=NewVersionForm,
            available=lambda artefact: artefact.can("supersede"),
            bulk=False,
        ),
        AdminMove("archive", "Archive", artefact_archive),
    )
    delete_service = artefact_delete

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        # Stored bytes and their engagement never change; only a draft's description does.
        extra = ["file", "engagement", "workflow_run"]
        if obj.status != ArtefactStatus.DRAFT:
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            form.base_fields["file"].required = True
            form.base_fields["name"].required = False
            form.base_fields["name"].help_text = "Empty: the file's name."
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            saved = artefact_create(
                engagement=data["engagement"],
                upload=data["file"],
                actor=request.user,
                name=data.get("name", ""),
                artefact_type=data["artefact_type"],
                description=data.get("description", ""),
                workflow_run=data.get("workflow_run"),
                metadata=data.get("metadata"),
            )
        else:
            changes = changed_data(form, EDITABLE_FIELDS)
            if not changes:
                return
            saved = artefact_update(artefact=obj, actor=request.user, data=changes)
        adopt(obj, saved)
