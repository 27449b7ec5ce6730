from django.apps import AppConfig
from django.db.models import Q


class ConversationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "conversations"

    def ready(self):
        from audit.purge import register_purge_rule
        from records import scoping

        from .purge import SESSION_STAGE, session_kept, session_purge
        from .selectors import chat_sessions_of, historical_session_ids

        scoping.register_engagement_scope(
            "conversations.Session",
            # Not on the engagement's timeline: a chat session is its owner's, whatever
            # engagement it is about; the team sees its (untitled) audit events only.
            choices=lambda queryset, user: chat_sessions_of(queryset, user),
        )
        scoping.register_engagement_scope(
            "conversations.ChatMessage",
            rows=lambda engagement_id: Q(session__engagement_id=engagement_id),
            # Messages of sessions deleted since: their history names the session.
            history=lambda engagement_id: Q(session_id__in=historical_session_ids(engagement_id)),
        )
        register_purge_rule(
            "conversations.Session", stage=SESSION_STAGE, keep=session_kept, purge=session_purge
        )
