"""Admin for artefacts, through `artefacts.services`.

The bytes never change in place: the file is an input of the add form only and is
shown, never edited, on the change page; changed content is uploaded as a new
version from the change page. Every read of the bytes (download, image and CSV
previews) goes through `artefact_open_for_download`, so what is shown is what was
stored, and every read is on record.

Requesting an artefact's review is offered on its page by the approvals app (a page
extension, `approvals.admin`), which sits above this one.
"""

from __future__ import annotations

import csv
import logging
from functools import update_wrapper

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.csrf import csrf_exempt

from engagements.selectors import scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
)
from records.exceptions import DomainError

from ..choices import ArtefactStatus
from ..files import FileTooLarge, StoredFile, discard_stored_file, install_max_size_upload_handler
from ..models import Artefact
from ..services import (
    ACCESS_DOWNLOAD,
    ACCESS_PREVIEW,
    EDITABLE_FIELDS,
    artefact_archive,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    artefact_open_for_download,
    artefact_submit_for_review,
    artefact_update,
)
from .previews import (
    CSV_PREVIEW_TYPES,
    INLINE_IMAGE_TYPES,
    PREVIEW_REFUSED,
    PREVIEW_UNREADABLE,
    csv_preview,
)

logger = logging.getLogger(__name__)

# The add form, the file last: an upload stopped at the size limit loses the fields
# that follow the file in the request body.
ADD_FIELDS = ("engagement", "workflow_run", "artefact_type", "name", "description", "metadata")
UPLOAD_FIELD = "file"
STORED_FILE_FIELDS = (
    "file_name",
    "download_link",
    "mime_type",
    "file_size_display",
    "content_hash",
    "storage_path_code",
    "storage_bucket",
)
VERSION_FIELDS = ("version", "previous_version", "version_chain")
REVIEW_FIELDS = ("status", "approval_list")

# How far the version chain is followed each way (a chain is never this long in practice).
VERSION_CHAIN_LIMIT = 100
# Served bytes may be HTML or SVG: never let them run anything in the admin's origin.
DOWNLOAD_CSP = "default-src 'none'; sandbox"

UPLOAD_HELP = (
    "Checked against the formats the artefact type allows; at most {limit}. "
    "The SHA-256, size and MIME type are computed from the bytes."
)
NAME_HELP = "Empty: the file's name."
NEW_VERSION_DESCRIPTION_HELP = "Leave empty to keep the previous version's description."
NO_FILE = "No file stored."
DOWNLOAD_LABEL = "Download “{file_name}”"
SIZE_DISPLAY = "{human} ({size} bytes)"
SMALL_SIZE = 1024
NO_APPROVALS = "No approvals requested."
NO_APPROVER = "—"
DESIGNATED_APPROVER = "designated: {user}"
THIS_VERSION = "this version"
DELETED_VERSION = "deleted"


class ArtefactUploadFormMixin:
    """Report an upload stopped at the size limit as an error on the form's file field.

    `MaxSizeUploadHandler` drops a file past the limit, so the field would only say
    "required"; `upload_refusal` (set per request, see `refusing`) says why instead.
    """

    upload_field = UPLOAD_FIELD
    upload_refusal = ""

    @classmethod
    def refusing(cls, message: str):
        """Return a subclass that reports `message` on the file field (for one request)."""
        if not message:
            return cls
        return type(cls.__name__, (cls,), {"upload_refusal": message})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.upload_refusal:
            self.fields[self.upload_field].required = False

    def clean(self):
        cleaned_data = super().clean()
        if self.upload_refusal:
            self.add_error(self.upload_field, self.upload_refusal)
        return cleaned_data


class ArtefactAddForm(ArtefactUploadFormMixin, forms.ModelForm):
    """The admin add form: the artefact's description and the file to store."""

    class Meta:
        model = Artefact
        fields = (*ADD_FIELDS, UPLOAD_FIELD)


class NewVersionForm(ArtefactUploadFormMixin, forms.Form):
    """The changed file of a new version, and what changed."""

    upload_field = "upload"

    upload = forms.FileField(label="File")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=NEW_VERSION_DESCRIPTION_HELP,
    )


