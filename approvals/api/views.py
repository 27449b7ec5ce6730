"""API views of approvals (request, edit, decide, revoke, review memo), their review points,
disclosure checklists, and professional qualifications."""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from artefacts.api.serializers import ArtefactSerializer
from artefacts.models import Artefact
from engagements.selectors import VIEW_ALL_PERMISSION, users_visible_to
from records.api.viewsets import KeptRecordViewSet, ServiceViewSetMixin

from .. import services
from ..filters import (
    ApprovalFilterSet,
    DisclosureChecklistFilterSet,
    ProfessionalQualificationFilterSet,
    ReviewPointFilterSet,
)
from ..models import Approval, DisclosureChecklist, ProfessionalQualification, ReviewPoint
from .serializers import (
    ApprovalApproveSerializer,
    ApprovalRejectSerializer,
    ApprovalRevokeSerializer,
    ApprovalSerializer,
    DisclosureChecklistPrefillSerializer,
    DisclosureChecklistSerializer,
    ProfessionalQualificationSerializer,
    ReviewMemoSerializer,
    ReviewPointReopenSerializer,
    ReviewPointResolveSerializer,
    ReviewPointRespondSerializer,
    ReviewPointSerializer,
)

DECISION = (
    "Only a team member independent of the work and, if one is designated, the designated "
    "approver may decide: not the requester, nor anyone who uploaded, created, queued or "
    "started anything in its lineage (the artefact, its earlier versions, the run that "
    "produced it, that run's inputs); sign-offs need a professional qualification valid "
    "today (403 otherwise). The decider's conflict-of-interest statement is required (400). "
    "An approval is not approved while a review point is unresolved, nor a final sign-off "
    "while input data has no data reliance entry (409). The decision carries through to "
    "the artefact (approved / rejected) and to a run waiting for it (completed / failed)."
)
POINT_REVIEWER = "Whoever may decide the approval (same independence rules) does this."


