"""Every write to AI assistant conversations: sessions and the messages appended to them.

A session belongs to one user; only they (or a superuser) add to it, edit or
delete it. A session about an engagement needs its owner to be able to see that
engagement. Messages are appended, never edited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audit.choices import AuditAction
from engagements.models import Engagement
from engagements.selectors import engagement_can_view
from records.exceptions import InvalidInput, NotAllowed
from records.services import (
    apply_changes,
    changes,
    create_and_record,
    lock,
    save_with_history,
    snapshot,
    soft_delete_and_record,
    validate,
)
from records.transactions import audited_transaction

from .choices import MessageRole
from .models import ChatMessage, Session

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

EDITABLE_FIELDS = frozenset({"title", "context", "engagement"})

SESSION_FOR_OTHER = "{user} may not open a chat session for {owner}: only a superuser may."
SESSION_NOT_OWNER = "{user} may not {verb} chat session “{session}”: it belongs to {owner}."
SESSION_ENGAGEMENT_HIDDEN = (
    "{user} may not talk about engagement “{engagement}”: they are not on its team."
)
MESSAGE_EMPTY = "A chat message needs content."
AGENT_MESSAGE_PERMISSION = "conversations.post_agent_messages"
MESSAGE_ROLE_AGENTS_ONLY = (
    "{user} may not post a message as the {role}: only AI agents (permission "
    "“post_agent_messages”) speak as the assistant, the system or a tool; people post "
    "user messages."
)
MESSAGE_PARENT_ELSEWHERE = (
    "Message “{parent}” belongs to another chat session: a reply stays in its session."
)
NOT_EDITABLE_REASON = "a session keeps its owner, and its messages are appended"


@audited_transaction
def session_create(
    *,
    actor: AbstractUser,
    user: AbstractUser | None = None,
    engagement: Engagement | None = None,
    title: str = "",
    context: dict | None = None,
    trace_id: str | None = None,
) -> Session:
    """Open a chat session for `user` (the actor by default), optionally about an engagement."""
    owner = user or actor
    if owner.pk != actor.pk and not actor.is_superuser:
        raise NotAllowed(SESSION_FOR_OTHER.format(user=actor, owner=owner))
    if engagement is not None:
        _require_can_view(engagement, owner)
    session = Session(
        user=owner,
        engagement=engagement,
        title=title,
        context=context or {},
        trace_id=trace_id,
    )
    validate(session)
    create_and_record(
        session,
        actor=actor,
        action=AuditAction.SESSION_CREATE,
        reason="Opened",
        description=f"Chat session {_private_label(session)} opened by {owner}",
        fields=("user", "engagement"),
        session_id=session.pk,
    )
    return session


@audited_transaction
def session_update(*, session: Session, actor: AbstractUser, data: dict[str, Any]) -> Session:
    """Change a session's title, context or engagement."""
    session = lock(session)
    _require_owner(session, actor, verb="edit")
    before = snapshot(session)
    apply_changes(session, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    _old, new = changes(before, snapshot(session))
    if not new:
        return session
    if "engagement" in new and session.engagement is not None:
        _require_can_view(session.engagement, session.user)
    validate(session)
    save_with_history(session, actor=actor, reason="Edited: " + ", ".join(sorted(new)))
    return session


@audited_transaction
def chat_message_add(
    *,
    session: Session,
    role: str,
    content: str,
    actor: AbstractUser,
    tool_name: str = "",
    tool_call_id: str = "",
    metadata: dict | None = None,
    parent: ChatMessage | None = None,
    trace_id: str | None = None,
    agent_runtime: bool = False,
) -> ChatMessage:
    """Append a message to a session and bump the session's last activity.

    Only a user message may come from a person: an assistant, system or tool turn
    needs the actor's `post_agent_messages` permission, or `agent_runtime=True`, which
    only the assistant's own server code passes (never anything a request sets).
    """
    session = lock(session)
    _require_owner(session, actor, verb="add messages to")
    speaks_as_agent = role in MessageRole.values and role != MessageRole.USER
    if speaks_as_agent and not (agent_runtime or actor.has_perm(AGENT_MESSAGE_PERMISSION)):
        label = MessageRole(role).label.lower()
        raise NotAllowed(MESSAGE_ROLE_AGENTS_ONLY.format(user=actor, role=label))
    if not content or not content.strip():
        raise InvalidInput(MESSAGE_EMPTY)
    if parent is not None and parent.session_id != session.pk:
        raise InvalidInput(MESSAGE_PARENT_ELSEWHERE.format(parent=parent))
    message = ChatMessage(
        session=session,
        role=role,
        content=content,
        tool_name=tool_name,
        tool_call_id=tool_call_id,
        metadata=metadata or {},
        parent=parent,
        trace_id=trace_id,
    )
    validate(message)
    save_with_history(message, actor=actor, reason="Added")
    session.last_activity_at = message.created_at
    save_with_history(session, actor=actor, reason="New message")
    return message


@audited_transaction
def session_delete(*, session: Session, actor: AbstractUser) -> Session:
    """Soft-delete a chat session (hidden with its messages, never destroyed)."""
    session = lock(session)
    _require_owner(session, actor, verb="delete")
    return soft_delete_and_record(
        session,
        actor=actor,
        action=AuditAction.SESSION_DELETE,
        description=f"Chat session {_private_label(session)} deleted",
    )


def _private_label(session: Session) -> str:
    """Name a session in the audit trail without its title: only its owner sees that.

    The engagement's team reads the engagement's audit events, but not the owner's
    chat sessions, so their events say which session, never what it is about.
    """
    return str(session.pk)[:8]


def _require_owner(session: Session, actor: AbstractUser, *, verb: str) -> None:
    if session.user_id != actor.pk and not actor.is_superuser:
        raise NotAllowed(
            SESSION_NOT_OWNER.format(user=actor, verb=verb, session=session, owner=session.user)
        )


def _require_can_view(engagement: Engagement, user: AbstractUser) -> None:
    if not engagement_can_view(engagement=engagement, user=user):
        raise NotAllowed(SESSION_ENGAGEMENT_HIDDEN.format(user=user, engagement=engagement))
