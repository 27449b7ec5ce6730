"""Admin for artefacts and the data reliance register, through `artefacts.services`.

The bytes never change in place: the file is an input of the add form only and is
shown, never edited, on the change page; changed content is uploaded as a new
version from the change page. Every read of the bytes (download, image and CSV
previews) goes through `artefact_open_for_download`, so what is shown is what was
stored, and every read is on record.

The data reliance register (ASOP 23) has one entry per input data artefact, recorded
and edited through `reliance_record` / `reliance_update`; the engagement page lists
its input data with their entries, or a link to record a missing one.

Requesting an artefact's review is offered on its page by the approvals app (a page
extension, `approvals.admin`), which sits above this one.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import logging
from dataclasses import dataclass, field
from functools import update_wrapper
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.views.decorators.csrf import csrf_exempt

from engagements.choices import CLOSED_STATUSES
from engagements.models import Engagement
from engagements.selectors import scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    PageExtension,
    ReadOnlyInline,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
    next_url,
)
from records.exceptions import DomainError

from .choices import INPUT_DATA_TYPES, RETIRED_STATUSES, ArtefactStatus
from .files import FileTooLarge, StoredFile, discard_stored_file, install_max_size_upload_handler
from .hooks import validation_runs
from .models import Artefact, DataReliance
from .selectors import engagement_input_data
from .services import (
    ACCESS_DOWNLOAD,
    ACCESS_PREVIEW,
    EDITABLE_FIELDS,
    RELIANCE_FIELDS,
    RELIANCE_REASON_REQUIRED,
    artefact_archive,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    artefact_open_for_download,
    artefact_submit_for_review,
    artefact_update,
    reliance_record,
    reliance_update,
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
    "storage_path",
    "storage_bucket",
)
VERSION_FIELDS = ("version", "previous_version", "version_chain")
REVIEW_FIELDS = ("status", "approval_list")

# Only raster images are shown inline: an SVG can carry script.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
# Delimited text shown as a table, with the delimiter to try first.
CSV_PREVIEW_TYPES = {"text/csv": ",", "text/tab-separated-values": "\t"}
CSV_PREVIEW_ROWS = 20
# The preview reads at most this much of the file, whatever its size or line length.
CSV_PREVIEW_MAX_BYTES = 256 * 1024
CSV_PREVIEW_MAX_COLUMNS = 50
CSV_PREVIEW_MAX_CELL = 200
# How far the version chain is followed each way (a chain is never this long in practice).
VERSION_CHAIN_LIMIT = 100
# Served bytes may be HTML or SVG: never let them run anything in the admin's origin.
DOWNLOAD_CSP = "default-src 'none'; sandbox"
LEGACY_ENCODING = "cp1252"

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
PREVIEW_NOT_UTF8 = (
    "The file is not UTF-8 text: it is shown decoded as Windows-1252, some characters may be wrong."
)
PREVIEW_FIRST_ROWS = "The first {rows} rows; download the file for the rest."
PREVIEW_CUT = "Only the first {size} of the file were read for this preview."
PREVIEW_COLUMNS_CUT = "Only the first {columns} columns are shown."
PREVIEW_UNREADABLE = "The first rows cannot be shown: {error}"
PREVIEW_REFUSED = "No preview: {error}"

# The register's fields in the order the form asks them (the artefact first, on add).
RELIANCE_FORM_FIELDS = (
    "provider_type",
    "provider_name",
    "data_as_of",
    "checks_performed",
    "validation_run",
    "known_limitations",
    "reviewed",
    "not_reviewed_reason",
)
RELIANCE_ARTEFACT_HELP = (
    "Input data of the engagement without an entry yet (uploaded data files, triangles, "
    "CSV, Excel and Parquet files in use, and the inputs of its workflow runs)."
)
VALIDATION_RUN_HELP = (
    "The completed data_validation run of this engagement whose results support the checks."
)
RELIANCE_RECORDED = "Data reliance recorded — {reliance}."


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


def artefact_upload_new_version(*, artefact, actor, upload, description=""):
    """Store `upload` as the next version of `artefact` (admin form adapter)."""
    return artefact_new_version(
        artefact=artefact, actor=actor, upload=upload, description=description or None
    )


@dataclass
class CsvPreview:
    """The first rows of a delimited text file, as the change page shows them."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def csv_preview(handle, *, delimiter: str = ",", rows: int = CSV_PREVIEW_ROWS) -> CsvPreview:
    """Return the first `rows` rows (after the header) of an open binary CSV file.

    Reads at most CSV_PREVIEW_MAX_BYTES, so a huge file or a file that is one long
    line costs the same as a small one. Text that is not UTF-8 is shown decoded as
    Windows-1252 (which maps every byte), with a note.
    """
    head = handle.read(CSV_PREVIEW_MAX_BYTES + 1)
    notes = []
    cut = len(head) > CSV_PREVIEW_MAX_BYTES
    head = head[:CSV_PREVIEW_MAX_BYTES]
    try:
        # Incremental: a character split by the byte limit is left out, not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=not cut)
    except UnicodeDecodeError:
        text = head.decode(LEGACY_ENCODING, errors="replace")
        notes.append(PREVIEW_NOT_UTF8)
    lines = text.splitlines(keepends=True)
    if cut and lines:
        # The last line was cut by the byte limit: show whole lines only.
        lines.pop()
    table = list(
        itertools.islice(csv.reader(lines, delimiter=_delimiter_of(text, delimiter)), rows + 1)
    )
    header, body = (table[0], table[1:]) if table else ([], [])
    width = max((len(row) for row in table), default=0)
    if width > CSV_PREVIEW_MAX_COLUMNS:
        notes.append(PREVIEW_COLUMNS_CUT.format(columns=CSV_PREVIEW_MAX_COLUMNS))
    if len(body) == rows:
        notes.append(PREVIEW_FIRST_ROWS.format(rows=rows))
    elif cut:
        notes.append(PREVIEW_CUT.format(size=filesizeformat(CSV_PREVIEW_MAX_BYTES)))
    return CsvPreview(
        header=_cells(header, width), rows=[_cells(row, width) for row in body], notes=notes
    )


