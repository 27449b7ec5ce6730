"""API views of approvals (request, edit, decide, revoke) and professional qualifications."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.decorators import action

from config.api import ServiceViewSetMixin, users_visible_to
from engagements.selectors import VIEW_ALL_PERMISSION

from .. import services
from ..filters import ApprovalFilterSet, ProfessionalQualificationFilterSet
from ..models import Approval, ProfessionalQualification
from .serializers import (
    ApprovalApproveSerializer,
    ApprovalRejectSerializer,
    ApprovalRevokeSerializer,
    ApprovalSerializer,
    ProfessionalQualificationSerializer,
)

DECISION = (
    "Only a team member independent of the work (not the requester, the artefact's creator "
    "or the run's starter) and, if one is designated, the designated approver may decide; "
    "sign-offs need a professional qualification valid today (403 otherwise). The decision "
    "carries through to the artefact (approved / rejected) and to a run waiting for it "
    "(completed / failed)."
)


@extend_schema_view(
    list=extend_schema(summary="List the approvals of your engagements"),
    create=extend_schema(
        summary="Request a sign-off on an artefact, a workflow run or an engagement"
    ),
    update=extend_schema(summary="Edit a pending approval (its requester only)"),
    partial_update=extend_schema(summary="Edit a pending approval (its requester only)"),
)
class ApprovalViewSet(
    ServiceViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Approvals: professional sign-offs, never deleted (revoke a granted one instead)."""

    queryset = Approval.objects.select_related("artefact", "engagement")
    serializer_class = ApprovalSerializer
    filterset_class = ApprovalFilterSet
    search_fields = ("request_notes", "decision_notes", "rejection_reason", "revocation_reason")
    ordering_fields = ("requested_at", "reviewed_at", "expires_at", "status", "approval_type")
    service_object_name = "approval"

    def perform_create(self, serializer):
        serializer.instance = services.approval_request(
            actor=self.actor, trace_id=self.trace_id(), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.approval_update(
            approval=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    @extend_schema(
        request=ApprovalApproveSerializer,
        summary="Approve: pending → approved",
        description=DECISION,
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        data = self.validated_input(ApprovalApproveSerializer)
        return self.transition(services.approval_approve, **data)

    @extend_schema(
        request=ApprovalRejectSerializer,
        summary="Reject with a reason: pending → rejected",
        description=DECISION,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = self.validated_input(ApprovalRejectSerializer)
        return self.transition(services.approval_reject, **data)

    @extend_schema(
        request=ApprovalRevokeSerializer,
        summary="Revoke with a reason: approved → revoked",
        description="Its approver, the engagement's lead actuary or reviewer may revoke; an "
        "approved artefact goes back to review, a completed run stays completed.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        data = self.validated_input(ApprovalRevokeSerializer)
        return self.transition(services.approval_revoke, **data)


@extend_schema_view(
    list=extend_schema(summary="List professional qualifications"),
    create=extend_schema(summary="Record someone else's qualification (certifiers)"),
    update=extend_schema(summary="Change someone else's qualification (certifiers)"),
    partial_update=extend_schema(summary="Change someone else's qualification (certifiers)"),
)
class ProfessionalQualificationViewSet(
    ServiceViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Professional qualifications (FIA, FSA, …): yours and your colleagues'.

    Certifiers (add or change permission on qualifications), superusers and global
    viewers see everyone's. A qualification ends (valid_until); it is never deleted,
    because decisions made under it keep a snapshot.
    """

    queryset = ProfessionalQualification.objects.all()
    serializer_class = ProfessionalQualificationSerializer
    filterset_class = ProfessionalQualificationFilterSet
    search_fields = ("issuing_body", "membership_number", "user__username", "user__last_name")
    ordering_fields = ("valid_from", "valid_until", "designation", "created_at")
    engagement_path = None

    def get_queryset(self):
        queryset = super().get_queryset()
        user = self.request.user
        if user.is_superuser or any(
            user.has_perm(permission)
            for permission in (
                VIEW_ALL_PERMISSION,
                services.ADD_QUALIFICATION_PERMISSION,
                services.CHANGE_QUALIFICATION_PERMISSION,
            )
        ):
            return queryset
        return queryset.filter(user__in=users_visible_to(user))

    def perform_create(self, serializer):
        serializer.instance = services.qualification_create(
            actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.qualification_update(
            qualification=serializer.instance, actor=self.actor, data=serializer.validated_data
        )
