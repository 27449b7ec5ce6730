"""Admin of disclosure checklists (ASOP 41): pre-fill, edit, complete; frozen ones read-only.

`disclosure_view` turns a checklist snapshot (frozen into a final sign-off) into
what the approval page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from artefacts.choices import DataProviderType
from engagements.selectors import WORKING_ROLES, scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
)
from records.formatting import format_datetime

from .. import disclosures
from ..models import DisclosureChecklist
from ..services import (
    CHECKLIST_EDITABLE_FIELDS,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
    disclosure_checklist_update,
)

RESPONSIBLE_ACTUARY_HELP = "A working member of the engagement's team."
FROZEN_CHECKLIST = "Frozen into the final sign-off on {frozen_at}: locked."


@dataclass
class DisclosureView:
    """A disclosure checklist's snapshot (as frozen into a final sign-off), readable."""

    responsible_actuary: str
    information_date: str
    reliances: list[dict]
    previous_engagement: dict | None
    comparison: list[dict]
    material_changes: str
    other_disclosures: str
    completed_by: str
    completed_at: str


def disclosure_view(snapshot: dict) -> DisclosureView:
    """Return the readable view of a checklist snapshot (`DisclosureChecklist.snapshot()`)."""
    actuary = snapshot.get("responsible_actuary") or {}
    return DisclosureView(
        responsible_actuary=(
            f"{actuary.get('name')} ({actuary.get('username')})" if actuary else "—"
        ),
        information_date=snapshot.get("information_date") or "—",
        reliances=[_reliance_row(entry) for entry in snapshot.get("reliances") or ()],
        previous_engagement=snapshot.get("previous_engagement"),
        comparison=comparison_rows(snapshot.get("comparison") or {}),
        material_changes=snapshot.get("material_changes") or "",
        other_disclosures=snapshot.get("other_disclosures") or "",
        completed_by=snapshot.get("completed_by") or "—",
        completed_at=(snapshot.get("completed_at") or "—")[:16].replace("T", " "),
    )


def _reliance_row(entry: dict) -> dict:
    """Return a data reliance entry's snapshot with its labels for display."""
    provider_type = entry.get("provider_type") or ""
    labels = dict(DataProviderType.choices)
    return {
        **entry,
        "provider_label": labels.get(provider_type, provider_type),
        "short_hash": (entry.get("content_hash") or "")[:12],
    }


def comparison_rows(comparison: dict) -> list[dict]:
    """Return the comparison with the previous engagement as rows: result, total, before → now."""
    rows = []
    for result in comparison.get("results") or ():
        either = result.get("current") or result.get("previous") or {}
        label = f"{either.get('workflow_type', '')} ({either.get('measure', '')})"
        for key, name in disclosures.TOTALS:
            before = ((result.get("previous") or {}).get("totals") or {}).get(key)
            now = ((result.get("current") or {}).get("totals") or {}).get(key)
            rows.append(
                {
                    "result": label,
                    "measure": name,
                    "previous": _amount(before),
                    "current": _amount(now),
                }
            )
    return rows


def _amount(value) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


class FrozenListFilter(admin.SimpleListFilter):
    """Open checklists (still edited) or frozen ones (signed-off copies)."""

    title = "frozen"
    parameter_name = "frozen"

    def lookups(self, request, model_admin):
        return (("no", "Open (not frozen)"), ("yes", "Frozen into a final sign-off"))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(frozen_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(frozen_at__isnull=False)
        return queryset


class DisclosureChecklistForm(forms.ModelForm):
    """What people write in a checklist; the responsible actuary is one of the team."""

    class Meta:
        model = DisclosureChecklist
        fields = tuple(sorted(CHECKLIST_EDITABLE_FIELDS))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        chooser = self.fields.get("responsible_actuary")
        if chooser is None or self.instance.engagement_id is None:
            return
        team = self.instance.engagement.team.filter(role__in=WORKING_ROLES, user__is_active=True)
        chooser.queryset = (
            get_user_model().objects.filter(pk__in=team.values("user_id")).order_by("username")
        )
        chooser.help_text = RESPONSIBLE_ACTUARY_HELP


@admin.register(DisclosureChecklist)
class DisclosureChecklistAdmin(ServiceAdminMixin, RecordAdmin):
    """Disclosure checklists of final sign-offs: pre-filled, edited, completed, then frozen.

    Created by pre-filling (the engagement page's "Final sign-off" section); the texts,
    the responsible actuary and the information date are edited here through the
    update service; the lead actuary completes it; a final sign-off request freezes it.
    """

    form = DisclosureChecklistForm
    list_display = (
        "engagement",
        "status",
        "responsible_actuary",
        "information_date",
        "completed_by",
        "completed_at",
        "final_sign_off",
        "frozen_at",
    )
    list_filter = ("status", FrozenListFilter, EngagementListFilter)
    search_fields = ("engagement__name", "engagement__client_code", "material_changes")
    list_select_related = ("engagement", "responsible_actuary", "completed_by", "frozen_into")
    ordering = ("-created_at",)
    readonly_fields = (
        "engagement",
        "status",
        "reliances_table",
        "previous_engagement",
        "comparison_table",
        "completed_by",
        "completed_at",
        "final_sign_off",
        "frozen_at",
    )

    service_object_argument = "checklist"
    service_moves = (
        AdminMove(
            "prefill",
            "Pre-fill again",
            disclosure_checklist_prefill,
            available=lambda checklist: not checklist.is_frozen,
            bulk=False,
        ),
        AdminMove(
            "complete",
            "Complete",
            disclosure_checklist_complete,
            available=lambda checklist: not checklist.is_frozen and checklist.can("complete"),
            bulk=False,
        ),
    )

    def get_fieldsets(self, request, obj=None):
        return (
            (
                None,
                {
                    "fields": ("engagement", "status", "responsible_actuary", "information_date"),
                    "description": (
                        FROZEN_CHECKLIST.format(frozen_at=format_datetime(obj.frozen_at))
                        if obj is not None and obj.is_frozen
                        else ""
                    ),
                },
            ),
            ("Reliances (from the data reliance register)", {"fields": ("reliances_table",)}),
            (
                "Material changes from the previous engagement",
                {"fields": ("previous_engagement", "comparison_table", "material_changes")},
            ),
            ("Other disclosures", {"fields": ("other_disclosures",)}),
            (
                "Completion",
                {"fields": ("completed_by", "completed_at", "final_sign_off", "frozen_at")},
            ),
        )

    @admin.display(description="reliances")
    def reliances_table(self, obj):
        return render_to_string(
            "admin/includes/reliance_snapshot_table.html",
            {"reliances": [_reliance_row(entry) for entry in obj.reliances or ()]},
        )

    @admin.display(description="comparison of key results")
    def comparison_table(self, obj):
        return render_to_string(
            "admin/includes/comparison_table.html",
            {"rows": comparison_rows(obj.comparison or {})},
        )

    @admin.display(description="final sign-off")
    def final_sign_off(self, obj):
        if obj.frozen_into_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:approvals_approval_change", args=(obj.frozen_into_id,)),
            obj.frozen_into.get_status_display(),
        )

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and obj.is_frozen:
            # Frozen into a final sign-off: the signed-off copy lives on the approval.
            readonly = (*readonly, *sorted(CHECKLIST_EDITABLE_FIELDS))
        return readonly

    def has_add_permission(self, request):
        # A checklist is pre-filled from what the system holds (the engagement page).
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = changed_data(form, CHECKLIST_EDITABLE_FIELDS)
        if not data:
            return
        adopt(obj, disclosure_checklist_update(checklist=obj, actor=request.user, data=data))