def _delimiter_of(text: str, default: str) -> str:
    """Return the delimiter of the sample (comma, semicolon, tab or pipe), or `default`."""
    sample = "".join(text.splitlines(keepends=True)[: CSV_PREVIEW_ROWS + 1])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def _cells(row: list[str], width: int) -> list[str]:
    """Return the row padded to `width`, at most CSV_PREVIEW_MAX_COLUMNS cells, each cut short."""
    width = min(width, CSV_PREVIEW_MAX_COLUMNS)
    cells = (row + [""] * width)[:width]
    return [
        cell if len(cell) <= CSV_PREVIEW_MAX_CELL else cell[: CSV_PREVIEW_MAX_CELL - 1] + "…"
        for cell in cells
    ]


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
    list_filter = ("status", "artefact_type", EngagementListFilter)
    search_fields = ("name", "description", "file_name", "=content_hash", "engagement__name")
    list_select_related = ("engagement", "created_by")
    autocomplete_fields = ("engagement", "workflow_run")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "file_name",
        "download_link",
        "mime_type",
        "file_size",
        "file_size_display",
        "content_hash",
        "storage_path",
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
            artefact_upload_new_version,
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
        hidden = {UPLOAD_FIELD, "file_size"}
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


# --- the data reliance register (ASOP 23) -------------------------------------------------


