"""Serializers of approvals, their decisions, and professional qualifications."""

from django.utils import timezone
from rest_framework import serializers

from artefacts.api.shapes import RelianceSnapshotShape
from artefacts.models import Artefact
from engagements.models import Engagement
from records.api.serializers import (
    ActiveUserField,
    InputSerializer,
    JSONObjectField,
    RecordSerializer,
    VisiblePrimaryKeyRelatedField,
)
from records.api.shapes import ShapeField
from workflows.models import WorkflowRun

from ..choices import MemoFormat
from ..models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from .shapes import ApproverQualificationsShape, DisclosuresShape, MaterialChangesComparisonShape

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")
REASON_REQUIRED = "Say why: a reason is required."
STATEMENT_REQUIRED = (
    "Record your conflict-of-interest statement: say whether anything could impair your "
    "independence (or that nothing does)."
)
RESPONSE_REQUIRED = "Say how the point was addressed: a response is required."


class ApprovalSerializer(RecordSerializer):
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
        help_text="workflow_approval only: the run it releases (a running run waits for it). "
        "The runner requests this approval itself when a reserve_calculation or "
        "ibnr_estimation run finishes (the run then waits for it): requesting another answers "
        "409; find it with GET /approvals/?workflow_run_id=….",
    )
    designated_approver = ActiveUserField(
        required=False,
        allow_null=True,
        help_text="If set, only this user (on the team, independent of the work) may decide.",
    )
    metadata = JSONObjectField(required=False, help_text="Custom fields (a JSON object).")
    approver_qualifications = ShapeField(
        ApproverQualificationsShape,
        help_text="The decider's qualifications that counted, recorded with the decision.",
    )
    disclosures = ShapeField(
        DisclosuresShape,
        help_text="final_sign_off only: the disclosure checklist, frozen when requested.",
    )
    available_moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The moves the approval's lifecycle allows from its current status, computed "
        "by the server: approve and reject while pending, revoke once approved. Whether you "
        "may make them is checked when you do (independence, qualification: 403). An "
        "expire move is the server's own (the expire_approvals command, at expires_at).",
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
            "conflict_of_interest_statement",
            "disclosures",
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
            "conflict_of_interest_statement",
            "disclosures",
            "trace_id",
        )
        create_only_fields = ("approval_type", "artefact", "engagement", "workflow_run")


def required_text(message: str, help_text: str, **options) -> serializers.CharField:
    """Return a text field that must be given and not blank; both refusals say `message`."""
    return serializers.CharField(
        error_messages={"blank": message, "required": message}, help_text=help_text, **options
    )


def optional_notes(help_text: str) -> serializers.CharField:
    """Return an optional text field that defaults to the empty string."""
    return serializers.CharField(required=False, allow_blank=True, default="", help_text=help_text)


def conflict_of_interest_field():
    """Return the (required) conflict-of-interest statement field of a decision."""
    return required_text(
        STATEMENT_REQUIRED, "Your statement on conflicts of interest with this work (required)."
    )


class ApprovalApproveSerializer(InputSerializer):
    """The body of an approval: the conflict-of-interest statement and optional notes."""

    conflict_of_interest_statement = conflict_of_interest_field()
    notes = optional_notes("Decision notes.")


class ApprovalRejectSerializer(InputSerializer):
    """The body of a rejection: the reason and the conflict-of-interest statement; notes."""

    conflict_of_interest_statement = conflict_of_interest_field()
    reason = required_text(
        REASON_REQUIRED,
        "Why it is rejected (a standard reason code or a short sentence).",
        max_length=255,
    )
    notes = optional_notes("Decision notes.")


class ApprovalRevokeSerializer(InputSerializer):
    """The body of a revocation: the reason (required)."""

    reason = required_text(REASON_REQUIRED, "Why the granted approval is withdrawn.")


class ReviewMemoSerializer(InputSerializer):
    """The body of a review memo export: which format(s)."""

    format = serializers.ChoiceField(
        choices=MemoFormat.choices,
        default=MemoFormat.BOTH,
        help_text="markdown, docx, or both (default).",
    )