def new_version_from_form(*, artefact, actor, upload, description=""):
    """Store `upload` as the next version of `artefact` with the new-version form's answers."""
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
        "file_size_display",
        "created_by",
        "created_at",
    )
    # A date filter instead of a date hierarchy (which scans every row for its years).
    list_filter = ("status", "artefact_type", EngagementListFilter, "created_at")
    show_full_result_count = False
    search_fields = ("name", "description", "file_name", "=content_hash", "engagement__name")
    list_select_related = ("engagement", "created_by")
    autocomplete_fields = ("engagement", "workflow_run")
    ordering = ("-created_at",)
    readonly_fields = (
        "file_name",
        "download_link",
        "mime_type",
        "file_size",
        "file_size_display",
        "content_hash",
        "storage_path",
        "storage_path_code",
        "storage_bucket",
        "version",
        "previous_version",
        "version_chain",
        "approval_list",
    )

    service_object_argument = "artefact"
    service_moves = (
        AdminMove("submit_for_review", "Submit for review", artefact_submit_for_review),
        AdminMove(
            "new_version",
            "Upload new version",
            new_version_from_form,
            form=NewVersionForm,
            available=lambda artefact: artefact.can("supersede"),
            bulk=False,
        ),
        AdminMove("archive", "Archive", artefact_archive),
    )
    delete_service = artefact_delete

    # --- URLs and views ------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        add_name = "{}_{}_add".format(*info)
        return [
            path("add/", self._limiting_upload_size(self.add_view), name=add_name),
            # Before the mixin's move URL, which would match it too.
            path(
                "<path:object_id>/move/new_version/",
                self._limiting_upload_size(self.move_view),
                {"move": "new_version"},
                name="{}_{}_new_version".format(*info),
            ),
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="{}_{}_download".format(*info),
            ),
            *(url for url in super().get_urls() if url.name != add_name),
        ]

    def _limiting_upload_size(self, view):
        """Wrap an admin view that takes an upload: the size limit applies while it streams.

        The upload handler must be in place before anything reads the request body,
        and CsrfViewMiddleware reads it to find the token. So the URL is exempt from
        the middleware's check, the handler goes first, and the admin view's own
        `csrf_protect` (from `admin_view`) then checks the token as usual.
        """
        admin_view = self.admin_site.admin_view(view)

        def upload_view(request, *args, **kwargs):
            if request.method == "POST":
                request.artefact_upload_limit = install_max_size_upload_handler(
                    request, raise_error=False
                )
            return admin_view(request, *args, **kwargs)

        upload_view.model_admin = self
        return csrf_exempt(update_wrapper(upload_view, view))

    def move_view(self, request, object_id, move):
        refusal = _upload_refusal(request)
        if move != "new_version" or not refusal:
            return super().move_view(request, object_id, move)
        # The file was dropped at the size limit: show the page again, saying why.
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_change_permission(request, obj):
            return super().move_view(request, object_id, move)
        admin_move = next(m for m in self.service_moves if m.name == move)
        form = NewVersionForm.refusing(refusal)(request.POST, request.FILES)
        form.is_valid()
        return self._render_move_form(
            request, admin_move, form, [obj], cancel_url=self._change_url(obj)
        )

    def download_view(self, request, object_id):
        """Serve the artefact's verified bytes: an attachment, or an inline PNG/JPEG preview.

        A refused download (missing or changed bytes, no access) serves nothing: an
        attachment request returns to the change page with the reason as an error
        message; an image preview request answers 409 with the reason.
        """
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        inline = "inline" in request.GET and obj.mime_type in INLINE_IMAGE_TYPES
        try:
            handle = artefact_open_for_download(
                artefact=obj,
                actor=request.user,
                purpose=ACCESS_PREVIEW if inline else ACCESS_DOWNLOAD,
            )
        except DomainError as error:
            if inline:
                return HttpResponse(
                    error.message, status=409, content_type="text/plain; charset=utf-8"
                )
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(self._change_url(obj))
        response = FileResponse(
            handle,
            as_attachment=not inline,
            filename=obj.file_name or None,
            content_type=obj.mime_type or None,
        )
        response["ETag"] = f'"{obj.content_hash}"'
        response["Content-Security-Policy"] = DOWNLOAD_CSP
        response["X-Content-Type-Options"] = "nosniff"
        # The bytes of one artefact never change, but access is checked on every request.
        response["Cache-Control"] = "private, no-cache"
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        finally:
            _discard_rolled_back_upload(request)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context.update(self._preview_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- forms ---------------------------------------------------------------------------

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": (*ADD_FIELDS, UPLOAD_FIELD)}),)
        # file_size is shown readable (file_size_display); the upload field only on add.
        shown = {*ADD_FIELDS, *STORED_FILE_FIELDS, *VERSION_FIELDS, *REVIEW_FIELDS}
        hidden = {UPLOAD_FIELD, "file_size", "storage_path"}
        record = [name for name in self.get_fields(request, obj) if name not in shown | hidden]
        return (
            (None, {"fields": ADD_FIELDS}),
            ("Stored file", {"fields": STORED_FILE_FIELDS}),
            ("Versions", {"fields": VERSION_FIELDS}),
            ("Review", {"fields": REVIEW_FIELDS}),
            ("Record", {"fields": record}),
        )

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # The stored file is shown as a verified download link, never as the storage's
        # own URL (which would serve bytes without checking them).
        return [name for name in fields if name != UPLOAD_FIELD or obj is None]

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        # Stored bytes and their engagement never change; only a draft's description does.
        extra = [UPLOAD_FIELD, "engagement", "workflow_run"]
        if obj.status != ArtefactStatus.DRAFT:
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ArtefactAddForm.refusing(_upload_refusal(request))
            kwargs["fields"] = (*ADD_FIELDS, UPLOAD_FIELD)
        form = super().get_form(request, obj, change, **kwargs)
        if obj is None:
            form.base_fields[UPLOAD_FIELD].required = True
            form.base_fields[UPLOAD_FIELD].help_text = UPLOAD_HELP.format(
                limit=filesizeformat(settings.ARTEFACT_MAX_UPLOAD_SIZE)
            )
            form.base_fields["name"].required = False
            form.base_fields["name"].help_text = NAME_HELP
        return form

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            saved = artefact_create(
                engagement=data["engagement"],
                upload=data[UPLOAD_FIELD],
                actor=request.user,
                name=data.get("name", ""),
                artefact_type=data["artefact_type"],
                description=data.get("description", ""),
                workflow_run=data.get("workflow_run"),
                metadata=data.get("metadata"),
            )
            # The admin's own transaction is still open: see _discard_rolled_back_upload.
            request.artefact_uploaded = saved
        else:
            changes = changed_data(form, EDITABLE_FIELDS)
            if not changes:
                return
            saved = artefact_update(artefact=obj, actor=request.user, data=changes)
        adopt(obj, saved)

    # --- the stored file on the change page ----------------------------------------------

    @admin.display(description="Storage path")
    def storage_path_code(self, obj):
        # A path of ids and hashes: shown as code, to copy, not to read.
        return format_html("<code>{}</code>", obj.storage_path) if obj.storage_path else "—"

    @admin.display(description="Size", ordering="file_size")
    def file_size_display(self, obj):
        human = filesizeformat(obj.file_size)
        if obj.file_size < SMALL_SIZE:
            return human
        return SIZE_DISPLAY.format(human=human, size=f"{obj.file_size:,}")

    @admin.display(description="File")
    def download_link(self, obj):
        if not obj.pk or not obj.file:
            return NO_FILE
        return format_html(
            '<a href="{}" class="artefact-download">{}</a>',
            self._download_url(obj),
            DOWNLOAD_LABEL.format(file_name=obj.file_name),
        )

    @admin.display(description="Version chain")
    def version_chain(self, obj):
        if not obj.pk:
            return ""
        items = []
        for version in _version_chain(obj):
            label = f"v{version.version} · {version.name} · {version.get_status_display()}"
            if version.pk == obj.pk:
                items.append(format_html("<li><strong>{} ({})</strong></li>", label, THIS_VERSION))
            elif version.is_deleted:
                items.append(format_html("<li>{} ({})</li>", label, DELETED_VERSION))
            else:
                items.append(
                    format_html('<li><a href="{}">{}</a></li>', self._change_url(version), label)
                )
        return format_html(
            '<ol class="artefact-version-chain">{}</ol>',
            format_html_join("", "{}", ((item,) for item in items)),
        )

    @admin.display(description="Approvals")
    def approval_list(self, obj):
        if not obj.pk:
            return ""
        approvals = obj.approvals.select_related("approver", "designated_approver").order_by(
            "-requested_at"
        )
        rows = [
            (
                reverse("admin:approvals_approval_change", args=(approval.pk,)),
                approval.get_approval_type_display(),
                approval.get_status_display(),
                _approver_of(approval),
            )
            for approval in approvals
        ]
        if not rows:
            return NO_APPROVALS
        return format_html(
            '<ul class="artefact-approvals">{}</ul>',
            format_html_join(
                "", '<li><a href="{}">{}</a>: {}, approver {}</li>', (row for row in rows)
            ),
        )

    def _preview_context(self, request, obj) -> dict:
        """Return what the change page previews: a CSV table or an inline image."""
        if not obj.file:
            return {}
        if obj.mime_type in INLINE_IMAGE_TYPES:
            return {"artefact_image_url": f"{self._download_url(obj)}?inline=1"}
        delimiter = CSV_PREVIEW_TYPES.get(obj.mime_type)
        if delimiter is None:
            return {}
        try:
            handle = artefact_open_for_download(
                artefact=obj, actor=request.user, purpose=ACCESS_PREVIEW
            )
        except DomainError as error:
            return {"artefact_preview_error": PREVIEW_REFUSED.format(error=error.message)}
        try:
            with handle:
                preview = csv_preview(handle, delimiter=delimiter)
        except (csv.Error, OSError, ValueError) as error:
            return {"artefact_preview_error": PREVIEW_UNREADABLE.format(error=error)}
        return {"artefact_csv_preview": preview}

    def _change_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=(obj.pk,))

    def _download_url(self, obj) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_download", args=(obj.pk,)
        )


