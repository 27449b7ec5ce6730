"""Admin for approvals, through `approvals.services`.

Approve, reject and revoke ask for notes / a reason and the conflict-of-interest
statement on an intermediate page; the services apply the professional-standards
rules and the admin shows any refusal as an error message. The approval page lists
its review points (APS X2) with the moves each viewer may make (raise, respond,
resolve, reopen), exports the review memo, and for a final sign-off shows the
disclosure checklist frozen into it (ASOP 41). Approvals are records of professional
work: they are never deleted here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from artefacts.choices import ArtefactStatus
from artefacts.models import Artefact
from engagements.selectors import scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    NotesForm,
    ReasonForm,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
    move_link,
)
from records.formatting import format_date, humanize_code, person, readable_value
from workflows.models import WorkflowRun

from ..choices import (
    ApprovalStatus,
    ApprovalType,
    MemoFormat,
    ReviewPointSeverity,
)
from ..lineage import lineage_people
from ..models import Approval, DisclosureChecklist, ReviewPoint
from ..selectors import (
    addressed_to_viewer,
    approval_decider_refusal,
    approval_decision_refusal,
    approval_unresolved_points_refusal,
)
from ..services import (
    EDITABLE_FIELDS,
    MEMO_METADATA_KEY,
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    review_memo_export,
    review_point_raise,
)
from .decision import approval_run, decision_subject
from .disclosures import disclosure_view

REQUEST_FIELDS = ("approval_type", "artefact", "engagement", "workflow_run", "request_notes")
DECISION_MOVES = ("approve", "reject")
COI_STATEMENT_HELP = (
    "Say whether anything could impair your independence from this work or its client "
    "(or that nothing does). Recorded with your decision."
)
# The change page's sections; the other fields go to a collapsed "Record" section.
REQUEST_GROUP = (
    "approval_type",
    "status_chip",
    "artefact",
    "run_link",
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
    "qualifications_display",
)
REVOCATION_GROUP = ("revoked_by", "revoked_at", "revocation_reason")
MAY_DECIDE = "You may decide this approval."
READ_ONLY_DECIDED = (
    "This approval is {status}: its record is fixed and nothing on it can be edited."
)
READ_ONLY_NOT_REQUESTER = (
    "Only the person who asked for this approval, {requester}, may edit its request; "
    "you see it read-only."
)
# Fields the change page shows in place of the stored ones (readable, linked).
DISPLAY_FIELDS = ("status_chip", "run_link", "qualifications_display", "metadata_display")

REVIEW_POINT_TEXT_HELP = "The challenge: what is questioned, and why."
REVIEW_POINT_SUBJECT_HELP = "Optional: the {what} of this engagement the point concerns."

MEMO_FORMAT_HELP = (
    "The memo lists the resolved points with their answers; it is stored as artefacts."
)
MEMO_EXPORTED = "Review memo exported: {links}."
MEMO_LINK = '<a href="{}" class="review-memo-link">{}</a> (version {})'


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
        "subject_column",
        "engagement",
        "status_chip",
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
        "workflow_run",
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
                context["decision_refusal"] = refusal and addressed_to_viewer(refusal)
                context["decision_allowed"] = MAY_DECIDE if refusal is None else ""
                may_review = decider_refusal is None
            if not self._may_edit(request, obj):
                # Everything is read-only for this viewer: no Save buttons to press in vain.
                context.update(
                    show_save=False,
                    show_save_and_continue=False,
                    show_save_and_add_another=False,
                    read_only_reason=READ_ONLY_DECIDED.format(
                        status=obj.get_status_display().lower()
                    )
                    if not obj.is_pending
                    else READ_ONLY_NOT_REQUESTER.format(requester=person(obj.requested_by)),
                )
            context["decision_subject"] = decision_subject(obj, request.user)
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
        requester, the lead actuary, anyone in the work's lineage) responds; nobody
        answers their own point or resolves their own answer (the services' rules; a
        move offered here may still be refused, with the services' message).
        """
        user = request.user
        page = reverse("admin:approvals_approval_change", args=(approval.pk,))
        open_points = [p for p in points if p.can("respond")]
        preparers = set()
        if approval.is_pending and open_points:
            preparers = {approval.requested_by_id, approval.engagement.lead_actuary_id}
            preparers |= lineage_people(approval)
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            # The page is titled by its subject (the artefact and version, or the run).
            extra_context = {**(extra_context or {}), "subtitle": obj.subject_label()}
        return super().change_view(request, object_id, form_url, extra_context)

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
        # What is to be approved is fixed at request; only a pending request may be edited,
        # and only by its requester (the service's rule): anyone else sees it read-only.
        extra = ["approval_type", "artefact", "engagement", "workflow_run", *DISPLAY_FIELDS]
        if not self._may_edit(request, obj):
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None:
            return [f for f in fields if f not in DISPLAY_FIELDS]
        # The stored JSON and codes are shown through their readable counterparts.
        hidden = {"status", "workflow_run", "approver_qualifications"}
        if not self._may_edit(request, obj):
            hidden.add("metadata")
        else:
            hidden.add("metadata_display")
        return [f for f in fields if f not in hidden]

    def _may_edit(self, request, obj) -> bool:
        """Return whether the viewer may edit the approval's request (the service's rule)."""
        return obj.is_pending and (
            request.user.pk == obj.requested_by_id or request.user.is_superuser
        )

    def move_offered(self, request, move, obj):
        # Approve and Reject only to those the services would let decide.
        if move.name in DECISION_MOVES and obj.is_pending:
            return (
                approval_decision_refusal(approval=obj, user=request.user, move=move.name) is None
            )
        return True

    @admin.display(description="Approval", ordering="requested_at")
    def subject_column(self, obj):
        return obj.subject_label()

    @admin.display(description="Status", ordering="status")
    def status_chip(self, obj):
        return format_html(
            '<span class="workspace-badge status-{}">{}</span>',
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description="Workflow run")
    def run_link(self, obj):
        run = approval_run(obj)
        if run is None:
            return "—"
        url = reverse("admin:workflows_workflowrun_change", args=(run.pk,))
        via = "" if obj.workflow_run_id else " (the run that produced the artefact)"
        return format_html('<a href="{}">{}</a>{}', url, run, via)

    @admin.display(description="Approver's qualifications")
    def qualifications_display(self, obj):
        recorded = obj.approver_qualifications or {}
        items = [q for q in recorded.get("qualifications") or () if isinstance(q, dict)]
        if not items:
            return "—"
        checked = recorded.get("checked_on")
        lines = format_html_join(
            "",
            "<li>{} ({}), member {}, valid from {}{}</li>",
            (
                (
                    q.get("designation"),
                    q.get("issuing_body"),
                    q.get("membership_number"),
                    format_date(q.get("valid_from")),
                    f" to {format_date(q.get('valid_until'))}" if q.get("valid_until") else "",
                )
                for q in items
            ),
        )
        note = (
            format_html(' <span class="workspace-note">checked on {}</span>', format_date(checked))
            if checked
            else ""
        )
        return format_html('<ul class="workspace-list">{}</ul>{}', lines, note)

    @admin.display(description="Metadata")
    def metadata_display(self, obj):
        data = obj.metadata or {}
        if not data:
            return "—"
        return format_html_join(
            "",
            "<div>{}: {}</div>",
            ((humanize_code(key), readable_value(value)) for key, value in data.items()),
        )

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
