"""Admin for approvals, review points, disclosure checklists and qualifications.

Everything changes through `approvals.services`. Approve, reject and revoke ask for
notes / a reason and the conflict-of-interest statement on an intermediate page;
the services apply the professional-standards rules and the admin shows any
refusal as an error message. The approval page lists its review points (APS X2)
with the moves each viewer may make (raise, respond, resolve, reopen), exports the
review memo, and for a final sign-off shows the disclosure checklist frozen into
it (ASOP 41). Approvals, points, checklists and qualifications are records of
professional work: they are never deleted here (a qualification ends with its end
date).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from artefacts.admin import reliance_rows as artefact_reliance_rows
from artefacts.choices import REVIEWABLE_STATUSES, ArtefactStatus, DataProviderType
from artefacts.models import Artefact
from engagements.choices import CLOSED_STATUSES
from engagements.selectors import WORKING_ROLES, scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    NotesForm,
    PageExtension,
    ReadOnlyInline,
    ReasonForm,
    RecordAdmin,
    SectionButton,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
    move_link,
)
from workflows.models import WorkflowRun

from . import disclosures
from .choices import (
    SIGN_OFF_TYPES,
    ApprovalStatus,
    ApprovalType,
    DisclosureChecklistStatus,
    MemoFormat,
    ReviewPointSeverity,
)
from .models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from .provenance import provenance_people
from .selectors import (
    approval_decider_refusal,
    approval_decision_refusal,
    approval_unresolved_points_refusal,
)
from .services import (
    CHECKLIST_EDITABLE_FIELDS,
    EDITABLE_FIELDS,
    MEMO_METADATA_KEY,
    QUALIFICATION_FIELDS,
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
    disclosure_checklist_update,
    may_certify,
    qualification_create,
    qualification_update,
    review_memo_export,
    review_point_raise,
    review_point_reopen,
    review_point_resolve,
    review_point_respond,
)

REQUEST_FIELDS = ("approval_type", "artefact", "engagement", "workflow_run", "request_notes")
DECISION_MOVES = ("approve", "reject")
COI_STATEMENT_HELP = (
    "Say whether anything could impair your independence from this work or its client "
    "(or that nothing does). Recorded with your decision."
)
# The change page's sections; the other fields go to a collapsed "Record" section.
REQUEST_GROUP = (
    "approval_type",
    "status",
    "artefact",
    "workflow_run",
    "engagement",
    "requested_by",
    "requested_at",
    "request_notes",
    "designated_approver",
    "expires_at",
)
DECISION_GROUP = (
    "approver",
    "reviewed_at",
    "conflict_of_interest_statement",
    "decision_notes",
    "rejection_reason",
    "approver_qualifications",
)
REVOCATION_GROUP = ("revoked_by", "revoked_at", "revocation_reason")
MAY_DECIDE = "You may decide this approval."

REVIEW_POINT_TEXT_HELP = "The challenge: what is questioned, and why."
REVIEW_POINT_SUBJECT_HELP = "Optional: the {what} of this engagement the point concerns."
RESPONSE_HELP = "How the point was addressed (recorded with your name)."
RESOLUTION_NOTES_HELP = "Optional: why the answer settles the point."
REOPEN_REASON_HELP = "Why the answer does not (or no longer) settle the point."
MEMO_FORMAT_HELP = (
    "The memo lists the resolved points with their answers; it is stored as artefacts."
)
MEMO_EXPORTED = "Review memo exported: {links}."
MEMO_LINK = '<a href="{}" class="review-memo-link">{}</a> (version {})'
# How a point's concern is shown when it names neither an artefact nor a run.
WHOLE_APPROVAL = "the approval as a whole"
RESPONSIBLE_ACTUARY_HELP = "A working member of the engagement's team."
FROZEN_CHECKLIST = "Frozen into the final sign-off on {frozen_at:%Y-%m-%d %H:%M}: locked."


class DecisionStatementMixin(forms.Form):
    """The conflict-of-interest statement every decision records (required, never blank)."""

    conflict_of_interest_statement = forms.CharField(
        label="Conflict-of-interest statement",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=COI_STATEMENT_HELP,
    )


class ApproveForm(DecisionStatementMixin, NotesForm):
    """What an approver records with an approval: the statement and optional notes."""

    field_order = ("conflict_of_interest_statement", "notes")


class RejectForm(DecisionStatementMixin, ReasonForm):
    """What an approver records with a rejection: the statement, a reason and notes."""

    field_order = ("reason", "conflict_of_interest_statement", "notes")


class RevocationForm(forms.Form):
    """Why a granted approval is withdrawn."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Recorded on the approval and in the audit log.",
    )