class DataRelianceForm(forms.ModelForm):
    """A data reliance entry: the artefact (on add), who provided the data, checks, review.

    The artefact and validation run choices are set per request (`choosing`): the
    engagement's input data without an entry, and its completed data_validation runs.
    """

    class Meta:
        model = DataReliance
        fields = ("artefact", *RELIANCE_FORM_FIELDS)
        widgets = {
            "checks_performed": forms.Textarea(attrs={"rows": 3}),
            "known_limitations": forms.Textarea(attrs={"rows": 3}),
            "not_reviewed_reason": forms.Textarea(attrs={"rows": 2}),
        }

    artefact_choices = Artefact.objects.none()
    # Runs, by the model the register's foreign key names (workflows sits above).
    validation_run_choices = DataReliance._meta.get_field(
        "validation_run"
    ).related_model.objects.none()

    @classmethod
    def choosing(cls, *, artefacts, validation_runs) -> type[DataRelianceForm]:
        """Return the form offering these artefacts and validation runs (for one request)."""
        return type(
            cls.__name__,
            (cls,),
            {"artefact_choices": artefacts, "validation_run_choices": validation_runs},
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "artefact" in self.fields:
            chooser = self.fields["artefact"]
            chooser.queryset = self.artefact_choices
            chooser.label_from_instance = _input_data_label
            chooser.help_text = RELIANCE_ARTEFACT_HELP
        if "validation_run" in self.fields:
            runs = self.fields["validation_run"]
            runs.queryset = self.validation_run_choices
            runs.help_text = VALIDATION_RUN_HELP

    def clean(self):
        cleaned_data = super().clean()
        # Said here, in the service's words, rather than as the DB check's bare name.
        reason = (cleaned_data.get("not_reviewed_reason") or "").strip()
        if "reviewed" in self.fields and not cleaned_data.get("reviewed") and not reason:
            artefact = cleaned_data.get("artefact") or getattr(self.instance, "artefact", None)
            self.add_error(
                "not_reviewed_reason", RELIANCE_REASON_REQUIRED.format(artefact=artefact or "it")
            )
        return cleaned_data


def _input_data_label(artefact: Artefact) -> str:
    return f"{artefact.name} v{artefact.version} ({artefact.file_name}) · {artefact.engagement}"


@admin.register(DataReliance)
class DataRelianceAdmin(ServiceAdminMixin, RecordAdmin):
    """The data reliance register of the user's engagements: one entry per input artefact."""

    form = DataRelianceForm
    list_display = (
        "artefact",
        "engagement",
        "provider_type",
        "provider_name",
        "data_as_of",
        "reviewed",
        "validation_run",
        "updated_at",
    )
    list_filter = ("provider_type", "reviewed", EngagementListFilter)
    search_fields = (
        "artefact__name",
        "provider_name",
        "checks_performed",
        "known_limitations",
        "engagement__client_code",
    )
    list_select_related = ("artefact", "engagement", "validation_run")
    ordering = ("engagement__client_code", "artefact__name")

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_fieldsets(self, request, obj=None):
        first = ("artefact",) if obj is None else ("artefact", "engagement")
        record = ("id", "created_at", "created_by", "updated_at", "updated_by", "trace_id")
        return (
            (None, {"fields": (*first, "provider_type", "provider_name", "data_as_of")}),
            (
                "Checks",
                {"fields": ("checks_performed", "validation_run", "known_limitations")},
            ),
            ("Review", {"fields": ("reviewed", "not_reviewed_reason")}),
            *((("Record", {"classes": ("collapse",), "fields": record}),) if obj else ()),
        )

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        # An entry belongs to one input artefact, of its engagement, for good.
        return readonly if obj is None else (*readonly, "artefact", "engagement")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        engagement = obj.engagement if obj is not None else self._engagement_of(request)
        runs = validation_runs()
        if engagement is not None:
            artefacts = engagement_input_data(engagement).filter(data_reliance__isnull=True)
            runs = runs.filter(engagement=engagement)
        else:
            artefacts = Artefact.objects.filter(
                artefact_type__in=INPUT_DATA_TYPES,
                workflow_run__isnull=True,
                data_reliance__isnull=True,
            ).exclude(status__in=RETIRED_STATUSES)
        for name in ("artefact", "validation_run"):
            # Chosen among what exists: no "add another" or edit pop-ups beside them.
            widget = form.base_fields[name].widget if name in form.base_fields else None
            if isinstance(widget, RelatedFieldWidgetWrapper):
                widget.can_add_related = widget.can_change_related = False
                widget.can_delete_related = widget.can_view_related = False
        return form.choosing(
            artefacts=scope_to_user(artefacts, request.user).select_related("engagement"),
            validation_runs=scope_to_user(runs, request.user).order_by("-completed_at"),
        )

    def _engagement_of(self, request) -> Engagement | None:
        """Return the engagement of the artefact the add form is for (in the link or chosen)."""
        artefact_id = request.POST.get("artefact") or request.GET.get("artefact")
        if not artefact_id:
            return None
        try:
            artefact = scope_to_user(Artefact.objects.all(), request.user).filter(pk=artefact_id)
            artefact = artefact.select_related("engagement").first()
        except ValidationError:
            return None
        return artefact.engagement if artefact is not None else None

    def has_delete_permission(self, request, obj=None):
        # The register is a record of what was relied on: entries are edited, not removed.
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            saved = reliance_record(
                artefact=form.cleaned_data["artefact"],
                actor=request.user,
                **form_data(form, RELIANCE_FIELDS),
            )
        else:
            data = changed_data(form, RELIANCE_FIELDS)
            if not data:
                return
            saved = reliance_update(reliance=obj, actor=request.user, data=data)
        adopt(obj, saved)

    def response_add(self, request, obj, post_url_continue=None):
        # Recorded from the engagement page's "Data reliance" section: return there.
        target = next_url(request)
        if target and "_continue" not in request.POST and "_addanother" not in request.POST:
            self.message_user(request, RELIANCE_RECORDED.format(reliance=obj), messages.SUCCESS)
            return HttpResponseRedirect(target)
        return super().response_add(request, obj, post_url_continue)


# --- the engagement page: its artefacts and data reliance (ArtefactsConfig.ready()) -----


class ArtefactInline(ReadOnlyInline):
    model = Artefact
    fk_name = "engagement"
    fields = ("name", "artefact_type", "version", "status", "file_size", "created_at")
    ordering = ("-created_at",)


@dataclass
class RelianceRow:
    """One input data artefact of the engagement and its data reliance entry (or None)."""

    artefact: Artefact
    reliance: object | None
    record_url: str = ""


def reliance_rows(request, obj, *, page: str) -> list[RelianceRow]:
    """Return the engagement's input data, each with its register entry or a link to add one."""
    may_record = obj.status not in CLOSED_STATUSES and request.user.has_perm(
        "artefacts.add_datareliance"
    )
    add = reverse("admin:artefacts_datareliance_add")
    rows = []
    for artefact in engagement_input_data(obj).select_related("data_reliance__validation_run"):
        reliance = getattr(artefact, "data_reliance", None)
        row = RelianceRow(artefact, reliance)
        if reliance is None and may_record:
            row.record_url = f"{add}?{urlencode({'artefact': artefact.pk, 'next': page})}"
        rows.append(row)
    return rows


def data_reliance_context(model_admin, request, engagement, context) -> dict:
    """Return the engagement page's "Data reliance" section: its input data and their entries."""
    if not request.user.has_perm("artefacts.view_datareliance"):
        return {}
    return {"data_reliance": reliance_rows(request, engagement, page=request.get_full_path())}


ENGAGEMENT_PAGE = PageExtension(inlines=(ArtefactInline,), context=data_reliance_context)