def _upload_refusal(request) -> str:
    """Return why the request's upload was dropped (over the size limit), or ""."""
    limit = getattr(request, "artefact_upload_limit", None)
    if limit is None:
        return ""
    request.FILES  # noqa: B018 -- parse the body, so the handler knows whether it stopped it
    if not limit.exceeded:
        return ""
    return FileTooLarge(file_name=limit.file_name or "", limit=limit.max_size).message


def _discard_rolled_back_upload(request) -> None:
    """Remove the bytes the add form stored if the admin's transaction then rolled back.

    `artefact_create` cleans up after its own failures; this covers a failure after
    it returned, inside the admin's transaction (history, log entry, response).
    """
    saved = getattr(request, "artefact_uploaded", None)
    if saved is None or Artefact.all_objects.filter(pk=saved.pk).exists():
        return
    stored = StoredFile(
        name=saved.file.name,
        content_hash=saved.content_hash,
        file_size=saved.file_size,
        mime_type=saved.mime_type,
        file_name=saved.file_name,
        storage_bucket=saved.storage_bucket,
        format="",
    )
    try:
        # Shared bytes (another artefact points to them) are kept by discard_stored_file.
        discard_stored_file(stored)
    except Exception:
        # Runs while the admin's own error propagates: log, do not replace that error.
        logger.exception(
            "Could not remove the artefact file %s of a rolled-back upload", stored.name
        )


def _version_chain(obj) -> list[Artefact]:
    """Return every version of the artefact's chain, oldest first (deleted ones included)."""
    versions = Artefact.all_objects.select_related(None).only(
        "pk", "name", "version", "status", "is_deleted", "previous_version_id"
    )
    older, seen, current = [], {obj.pk}, obj
    while current.previous_version_id and len(older) < VERSION_CHAIN_LIMIT:
        current = versions.filter(pk=current.previous_version_id).first()
        if current is None or current.pk in seen:
            break
        seen.add(current.pk)
        older.append(current)
    newer, current = [], obj
    while len(newer) < VERSION_CHAIN_LIMIT:
        current = versions.filter(previous_version_id=current.pk).first()
        if current is None or current.pk in seen:
            break
        seen.add(current.pk)
        newer.append(current)
    return [*reversed(older), obj, *newer]


def _approver_of(approval) -> str:
    """Return who decided an approval, or who is designated to, or a dash."""
    if approval.approver is not None:
        return str(approval.approver)
    if approval.designated_approver is not None:
        return DESIGNATED_APPROVER.format(user=approval.designated_approver)
    return NO_APPROVER
