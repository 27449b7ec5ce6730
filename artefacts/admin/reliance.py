"""Admin of the data reliance register (ASOP 23): one entry per input data artefact.

Entries are recorded and edited through `reliance_record` / `reliance_update`; the
engagement page lists its input data with their entries, or a link to record a
missing one (`reliance_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from engagements.choices import CLOSED_STATUSES
from engagements.models import Engagement
from engagements.selectors import scope_to_user
from records.admin import (
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
    next_url,
)

from ..choices import INPUT_DATA_TYPES, RETIRED_STATUSES
from ..hooks import validation_runs
from ..models import Artefact, DataReliance
from ..selectors import engagement_input_data
from ..services import (
    RELIANCE_FIELDS,
    RELIANCE_REASON_REQUIRED,
    reliance_record,
    reliance_update,
)

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