@extend_schema_view(
    list=extend_schema(summary="List the approvals of your engagements"),
    create=extend_schema(
        summary="Request a sign-off on an artefact, a workflow run or an engagement",
        description="Any working member of the team requests; a draft artefact is submitted "
        "for review. A reserve_calculation or ibnr_estimation run needs no request: when it "
        "finishes, the runner requests its workflow_approval itself (the run waits for it), "
        "so requesting one answers 409; find it with GET /approvals/?workflow_run_id=…. A "
        "final_sign_off freezes the engagement's disclosure checklist into `disclosures`.",
    ),
    update=extend_schema(summary="Edit a pending approval (its requester only)"),
    partial_update=extend_schema(summary="Edit a pending approval (its requester only)"),
)
class ApprovalViewSet(KeptRecordViewSet):
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
        return self.transition(services.approval_approve, ApprovalApproveSerializer)

    @extend_schema(
        request=ApprovalRejectSerializer,
        summary="Reject with a reason: pending → rejected",
        description=DECISION,
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self.transition(services.approval_reject, ApprovalRejectSerializer)

    @extend_schema(
        request=ReviewMemoSerializer,
        responses={201: ArtefactSerializer(many=True)},
        summary="Export the resolved review points as a review memo (artefacts)",
        description="Stores the memo as Markdown and/or Word artefacts of the engagement "
        "(a new version when the points changed since the last export; the same artefact "
        "when they did not). Any working member of the team.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="review-memo",
        permission_model=Artefact,
        permission_verbs={"POST": "add"},
        # It answers the memo's artefacts as one array: no pages, no list filters.
        pagination_class=None,
        filter_backends=(),
    )
    def review_memo(self, request, pk=None):
        approval = self.get_object()
        data = self.validated_input(ReviewMemoSerializer)
        artefacts = services.review_memo_export(approval=approval, actor=self.actor, **data)
        body = ArtefactSerializer(artefacts, many=True, context=self.get_serializer_context())
        return Response(body.data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=ApprovalRevokeSerializer,
        summary="Revoke with a reason: approved → revoked",
        description="Its approver, the engagement's lead actuary or reviewer may revoke; an "
        "approved artefact goes back to review, a completed run stays completed.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return self.transition(services.approval_revoke, ApprovalRevokeSerializer)


@extend_schema_view(
    list=extend_schema(summary="List the review points of your engagements' approvals"),
    create=extend_schema(
        summary="Raise a review point on a pending approval", description=POINT_REVIEWER
    ),
)
class ReviewPointViewSet(
    ServiceViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Review points: challenges raised, answered and resolved on record (APS X2)."""

    queryset = ReviewPoint.objects.select_related("approval", "raised_by")
    serializer_class = ReviewPointSerializer
    filterset_class = ReviewPointFilterSet
    search_fields = ("text", "response", "resolution_notes")
    ordering_fields = ("created_at", "updated_at", "severity", "status")
    engagement_path = "approval__engagement"
    service_object_name = "point"

    def perform_create(self, serializer):
        serializer.instance = services.review_point_raise(
            actor=self.actor, trace_id=self.trace_id(), **serializer.validated_data
        )

    @extend_schema(
        request=ReviewPointRespondSerializer,
        summary="Answer: open → responded",
        description="The preparer answers: the approval's requester, the lead actuary, or "
        "someone who took part in the work under review; never the point's raiser.",
    )
    @action(detail=True, methods=["post"])
    def respond(self, request, pk=None):
        return self.transition(services.review_point_respond, ReviewPointRespondSerializer)

    @extend_schema(
        request=ReviewPointResolveSerializer,
        summary="Accept the answer: responded → resolved",
        description=POINT_REVIEWER,
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self.transition(services.review_point_resolve, ReviewPointResolveSerializer)

    @extend_schema(
        request=ReviewPointReopenSerializer,
        summary="Challenge again: responded or resolved → open",
        description=POINT_REVIEWER,
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self.transition(services.review_point_reopen, ReviewPointReopenSerializer)


PREFILL = (
    "Refreshes the reliances (from the data reliance register) and the comparison with the "
    "previous engagement of the same client and type, and fills the responsible actuary, "
    "the information date and the material changes where they are empty. A completed "
    "checklist that changes goes back to draft. Any working member of the team."
)


@extend_schema_view(
    list=extend_schema(summary="List the disclosure checklists of your engagements"),
    create=extend_schema(
        request=DisclosureChecklistPrefillSerializer,
        summary="Pre-fill the engagement's open checklist (created if it has none)",
        description=PREFILL + " 201 when created, 200 when the open one was refreshed.",
    ),
    update=extend_schema(summary="Edit a checklist until it is frozen"),
    partial_update=extend_schema(summary="Edit a checklist until it is frozen"),
)
class DisclosureChecklistViewSet(KeptRecordViewSet):
    """Disclosure checklists of final sign-offs (ASOP 41); frozen ones are locked."""

    queryset = DisclosureChecklist.objects.select_related("engagement", "responsible_actuary")
    serializer_class = DisclosureChecklistSerializer
    filterset_class = DisclosureChecklistFilterSet
    ordering_fields = ("created_at", "updated_at", "completed_at", "frozen_at")
    service_object_name = "checklist"

    def perform_update(self, serializer):
        serializer.instance = services.disclosure_checklist_update(
            checklist=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def create(self, request, *args, **kwargs):
        data = self.validated_input(DisclosureChecklistPrefillSerializer)
        existed = DisclosureChecklist.objects.filter(
            engagement=data["engagement"], frozen_at__isnull=True
        ).exists()
        checklist = services.disclosure_checklist_prefill(actor=self.actor, **data)
        return Response(
            self.get_serializer(checklist).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=None,
        summary="Pre-fill this checklist again from what the system holds",
        description=PREFILL + " Refused (409) once it is frozen.",
    )
    @action(detail=True, methods=["post"])
    def prefill(self, request, pk=None):
        return self.transition(services.disclosure_checklist_prefill)

    @extend_schema(
        request=None,
        summary="Complete: draft → completed (the lead actuary only)",
        description="Needs the responsible actuary, the information date and a data reliance "
        "entry for every input artefact.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self.transition(services.disclosure_checklist_complete)


@extend_schema_view(
    list=extend_schema(summary="List professional qualifications"),
    create=extend_schema(summary="Record someone else's qualification (certifiers)"),
    update=extend_schema(summary="Change someone else's qualification (certifiers)"),
    partial_update=extend_schema(summary="Change someone else's qualification (certifiers)"),
)
class ProfessionalQualificationViewSet(KeptRecordViewSet):
    """Professional qualifications (FIA, FSA, …): yours and your colleagues'.

    Certifiers (the Certifiers group: permission to certify qualifications), superusers
    and global viewers see everyone's; only certifiers record or change them, never their
    own, and a qualification certified after a sign-off was requested does not count for it.
    A qualification ends (valid_until); it is never deleted,
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
        if user.has_perm(VIEW_ALL_PERMISSION) or services.may_certify(user):
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
