"""Serializers of approvals, their decisions, and professional qualifications."""

from django.utils import timezone
from rest_framework import serializers

from artefacts.models import Artefact
from config.api import (
    ActiveUserField,
    JSONObjectField,
    ModelSerializer,
    Serializer,
    VisiblePrimaryKeyRelatedField,
)
from engagements.models import Engagement
from workflows.models import WorkflowRun

from ..models import Approval, ProfessionalQualification

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")
REASON_REQUIRED = "Say why: a reason is required."


class ApprovalSerializer(ModelSerializer):
    """A request for sign-off and, once decided, the decision on record.

    The subject (artefact, workflow run or engagement) and type are set when
    requesting; afterwards only the request notes, designated approver, expiry and
    metadata of a pending approval may be edited by its requester. Decisions are
    the approve / reject / revoke actions.
    """

    artefact = VisiblePrimaryKeyRelatedField(
        queryset=Artefact.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the artefact to review (a draft is submitted for review).",
    )
    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        required=False,
        allow_null=True,
        help_text="Id of the engagement; taken from the artefact or run when omitted.",
    )
    workflow_run = VisiblePrimaryKeyRelatedField(
        queryset=WorkflowRun.objects.all(),
        required=False,
        allow_null=True,
        help_text="workflow_approval only: the run it releases (a running run waits for it).",
    )
    designated_approver = ActiveUserField(
        required=False,
        allow_null=True,
        help_text="If set, only this user (on the team, independent of the work) may decide.",
    )
    metadata = JSONObjectField(required=False, help_text="Custom fields (a JSON object).")
    available_moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The decisions allowed from the current status.",
    )

    class Meta:
        model = Approval
        fields = (
            "id",
            "approval_type",
            "artefact",
            "engagement",
            "workflow_run",
            "status",
            "requested_by",
            "requested_at",
            "request_notes",
            "designated_approver",
            "approver",
            "reviewed_at",
            "expires_at",
            "is_expired",
            "decision_notes",
            "rejection_reason",
            "revoked_at",
            "revoked_by",
            "revocation_reason",
            "artefact_version",
            "artefact_content_hash",
            "approver_qualifications",
            "metadata",
            "trace_id",
            "available_moves",
        )
        read_only_fields = (
            "id",
            "status",
            "requested_by",
            "requested_at",
            "approver",
            "reviewed_at",
            "is_expired",
            "decision_notes",
            "rejection_reason",
            "revoked_at",
            "revoked_by",
            "revocation_reason",
            "artefact_version",
            "artefact_content_hash",
            "approver_qualifications",
            "trace_id",
        )
        create_only_fields = ("approval_type", "artefact", "engagement", "workflow_run")


class ApprovalApproveSerializer(Serializer):
    """The body of an approval: optional notes for the record."""

    notes = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Decision notes."
    )


class ApprovalRejectSerializer(Serializer):
    """The body of a rejection: the reason (required) and optional notes."""

    reason = serializers.CharField(
        max_length=255,
        error_messages={"blank": REASON_REQUIRED, "required": REASON_REQUIRED},
        help_text="Why it is rejected (a standard reason code or a short sentence).",
    )
    notes = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Decision notes."
    )


class ApprovalRevokeSerializer(Serializer):
    """The body of a revocation: the reason (required)."""

    reason = serializers.CharField(
        error_messages={"blank": REASON_REQUIRED, "required": REASON_REQUIRED},
        help_text="Why the granted approval is withdrawn.",
    )


class ProfessionalQualificationSerializer(ModelSerializer):
    """A user's actuarial designation; recorded and changed by someone else (a certifier)."""

    user = ActiveUserField(help_text="Id of the holder. Set on creation only.")
    is_valid_today = serializers.SerializerMethodField(
        help_text="Whether it is valid on today's date."
    )

    class Meta:
        model = ProfessionalQualification
        fields = (
            "id",
            "user",
            "designation",
            "issuing_body",
            "membership_number",
            "valid_from",
            "valid_until",
            "is_valid_today",
            *AUDIT_FIELDS,
        )
        read_only_fields = ("id", *AUDIT_FIELDS)
        create_only_fields = ("user",)

    def get_is_valid_today(self, qualification) -> bool:
        """Return whether the qualification is valid today (local date)."""
        return qualification.is_valid_on(timezone.localdate())
