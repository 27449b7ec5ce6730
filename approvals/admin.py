"""Admin for approvals and professional qualifications, through `approvals.services`.

Approve, reject and revoke ask for notes / a reason on an intermediate page; the
services apply the professional-standards rules and the admin shows any refusal
as an error message. Approvals and qualifications are records of professional
decisions: they are never deleted here (a qualification ends with its end date).
"""

from django import forms
from django.contrib import admin

from audit.admin import EngagementListFilter, RecordAdmin
from config.service_admin import (
    AdminMove,
    NotesForm,
    ReasonForm,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
)
from engagements.selectors import scope_to_user

from .choices import ApprovalStatus
from .models import Approval, ProfessionalQualification
from .selectors import approval_decision_refusal
from .services import (
    EDITABLE_FIELDS,
    QUALIFICATION_FIELDS,
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    qualification_create,
    qualification_update,
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
    )

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.is_pending:
            # Say before anyone clicks whether the services would accept their decision.
            refusal = approval_decision_refusal(approval=obj, user=request.user)
            context["decision_refusal"] = refusal
            context["decision_allowed"] = MAY_DECIDE if refusal is None else ""
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_move_context(self, request, move, objects):
        if move.name in DECISION_MOVES and len(objects) == 1 and objects[0].is_pending:
            return {
                "move_warning": approval_decision_refusal(approval=objects[0], user=request.user)
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
