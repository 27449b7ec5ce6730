"""API views of a person's notifications and preferences: always the caller's own.

Every authenticated user may read and mark their own notifications and set their own
preferences, whatever their model permissions: these are personal, like a mailbox.
Nobody sees anyone else's, superusers included (404).
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from records.api.viewsets import ServiceViewSetMixin

from .. import services
from ..filters import NotificationFilterSet
from ..models import Notification, NotificationPreference
from ..selectors import notifications_of
from .serializers import (
    MarkedReadSerializer,
    NotificationPreferenceSerializer,
    NotificationSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List your notifications, newest first"),
    retrieve=extend_schema(summary="One of your notifications"),
)
class NotificationViewSet(ServiceViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Your notifications; mark them read (one, or all) or unread."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilterSet
    permission_classes = (permissions.IsAuthenticated,)
    search_fields = ("subject", "message")
    ordering_fields = ("created_at", "read_at")
    engagement_path = None
    service_object_name = "notification"

    def get_queryset(self):
        return notifications_of(self.request.user).order_by("-created_at")

    @extend_schema(request=None, summary="Mark the notification read")
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        return self.transition(services.notification_mark_read)

    @extend_schema(request=None, summary="Mark the notification unread again")
    @action(detail=True, methods=["post"])
    def unread(self, request, pk=None):
        return self.transition(services.notification_mark_unread)

    @extend_schema(
        request=None, responses=MarkedReadSerializer, summary="Mark all your notifications read"
    )
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        count = services.notifications_mark_all_read(actor=self.actor)
        return Response({"marked_read": count})


class NotificationPreferenceViewSet(ServiceViewSetMixin, viewsets.GenericViewSet):
    """Your notification preferences, at /notification-preferences/mine/."""

    queryset = NotificationPreference.objects.all()
    serializer_class = NotificationPreferenceSerializer
    permission_classes = (permissions.IsAuthenticated,)
    engagement_path = None
    pagination_class = None
    # One row, yours: nothing to search or order (and the schema offers neither).
    filter_backends = ()

    def get_object(self):
        """Return the actor's preferences (the defaults until they change them)."""
        return services.preferences_for([self.actor])[self.actor.pk]

    @extend_schema(summary="List your notification preferences: one row, yours")
    def list(self, request):
        return Response([self.get_serializer(self.get_object()).data])

    @extend_schema(summary="Your notification preferences (GET), or change them (PUT, PATCH)")
    @action(detail=False, methods=["get", "put", "patch"])
    def mine(self, request):
        if request.method == "GET":
            return Response(self.get_serializer(self.get_object()).data)
        serializer = self.get_serializer(data=request.data, partial=request.method == "PATCH")
        serializer.is_valid(raise_exception=True)
        preference = services.notification_preference_update(
            user=self.actor, actor=self.actor, data=dict(serializer.validated_data)
        )
        return Response(self.get_serializer(preference).data)