class RaiseReviewPointForm(forms.Form):
    """A reviewer's challenge: severity, text, and the artefact or run it concerns."""

    severity = forms.ChoiceField(
        choices=ReviewPointSeverity.choices, initial=ReviewPointSeverity.MINOR
    )
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), label="Point", help_text=REVIEW_POINT_TEXT_HELP
    )
    artefact = forms.ModelChoiceField(
        queryset=Artefact.objects.none(),
        required=False,
        help_text=REVIEW_POINT_SUBJECT_HELP.format(what="artefact"),
    )
    workflow_run = forms.ModelChoiceField(
        queryset=WorkflowRun.objects.none(),
        required=False,
        label="Workflow run",
        help_text=REVIEW_POINT_SUBJECT_HELP.format(what="workflow run"),
    )

    # Set per approval (`for_approval`): its engagement's artefacts and runs.
    approval = None

    @classmethod
    def for_approval(cls, approval: Approval) -> type[RaiseReviewPointForm]:
        """Return the form offering the approval's engagement's artefacts and runs."""
        return type(cls.__name__, (cls,), {"approval": approval})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.approval is None:
            return
        engagement_id = self.approval.engagement_id
        artefacts = self.fields["artefact"]
        artefacts.queryset = (
            Artefact.objects.filter(engagement_id=engagement_id)
            .exclude(status=ArtefactStatus.ARCHIVED)
            .order_by("name", "-version")
        )
        artefacts.label_from_instance = _artefact_label
        artefacts.initial = self.approval.artefact_id
        runs = self.fields["workflow_run"]
        runs.queryset = WorkflowRun.objects.filter(engagement_id=engagement_id).order_by(
            "-created_at"
        )
        runs.initial = self.approval.workflow_run_id


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


class MemoExportForm(forms.Form):
    """Which renderings of the review memo to store."""

    format = forms.ChoiceField(
        choices=MemoFormat.choices, initial=MemoFormat.BOTH, help_text=MEMO_FORMAT_HELP
    )


def _artefact_label(artefact: Artefact) -> str:
    return f"{artefact.name} v{artefact.version} ({artefact.file_name})"


def memo_export_report(approval: Approval, artefacts: list[Artefact]) -> tuple[int, str]:
    """Return the success message of a memo export: a link to each stored artefact."""
    links = format_html_join(
        ", ",
        MEMO_LINK,
        (
            (reverse("admin:artefacts_artefact_change", args=(a.pk,)), a.file_name, a.version)
            for a in artefacts
        ),
    )
    return messages.SUCCESS, format_html(MEMO_EXPORTED, links=links)


@dataclass
class ReviewPointRow:
    """One review point as the approval page lists it, with the moves the viewer may make."""

    point: ReviewPoint
    # (label, URL of the move's page, CSS class)
    actions: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class ReviewPointsSection:
    """The approval page's review points, what the viewer may do, and the stored memo."""

    rows: list[ReviewPointRow]
    raise_url: str = ""
    export_url: str = ""
    memos: list[Artefact] = field(default_factory=list)
    unresolved: int = 0


