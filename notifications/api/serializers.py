"""Serializers of a person's notifications and notification preferences."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from records.api.serializers import InputSerializer, RecordSerializer

from ..choices import EmailMode, NotificationEvent
from ..messages import name
from ..models import Notification, NotificationPreference
from ..webhooks import absolute_url


class NotificationSerializer(RecordSerializer):
    """One notification of yours: what happened, in words, and where to look."""

    url = serializers.SerializerMethodField(help_text="The admin page it is about.")
    actor_name = serializers.SerializerMethodField(help_text="Who did it; null: the system.")
    is_read = serializers.BooleanField(read_only=True)

    class Meta:
        model = Notification
        fields = (
            "id",
            "event",
            "subject",
            "message",
            "url",
            "engagement_id",
            "engagement_label",
            "actor",
            "actor_name",
            "audit_event",
            "created_at",
            "read_at",
            "is_read",
        )
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return absolute_url(obj.link)

    @extend_schema_field(OpenApiTypes.STR)
    def get_actor_name(self, obj) -> str | None:
        return name(obj.actor) if obj.actor_id else None


class MarkedReadSerializer(InputSerializer):
    """How many notifications were marked read."""

    marked_read = serializers.IntegerField(read_only=True)


class NotificationPreferenceSerializer(RecordSerializer):
    """How you are told: the events you muted, email on or off, one email each or a digest."""

    email_mode = serializers.ChoiceField(
        choices=EmailMode.choices, required=False, help_text="immediate or digest."
    )
    muted_events = serializers.ListField(
        child=serializers.ChoiceField(choices=NotificationEvent.choices),
        required=False,
        help_text="The events you do not want to hear about.",
    )
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Null until you first change them."
    )

    class Meta:
        model = NotificationPreference
        fields = ("email_enabled", "email_mode", "muted_events", "updated_at")
        read_only_fields = ("updated_at",)