class ReviewPointSerializer(RecordSerializer):
    """A reviewer's challenge on an approval and, once given, the preparer's answer.

    Raised with its approval, severity and text (and optionally the artefact or run
    it concerns); everything else changes through respond / resolve / reopen.
    """

    approval = VisiblePrimaryKeyRelatedField(
        queryset=Approval.objects.all(), help_text="Id of the pending approval it challenges."
    )
    artefact = VisiblePrimaryKeyRelatedField(
        queryset=Artefact.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the artefact it concerns (same engagement), if any.",
    )
    workflow_run = VisiblePrimaryKeyRelatedField(
        queryset=WorkflowRun.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the workflow run it concerns (same engagement), if any.",
    )
    available_moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The moves the point's lifecycle allows from its status, computed by the "
        "server (respond, resolve, reopen): each is an action; who may make it is checked "
        "when you do (the preparer responds, the reviewer resolves or reopens: 403).",
    )

    class Meta:
        model = ReviewPoint
        fields = (
            "id",
            "approval",
            "severity",
            "text",
            "artefact",
            "workflow_run",
            "status",
            "raised_by",
            "response",
            "responded_by",
            "responded_at",
            "resolution_notes",
            "resolved_by",
            "resolved_at",
            "reopen_reason",
            "trace_id",
            "available_moves",
            *AUDIT_FIELDS,
        )
        read_only_fields = (
            "id",
            "status",
            "raised_by",
            "response",
            "responded_by",
            "responded_at",
            "resolution_notes",
            "resolved_by",
            "resolved_at",
            "reopen_reason",
            "trace_id",
            *AUDIT_FIELDS,
        )
        create_only_fields = ("approval", "severity", "text", "artefact", "workflow_run")


class ReviewPointRespondSerializer(InputSerializer):
    """The preparer's answer to a review point."""

    response = required_text(RESPONSE_REQUIRED, "How the point was addressed.")


class ReviewPointResolveSerializer(InputSerializer):
    """The reviewer's acceptance of an answer, with optional notes."""

    notes = optional_notes("Resolution notes.")


class ReviewPointReopenSerializer(InputSerializer):
    """Why the reviewer challenges again."""

    reason = required_text(
        REASON_REQUIRED, "Why the answer does not (or no longer) settle the point."
    )


class DisclosureChecklistSerializer(RecordSerializer):
    """The disclosures of a final sign-off (ASOP 41), pre-filled, completed by the lead actuary.

    The responsible actuary, information date and texts may be edited until the
    checklist is frozen into a final sign-off; reliances and the comparison with the
    previous engagement come from the system (prefill).
    """

    responsible_actuary = ActiveUserField(
        required=False, allow_null=True, help_text="Id of the responsible actuary (on the team)."
    )
    reliances = ShapeField(
        RelianceSnapshotShape,
        many=True,
        help_text="The data reliance register as the checklist holds it.",
    )
    comparison = ShapeField(
        MaterialChangesComparisonShape,
        help_text="The key results of the previous engagement and this one, as pre-filled.",
    )
    available_moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The moves the checklist's lifecycle allows from its status, computed by "
        "the server: complete while a draft; revise once completed, which is not an action "
        "but what an edit does (it must be completed again). A final sign-off freezes it.",
    )

    class Meta:
        model = DisclosureChecklist
        fields = (
            "id",
            "engagement",
            "status",
            "responsible_actuary",
            "information_date",
            "reliances",
            "previous_engagement",
            "comparison",
            "material_changes",
            "other_disclosures",
            "completed_by",
            "completed_at",
            "frozen_into",
            "frozen_at",
            "is_frozen",
            "available_moves",
            *AUDIT_FIELDS,
        )
        read_only_fields = (
            "id",
            "engagement",
            "status",
            "reliances",
            "previous_engagement",
            "comparison",
            "completed_by",
            "completed_at",
            "frozen_into",
            "frozen_at",
            "is_frozen",
            *AUDIT_FIELDS,
        )


class DisclosureChecklistPrefillSerializer(InputSerializer):
    """Which engagement's checklist to pre-fill."""

    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        help_text="Id of the engagement (one you work on).",
    )


class ProfessionalQualificationSerializer(RecordSerializer):
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
