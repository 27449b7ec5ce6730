"""Conversations with the AI assistant: sessions and their messages."""

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from records.models import SoftDeleteModel, TraceableModel, TrackedModel, UUIDModel, empty_dict

from .choices import MessageRole


class Session(SoftDeleteModel, TraceableModel, TrackedModel):
    """A conversation between a user and the AI assistant, optionally about an engagement."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="chat_sessions"
    )
    engagement = models.ForeignKey(
        "engagements.Engagement",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_sessions",
    )
    title = models.CharField(max_length=255, blank=True)
    context = models.JSONField(default=empty_dict, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("-last_activity_at",)
        verbose_name = "chat session"

    def __str__(self):
        return self.title or f"Session {str(self.pk)[:8]}"

    def get_absolute_url(self):
        return reverse("admin:conversations_session_change", args=(self.pk,))


class ChatMessage(TraceableModel, UUIDModel):
    """One message in a chat session (user, assistant, system or tool)."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=20, choices=MessageRole.choices, db_index=True)
    content = models.TextField()
    tool_name = models.CharField(max_length=255, blank=True)
    tool_call_id = models.CharField(max_length=255, blank=True)
    metadata = models.JSONField(default=empty_dict, blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ("created_at", "id")
        verbose_name = "chat message"
        # People post user turns; only AI agents post as the assistant, the system or a tool.
        permissions = (
            ("post_agent_messages", "Can post assistant, system and tool chat messages"),
        )
        indexes = (models.Index(fields=("session", "created_at"), name="chat_message_session_idx"),)
        constraints = (
            models.CheckConstraint(
                condition=~models.Q(content=""), name="chat_message_content_required"
            ),
        )

    def __str__(self):
        return f"{self.role}: {self.content[:60]}"