@admin.register(Approval)
class ApprovalAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = (
        "approval_type",
        "artefact",
        "engagement",
        "status",
        "requested_by",
        "designated_approver",
        "approver",
        "requested_at",
        "expires_at",
    )
    list_filter = ("status", "approval_type", EngagementListFilter)
    search_fields = ("request_notes", "decision_notes", "artefact__name", "engagement__name")
    list_select_related = (
        "artefact",
        "engagement",
        "requested_by",
        "designated_approver",
        "approver",
    )
    autocomplete_fields = ("artefact", "engagement", "workflow_run", "designated_approver")
    date_hierarchy = "requested_at"
    ordering = ("-requested_at",)
    readonly_fields = (
        "requested_by",
        "requested_at",
        "approver",
        "reviewed_at",
        "decision_notes",
        "rejection_reason",
        "revoked_at",
        "revoked_by",
        "revocation_reason",
        "artefact_version",
        "artefact_content_hash",
        "approver_qualifications",
        "conflict_of_interest_statement",
    )

    service_object_argument = "approval"
    service_moves = (
        AdminMove("approve", "Approve", approval_approve, form=ApproveForm),
        AdminMove("reject", "Reject", approval_reject, form=RejectForm),
        AdminMove("revoke", "Revoke", approval_revoke, form=RevocationForm),
        AdminMove(
            "expire",
            "Expire",
            approval_expire,
            # Offered once the expiry date has passed (the service refuses before).
            available=lambda approval: approval.can("expire") and approval.is_expired,
        ),
        # Offered in the page's review points section, to those who may raise points.
        AdminMove(
            "raise_review_point",
            "Raise review point",
            review_point_raise,
            form=RaiseReviewPointForm,
            available=lambda approval: approval.is_pending,
            bulk=False,
            object_tool=False,
        ),
        AdminMove(
            "export_review_memo",
            "Export review memo",
            review_memo_export,
            form=MemoExportForm,
            bulk=False,
            object_tool=False,
            report=memo_export_report,
        ),
    )

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            points = list(
                obj.review_points.select_related(
                    "raised_by", "responded_by", "resolved_by", "artefact", "workflow_run"
                ).order_by("created_at")
            )
            may_review = False
            if obj.is_pending:
                # Say before anyone clicks whether the services would accept their decision:
                # the checks on them first, then (to approve) the unresolved review points.
                decider_refusal = approval_decider_refusal(approval=obj, user=request.user)
                unresolved = Counter(p.severity for p in points if not p.is_resolved)
                refusal = decider_refusal or approval_unresolved_points_refusal(
                    approval=obj, unresolved=unresolved
                )
                context["decision_refusal"] = refusal
                context["decision_allowed"] = MAY_DECIDE if refusal is None else ""
                may_review = decider_refusal is None
            context["review_points"] = self._review_points(
                request, obj, points, may_review=may_review
            )
            if obj.approval_type == ApprovalType.FINAL_SIGN_OFF and obj.disclosures:
                context["frozen_disclosures"] = disclosure_view(obj.disclosures)
                context["frozen_checklist"] = DisclosureChecklist.objects.filter(
                    frozen_into=obj
                ).first()
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _review_points(self, request, approval, points, *, may_review: bool) -> ReviewPointsSection:
        """Return the approval's `points` and the moves the viewer may make on each.

        Reviewers (whoever may decide) raise, resolve and reopen; the preparer (the
        requester, the lead actuary, anyone in the work's provenance) responds; nobody
        answers their own point or resolves their own answer (the services' rules; a
        move offered here may still be refused, with the services' message).
        """
        user = request.user
        page = reverse("admin:approvals_approval_change", args=(approval.pk,))
        open_points = [p for p in points if p.can("respond")]
        preparers = set()
        if approval.is_pending and open_points:
            preparers = {approval.requested_by_id, approval.engagement.lead_actuary_id}
            preparers |= provenance_people(approval)
        rows = []
        for point in points:
            row = ReviewPointRow(point)
            if approval.is_pending:
                offered = (
                    ("respond", "Respond", user.pk in preparers and user.pk != point.raised_by_id),
                    ("resolve", "Resolve", may_review and user.pk != point.responded_by_id),
                    ("reopen", "Reopen", may_review),
                )
                for move, label, allowed in offered:
                    if allowed and point.can(move):
                        url = move_link(
                            reverse("admin:approvals_reviewpoint_move", args=(point.pk, move)),
                            next_page=page,
                        )
                        row.actions.append((label, url, f"review-point-{move}"))
            rows.append(row)
        section = ReviewPointsSection(
            rows=rows,
            unresolved=sum(1 for point in points if not point.is_resolved),
            memos=list(
                Artefact.objects.filter(
                    engagement_id=approval.engagement_id,
                    **{f"metadata__{MEMO_METADATA_KEY}": str(approval.pk)},
                )
                .exclude(status__in=(ArtefactStatus.SUPERSEDED, ArtefactStatus.ARCHIVED))
                .order_by("file_name")
            ),
        )
        if approval.is_pending and may_review:
            section.raise_url = move_link(
                self.move_url(approval, "raise_review_point"), next_page=page
            )
        if points:
            section.export_url = move_link(
                self.move_url(approval, "export_review_memo"), next_page=page
            )
        return section

    def get_move_form(self, request, move, obj=None):
        if move.name == "raise_review_point" and obj is not None:
            return RaiseReviewPointForm.for_approval(obj)
        return super().get_move_form(request, move, obj)

    def get_move_context(self, request, move, objects):
        if move.name in DECISION_MOVES and len(objects) == 1 and objects[0].is_pending:
            return {
                "move_warning": approval_decision_refusal(
                    approval=objects[0], user=request.user, move=move.name
                )
            }
        if move.name == "raise_review_point" and len(objects) == 1 and objects[0].is_pending:
            return {
                "move_warning": approval_decider_refusal(approval=objects[0], user=request.user)
            }
        return {}

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return super().get_fieldsets(request, obj)
        fields = self.get_fields(request, obj)
        groups = (
            ("Request", REQUEST_GROUP, True),
            # A decision and a revocation are shown once there is one.
            ("Decision", DECISION_GROUP, not obj.is_pending),
            ("Revocation", REVOCATION_GROUP, obj.status == ApprovalStatus.REVOKED),
        )
        fieldsets = [
            (title, {"fields": tuple(f for f in group if f in fields)})
            for title, group, shown in groups
            if shown
        ]
        grouped = {f for _, group, _shown in groups for f in group}
        record = tuple(f for f in fields if f not in grouped)
        fieldsets.append(("Record", {"classes": ("collapse",), "fields": record}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        # What is to be approved is fixed at request; only a pending request may be edited.
        extra = ["approval_type", "artefact", "engagement", "workflow_run"]
        if not obj.is_pending:
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            saved = approval_request(
                actor=request.user,
                **form_data(form, (*REQUEST_FIELDS, *sorted(EDITABLE_FIELDS))),
            )
        else:
            data = changed_data(form, EDITABLE_FIELDS)
            if not data:
                return
            saved = approval_update(approval=obj, actor=request.user, data=data)
        adopt(obj, saved)


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


# --- disclosure checklists (ASOP 41) ------------------------------------------------------


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
                        FROZEN_CHECKLIST.format(frozen_at=obj.frozen_at)
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


@admin.register(ProfessionalQualification)
class ProfessionalQualificationAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = ("user", "designation", "issuing_body", "valid_from", "valid_until")
    list_filter = ("designation", "issuing_body")
    search_fields = ("user__username", "user__first_name", "user__last_name", "membership_number")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    ordering = ("user__username", "designation")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else (*readonly, "user")

    def has_add_permission(self, request):
        """Only certifiers record qualifications (the model's add permission is not enough)."""
        return super().has_add_permission(request) and may_certify(request.user)

    def has_change_permission(self, request, obj=None):
        """Only certifiers change qualifications, and never their own; others see them read-only."""
        if not (super().has_change_permission(request, obj) and may_certify(request.user)):
            return False
        return obj is None or obj.user_id != request.user.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            saved = qualification_create(
                user=form.cleaned_data["user"],
                actor=request.user,
                **form_data(form, QUALIFICATION_FIELDS),
            )
        else:
            data = changed_data(form, QUALIFICATION_FIELDS)
            if not data:
                return
            saved = qualification_update(qualification=obj, actor=request.user, data=data)
        adopt(obj, saved)


# --- the artefact page: requesting its review -------------------------------------------

# What may be asked of one artefact: a workflow approval belongs to its run (the runner
# asks for it) and a final sign-off to the whole engagement.
ARTEFACT_APPROVAL_TYPES = tuple(
    approval_type
    for approval_type in ApprovalType
    if approval_type not in (ApprovalType.WORKFLOW_APPROVAL, ApprovalType.FINAL_SIGN_OFF)
)
SIGN_OFF_LABEL = "{label} (needs a qualified approver)"
DESIGNATED_APPROVER_HELP = (
    "Only this person may decide. Empty: anyone on the team who is independent of the "
    "work may (qualified, for a sign-off)."
)
EXPIRES_AT_HELP = "Empty: no expiry. After it, the request can no longer be decided."
APPROVER_LABEL = "{name} ({username}) — {role}"
DATETIME_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


class ApprovalRequestForm(forms.Form):
    """What an approval request on an artefact asks: which review, of whom, until when."""

    approval_type = forms.ChoiceField(
        choices=tuple(
            (
                approval_type.value,
                SIGN_OFF_LABEL.format(label=approval_type.label)
                if approval_type in SIGN_OFF_TYPES
                else approval_type.label,
            )
            for approval_type in ARTEFACT_APPROVAL_TYPES
        )
    )
    designated_approver = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        help_text=DESIGNATED_APPROVER_HELP,
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        input_formats=(DATETIME_INPUT_FORMAT,),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_INPUT_FORMAT),
        help_text=EXPIRES_AT_HELP,
    )
    request_notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, label="Notes"
    )

    # Set per artefact and user (`for_artefact`): who may be designated.
    approvers = get_user_model().objects.none()
    roles: dict = {}

    @classmethod
    def for_artefact(cls, artefact, user) -> type[ApprovalRequestForm]:
        """Return the form offering the artefact's team (working roles), requester excluded."""
        members = artefact.engagement.team.filter(
            role__in=WORKING_ROLES, user__is_active=True
        ).exclude(user=user)
        roles = dict(members.values_list("user_id", "role"))
        approvers = get_user_model().objects.filter(pk__in=roles).order_by("username")
        return type(cls.__name__, (cls,), {"approvers": approvers, "roles": roles})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["designated_approver"]
        field.queryset = self.approvers
        field.label_from_instance = self._approver_label

    def _approver_label(self, user) -> str:
        return APPROVER_LABEL.format(
            name=user.get_full_name() or user.username,
            username=user.username,
            role=self.roles.get(user.pk, ""),
        )


