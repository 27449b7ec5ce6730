"""Admin of review points (APS X2): raise, respond, resolve and reopen, through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from engagements.selectors import scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
)

from ..models import ReviewPoint
from ..services import (
    review_point_reopen,
    review_point_resolve,
    review_point_respond,
)

RESPONSE_HELP = "How the point was addressed (recorded with your name)."
RESOLUTION_NOTES_HELP = "Optional: why the answer settles the point."
REOPEN_REASON_HELP = "Why the answer does not (or no longer) settle the point."

# How a point's concern is shown when it names neither an artefact nor a run.
WHOLE_APPROVAL = "the approval as a whole"


class RespondForm(forms.Form):
    """The preparer's answer to a review point."""

    response = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), help_text=RESPONSE_HELP)


class ResolveForm(forms.Form):
    """The reviewer's acceptance of an answer, with optional notes."""

    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Resolution notes",
        help_text=RESOLUTION_NOTES_HELP,
    )


class ReopenForm(forms.Form):
    """Why the reviewer challenges a point again."""

    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), help_text=REOPEN_REASON_HELP)


class ApprovalEngagementListFilter(EngagementListFilter):
    """Filter rows of an approval by the approval's engagement (those the user may see)."""

    engagement_field = "approval__engagement_id"


@admin.register(ReviewPoint)
class ReviewPointAdmin(ServiceAdminMixin, RecordAdmin):
    """Review points of the user's engagements: open ones to answer, answered ones to resolve.

    Points are raised from their approval's page; here (and there) they are answered,
    resolved and reopened through the services. What was raised never changes.
    """

    list_display = (
        "summary",
        "severity",
        "status",
        "approval_link",
        "engagement",
        "raised_by",
        "responded_by",
        "resolved_by",
        "created_at",
    )
    list_display_links = ("summary",)
    list_filter = ("status", "severity", ApprovalEngagementListFilter)
    search_fields = ("text", "response", "resolution_notes", "reopen_reason")
    list_select_related = (
        "approval__engagement",
        "approval__artefact",
        "raised_by",
        "responded_by",
        "resolved_by",
    )
    ordering = ("-created_at",)
    fieldsets = (
        (None, {"fields": ("approval_link", "severity", "status", "text", "concerns")}),
        ("Raised", {"fields": ("raised_by", "created_at")}),
        ("Response", {"fields": ("response", "responded_by", "responded_at")}),
        (
            "Resolution",
            {"fields": ("resolution_notes", "resolved_by", "resolved_at", "reopen_reason")},
        ),
        ("Record", {"classes": ("collapse",), "fields": ("id", "trace_id", "updated_at")}),
    )

    service_object_argument = "point"
    service_moves = (
        AdminMove("respond", "Respond", review_point_respond, form=RespondForm, bulk=False),
        AdminMove("resolve", "Resolve", review_point_resolve, form=ResolveForm),
        AdminMove("reopen", "Reopen", review_point_reopen, form=ReopenForm),
    )

    @admin.display(description="point")
    def summary(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"

    @admin.display(description="approval")
    def approval_link(self, obj):
        approval = obj.approval
        return format_html(
            '<a href="{}">{}</a> <span class="quiet">({})</span>',
            reverse("admin:approvals_approval_change", args=(approval.pk,)),
            approval,
            approval.get_status_display(),
        )

    @admin.display(description="engagement", ordering="approval__engagement__client_code")
    def engagement(self, obj):
        return obj.approval.engagement

    @admin.display(description="concerns")
    def concerns(self, obj):
        return review_point_concerns(obj)

    def get_queryset(self, request):
        return scope_to_user(
            super().get_queryset(request), request.user, engagement_path="approval__engagement"
        )

    def get_readonly_fields(self, request, obj=None):
        # A point is what was raised; it changes only through respond / resolve / reopen.
        return tuple(name for _title, options in self.fieldsets for name in options["fields"])

    def has_add_permission(self, request):
        # Raised from the approval's page, where the approval and its subjects are known.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Save nothing: every field is read-only, and moves go through the services."""

    def save_related(self, request, form, formsets, change):
        """Save nothing (see save_model)."""


def review_point_concerns(point: ReviewPoint):
    """Return the artefact and run a point concerns, linked (or "the approval as a whole")."""
    links = []
    if point.artefact_id:
        links.append(
            (
                reverse("admin:artefacts_artefact_change", args=(point.artefact_id,)),
                f"artefact “{point.artefact}”",
            )
        )
    if point.workflow_run_id:
        links.append(
            (
                reverse("admin:workflows_workflowrun_change", args=(point.workflow_run_id,)),
                f"workflow run “{point.workflow_run}”",
            )
        )
    if not links:
        return WHOLE_APPROVAL
    return format_html_join(", ", '<a href="{}">{}</a>', links)
