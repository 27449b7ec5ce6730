"""API views of engagements (with their lifecycle), team members and users."""

from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action

from engagements.selectors import users_visible_to
from records.api.viewsets import ServiceViewSetMixin

from .. import services
from ..filters import EngagementFilterSet, EngagementMemberFilterSet, UserFilterSet
from ..models import Engagement, EngagementMember
from .serializers import EngagementMemberSerializer, EngagementSerializer, UserSerializer

TRANSITION = "Lifecycle move (see the engagement lifecycle); the lead actuary's job."


@extend_schema_view(
    list=extend_schema(summary="List the engagements you are on"),
    create=extend_schema(summary="Open a draft engagement"),
    destroy=extend_schema(summary="Delete a draft or cancelled engagement (soft delete)"),
)
class EngagementViewSet(ServiceViewSetMixin, viewsets.ModelViewSet):
    """Engagements: client projects, scoped to the teams you are on."""

    # The team as its summary shows it: the member and the user's name, not whole users
    # (a page of 100 engagements otherwise builds 300 full user objects: issue 18).
    queryset = Engagement.objects.prefetch_related(
        Prefetch(
            "team",
            queryset=EngagementMember.objects.select_related("user").only(
                "id",
                "engagement_id",
                "user_id",
                "role",
                "user__id",
                f"user__{get_user_model().USERNAME_FIELD}",
            ),
        )
    )
    serializer_class = EngagementSerializer
    filterset_class = EngagementFilterSet
    search_fields = ("client_code", "client_name", "name", "description")
    ordering_fields = ("created_at", "updated_at", "due_date", "name", "client_code", "status")
    engagement_path = ""
    service_object_name = "engagement"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            # A list reads its page's teams itself, as values (EngagementSerializer.lean_prepare).
            return queryset.prefetch_related(None)
        return queryset

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        if "lead_actuary" not in data and data.get("reviewer") != self.actor:
            # Whoever opens an engagement leads it unless they name someone else.
            data["lead_actuary"] = self.actor
        serializer.instance = services.engagement_create(actor=self.actor, **data)

    def perform_update(self, serializer):
        serializer.instance = services.engagement_update(
            engagement=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.engagement_delete(engagement=instance, actor=self.actor)

    @extend_schema(
        request=None, summary="Activate: draft or on_hold → active", description=TRANSITION
    )
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self.transition(services.engagement_activate)

    @extend_schema(request=None, summary="Put on hold: active → on_hold", description=TRANSITION)
    @action(detail=True, methods=["post"])
    def hold(self, request, pk=None):
        return self.transition(services.engagement_hold)

    @extend_schema(
        request=None,
        summary="Complete: active → completed",
        description=TRANSITION + " Refused (409) while runs are open or before the final "
        "sign-off is approved.",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self.transition(services.engagement_complete)

    @extend_schema(
        request=None, summary="Archive: completed or cancelled → archived", description=TRANSITION
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        return self.transition(services.engagement_archive)

    @extend_schema(
        request=None, summary="Cancel: draft, active or on_hold → cancelled", description=TRANSITION
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self.transition(services.engagement_cancel)


@extend_schema_view(
    list=extend_schema(summary="List the team members of your engagements"),
    create=extend_schema(summary="Put a user on an engagement's team (lead actuary only)"),
    partial_update=extend_schema(summary="Change a team member's role"),
    update=extend_schema(summary="Change a team member's role"),
    destroy=extend_schema(summary="Take a user off the team (never the lead or reviewer)"),
)
class EngagementMemberViewSet(ServiceViewSetMixin, viewsets.ModelViewSet):
    """Team members of engagements (`?engagement_id=` for one team)."""

    queryset = EngagementMember.objects.select_related("user")
    serializer_class = EngagementMemberSerializer
    filterset_class = EngagementMemberFilterSet
    search_fields = ("user__username", "user__first_name", "user__last_name")
    ordering_fields = ("created_at", "role", "user__username")

    def perform_create(self, serializer):
        serializer.instance = services.engagement_member_add(
            actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.engagement_member_update(
            member=serializer.instance,
            role=serializer.validated_data.get("role", serializer.instance.role),
            actor=self.actor,
        )

    def perform_destroy(self, instance):
        services.engagement_member_remove(member=instance, actor=self.actor)


class UserViewSet(ServiceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Active users you work with (yourself and your teams), to pick approvers and members."""

    queryset = get_user_model().objects.order_by("username")
    serializer_class = UserSerializer
    filterset_class = UserFilterSet
    search_fields = ("username", "first_name", "last_name")
    ordering_fields = ("username", "first_name", "last_name")
    engagement_path = None

    def get_queryset(self):
        return users_visible_to(self.request.user).order_by("username")