def request_approval_from_form(
    *,
    artefact,
    actor,
    approval_type,
    designated_approver=None,
    expires_at=None,
    request_notes="",
):
    """Ask for a review or sign-off of `artefact` with the request form's answers."""
    return approval_request(
        approval_type=approval_type,
        artefact=artefact,
        designated_approver=designated_approver,
        expires_at=expires_at,
        request_notes=request_notes,
        actor=actor,
    )


# What this app adds to the pages of the apps below it (registered in ApprovalsConfig.ready()).
ARTEFACT_PAGE = PageExtension(
    moves=(
        AdminMove(
            "request_approval",
            "Request approval",
            request_approval_from_form,
            form=ApprovalRequestForm,
            form_for=ApprovalRequestForm.for_artefact,
            available=lambda artefact: artefact.status in REVIEWABLE_STATUSES,
            bulk=False,
        ),
    ),
    before="new_version",
)


# --- the engagement page: its approvals and final sign-off (ApprovalsConfig.ready()) ----

# What the "Final sign-off" section says is still missing before a request can succeed.
MISSING_RELIANCES = "{count} of {total} input data artefact(s) have no data reliance entry."
NO_CHECKLIST = "No disclosure checklist yet: pre-fill one from what the system holds."
CHECKLIST_DRAFT = "The disclosure checklist is a draft: the lead actuary, {lead}, completes it."
CHECKLIST_COMPLETED = "The disclosure checklist was completed by {user} on {when:%Y-%m-%d %H:%M}."
CHECKLIST_STALE = (
    "The data reliance register changed since the checklist was completed: pre-fill it "
    "again and have the lead actuary complete it."
)
READY_FOR_SIGN_OFF = "Ready: a final sign-off request will freeze the completed checklist into it."


