"""API views of chat sessions and their messages (appended, listed in order)."""

from django.utils.functional import cached_property
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.generics import get_object_or_404

from records.api.filters import FilterBackend
from records.api.pagination import CursorPagination
from records.api.viewsets import ServiceViewSetMixin

from .. import services
from ..filters import ChatMessageFilterSet, SessionFilterSet
from ..models import ChatMessage, Session
from .serializers import ChatMessageSerializer, SessionSerializer

SESSION_ID = OpenApiParameter(
    "session_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Id of the chat session."
)


def sessions_visible_to(user):
    """Return the chat sessions `user` may see: their own (a superuser: everyone's)."""
    sessions = Session.objects.all()
    return sessions if user.is_superuser else sessions.filter(user=user)


@extend_schema_view(
    list=extend_schema(summary="List your chat sessions, most recently active first"),
    create=extend_schema(summary="Open a chat session (yours)"),
    update=extend_schema(summary="Change a session's title, context or engagement"),
    partial_update=extend_schema(summary="Change a session's title, context or engagement"),
    destroy=extend_schema(summary="Delete a session (soft delete; kept with its messages)"),
)
class SessionViewSet(ServiceViewSetMixin, viewsets.ModelViewSet):
    """Chat sessions with the AI assistant: each belongs to one user (superusers see all).

    Messages are under /sessions/{session_id}/messages/.
    """

    queryset = Session.objects.all()
    serializer_class = SessionSerializer
    filterset_class = SessionFilterSet
    search_fields = ("title",)
    ordering_fields = ("last_activity_at", "created_at", "title")
    engagement_path = None

    def get_queryset(self):
        return sessions_visible_to(self.request.user)

    def perform_create(self, serializer):
        serializer.instance = services.session_create(
            actor=self.actor, trace_id=self.trace_id(), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.session_update(
            session=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.session_delete(session=instance, actor=self.actor)


class ChatMessagePagination(CursorPagination):
    """Oldest first, as the conversation happened: the cursor is the sending time."""

    ordering = ("created_at", "id")


@extend_schema_view(
    list=extend_schema(
        summary="The session's messages, oldest first (cursor pagination)",
        parameters=[SESSION_ID],
    ),
    create=extend_schema(
        summary="Append a message (bumps the session's last activity)",
        parameters=[SESSION_ID],
    ),
)
class ChatMessageViewSet(
    ServiceViewSetMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """The messages of one chat session: appended by its owner, never edited."""

    queryset = ChatMessage.objects.all()
    serializer_class = ChatMessageSerializer
    filterset_class = ChatMessageFilterSet
    # The order is the conversation's; a client-chosen ordering would break the cursor.
    filter_backends = (FilterBackend,)
    pagination_class = ChatMessagePagination
    engagement_path = None

    @cached_property
    def session(self) -> Session:
        """Return the session of the URL, if the user may see it (404 otherwise)."""
        return get_object_or_404(
            sessions_visible_to(self.request.user), pk=self.kwargs["session_id"]
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ChatMessage.objects.none()
        return super().get_queryset().filter(session=self.session)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "session_id" in self.kwargs:
            context["session"] = self.session
        return context

    def perform_create(self, serializer):
        serializer.instance = services.chat_message_add(
            session=self.session,
            actor=self.actor,
            trace_id=self.trace_id(),
            **serializer.validated_data,
        )
