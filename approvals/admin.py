"""Admin for approvals and professional qualifications."""

from django.contrib import admin

from audit.admin import RecordAdmin

from .models import Approval, ProfessionalQualification


@admin.register(Approval)
class ApprovalAdmin(RecordAdmin):
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
    list_filter = ("status", "approval_type")
    search_fields = ("request_notes", "decision_notes", "artefact__name", "engagement__name")
    list_select_related = (
        "artefact",
        "engagement",
        "requested_by",
        "designated_approver",
        "approver",
    )
    autocomplete_fields = ("artefact", "engagement", "designated_approver")
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
    )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.requested_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ProfessionalQualification)
class ProfessionalQualificationAdmin(RecordAdmin):
    list_display = ("user", "designation", "issuing_body", "valid_from", "valid_until")
    list_filter = ("designation", "issuing_body")
    search_fields = ("user__username", "user__first_name", "user__last_name", "membership_number")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    ordering = ("user__username", "designation")
