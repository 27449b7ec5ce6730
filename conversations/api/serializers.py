"""Serializers of chat sessions and their messages."""

from rest_framework import serializers

from engagements.models import Engagement
from records.api.serializers import JSONObjectField, RecordSerializer, VisiblePrimaryKeyRelatedField

from ..models import ChatMessage, Session

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")


class SessionSerializer(RecordSerializer):
    """A conversation of its owner with the AI assistant, optionally about an engagement."""

    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        required=False,
        allow_null=True,
        help_text="Id of the engagement discussed (one you are on).",
    )
    context = JSONObjectField(
        required=False, help_text="Active agent, preferences (a JSON object)."
    )

    class Meta:
        model = Session
        fields = (
            "id",
            "user",
            "engagement",
            "title",
            "context",
            "last_activity_at",
            "trace_id",
            *AUDIT_FIELDS,
        )
        read_only_fields = ("id", "user", "last_activity_at", "trace_id", *AUDIT_FIELDS)


class SessionMessageField(serializers.PrimaryKeyRelatedField):
    """A message of the session named in the URL (a reply stays in its session)."""

    def get_queryset(self):
        """Return the messages of the session in the serializer's context."""
        session = self.context.get("session")
        if session is None:
            return ChatMessage.objects.none()
        return ChatMessage.objects.filter(session=session)


class ChatMessageSerializer(RecordSerializer):
    """One message; appended to its session, never edited."""

    parent = SessionMessageField(
        required=False,
        allow_null=True,
        help_text="Id of the message this one answers (same session).",
    )
    metadata = JSONObjectField(required=False, help_text="Model, tokens, latency (a JSON object).")

    class Meta:
        model = ChatMessage
        fields = (
            "id",
            "session",
            "role",
            "content",
            "tool_name",
            "tool_call_id",
            "metadata",
            "parent",
            "trace_id",
            "created_at",
        )
        read_only_fields = ("id", "session", "trace_id", "created_at")