@dataclass
class FinalSignOffSection:
    """The engagement's disclosure checklist, what a final sign-off still needs, and requests."""

    checklist: DisclosureChecklist | None
    needs: list[str]
    ready: str = ""
    buttons: list[SectionButton] = field(default_factory=list)
    edit_url: str = ""
    request_url: str = ""
    sign_offs: list[Approval] = field(default_factory=list)


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fk_name = "engagement"
    fields = ("approval_type", "artefact", "status", "requested_by", "approver", "requested_at")
    ordering = ("-requested_at",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("artefact", "engagement", "requested_by", "approver")
        )


def final_sign_off_section(
    model_admin, request, obj, reliance_rows, *, page: str
) -> FinalSignOffSection:
    """Return the "Final sign-off" section: the open checklist, what is missing, the moves."""
    user = request.user
    checklist = (
        DisclosureChecklist.objects.filter(engagement=obj, frozen_at__isnull=True)
        .select_related("responsible_actuary", "completed_by")
        .first()
    )
    if reliance_rows is None:
        reliance_rows = artefact_reliance_rows(request, obj, page=page)
    missing = sum(1 for row in reliance_rows if row.reliance is None)
    needs = []
    if missing:
        needs.append(MISSING_RELIANCES.format(count=missing, total=len(reliance_rows)))
    if checklist is None:
        needs.append(NO_CHECKLIST)
    elif checklist.status == DisclosureChecklistStatus.DRAFT:
        needs.append(CHECKLIST_DRAFT.format(lead=obj.lead_actuary or "none"))
    elif checklist.reliances != [row.reliance.snapshot() for row in reliance_rows if row.reliance]:
        # As the request would find it (the register as disclosures.reliance_snapshot reads it).
        needs.append(CHECKLIST_STALE)
    section = FinalSignOffSection(
        checklist=checklist,
        needs=needs,
        sign_offs=list(
            obj.approvals.filter(approval_type=ApprovalType.FINAL_SIGN_OFF)
            .select_related("requested_by", "approver")
            .order_by("-requested_at")
        ),
    )
    if checklist is not None and checklist.status == DisclosureChecklistStatus.COMPLETED:
        section.ready = CHECKLIST_COMPLETED.format(
            user=checklist.completed_by, when=checklist.completed_at
        )
    if obj.status in CLOSED_STATUSES:
        return section
    changes_checklists = user.has_perm("approvals.change_disclosurechecklist")
    if changes_checklists:
        label = "Pre-fill again" if checklist is not None else "Pre-fill disclosure checklist"
        section.buttons.append(
            SectionButton(
                "prefill-disclosures", model_admin.move_url(obj, "prefill_disclosures"), label, page
            )
        )
    if checklist is not None:
        section.edit_url = reverse(
            "admin:approvals_disclosurechecklist_change", args=(checklist.pk,)
        )
        # Only the lead actuary completes it (the service refuses anyone else).
        if checklist.can("complete") and changes_checklists and user.pk == obj.lead_actuary_id:
            section.buttons.append(
                SectionButton(
                    "complete-disclosures",
                    reverse(
                        "admin:approvals_disclosurechecklist_move",
                        args=(checklist.pk, "complete"),
                    ),
                    "Complete checklist",
                    page,
                )
            )
    if not needs and user.has_perm("approvals.add_approval"):
        section.ready = f"{section.ready} {READY_FOR_SIGN_OFF}".strip()
        query = urlencode({"engagement": obj.pk, "approval_type": ApprovalType.FINAL_SIGN_OFF})
        section.request_url = f"{reverse('admin:approvals_approval_add')}?{query}"
    return section


def final_sign_off_context(model_admin, request, engagement, context) -> dict:
    """Return the engagement page's "Final sign-off" section and the buttons it places."""
    if not request.user.has_perm("approvals.view_disclosurechecklist"):
        return {}
    section = final_sign_off_section(
        model_admin,
        request,
        engagement,
        context.get("data_reliance"),
        page=request.get_full_path(),
    )
    return {"final_sign_off": section, "section_buttons": section.buttons}


ENGAGEMENT_PAGE = PageExtension(
    moves=(
        # The "Final sign-off" section's button: creates the checklist or refreshes it.
        AdminMove(
            "prefill_disclosures",
            "Pre-fill disclosure checklist",
            disclosure_checklist_prefill,
            available=lambda engagement: engagement.status not in CLOSED_STATUSES,
            bulk=False,
            object_tool=False,
        ),
    ),
    inlines=(ApprovalInline,),
    context=final_sign_off_context,
)
