"""Every tool call on the record: audit events, and the chat session's tool messages.

`call_tool` is the one entry point both doors (stdio and HTTP) use. It writes
agent_invoke before anything runs, then agent_complete or agent_error once the call
ended; each event carries the tool, its arguments (secrets redacted, inline file
content reduced to its size and SHA-256), the trace id, the chat session and the acting
user, and the closing one lists the objects the call touched. When the call names a
chat session of the user, the call and its result are appended to it as `tool`
messages (the result a reply to the call), with `tool_calls` in their metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import TYPE_CHECKING, Any

from audit.choices import AuditAction, Severity
from audit.services import audit_record
from conversations.choices import MessageRole
from conversations.models import ChatMessage, Session
from conversations.services import chat_message_add
from engagements.selectors import engagements_visible_to

from .calls import INTERNAL_ERROR, CallContext, CallOutcome, ToolFailure, not_found, run_tool
from .tools import TOOLS, decision_refusal, is_decision_name

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

logger = logging.getLogger(__name__)

RESOURCE_TYPE = "mcp_tool"
REDACTED = "********"
# Argument names whose values are never written down.
SECRET_MARKERS = ("token", "password", "secret", "authorization", "api_key", "apikey")
# Arguments that carry a file's content: recorded as size and SHA-256, not as text.
CONTENT_ARGUMENTS = frozenset({"csv_text", "content_base64"})
# The longest result text a chat message keeps (the rest is in the tool's answer).
MAX_MESSAGE_TEXT = 20_000
TRACE_ID_LENGTH = 64

INVOKED = "Agent called {tool}"
COMPLETED = "Agent call {tool} completed"
FAILED = "Agent call {tool} failed: {message}"
CALL_MESSAGE = "Call {tool} with {arguments}"
UNKNOWN_TOOL_MESSAGE = "There is no tool named {name!r}. The tools are: {names}."


def redact(arguments: Any) -> Any:
    """Return the arguments as the record keeps them: no secrets, no file content."""
    if isinstance(arguments, dict):
        kept = {}
        for key, value in arguments.items():
            lowered = str(key).lower()
            if any(marker in lowered for marker in SECRET_MARKERS):
                kept[key] = REDACTED
            elif key in CONTENT_ARGUMENTS and isinstance(value, str):
                digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
                kept[key] = f"<{len(value):,} characters, sha256 {digest}>"
            else:
                kept[key] = redact(value)
        return kept
    if isinstance(arguments, list):
        return [redact(item) for item in arguments]
    return arguments


def new_trace_id() -> str:
    """Return a fresh trace id for a call that came without one."""
    return uuid.uuid4().hex


def call_tool(
    *,
    user: AbstractUser,
    name: str,
    arguments: dict[str, Any] | None,
    trace_id: str | None = None,
    chat_session_id: str | None = None,
    transport: str = "",
) -> CallOutcome:
    """Run one tool call as `user`, on the record; return its outcome (never raise)."""
    trace_id = (trace_id or new_trace_id())[:TRACE_ID_LENGTH]
    session, session_failure = _chat_session(user, chat_session_id)
    context = CallContext(user=user, trace_id=trace_id, chat_session=session)
    kept_arguments = redact(arguments or {})
    call_id = uuid.uuid4().hex
    common = {
        "tool": name,
        "arguments": kept_arguments,
        "tool_call_id": call_id,
        "transport": transport,
    }
    if chat_session_id:
        common["chat_session"] = str(chat_session_id)
    audit_record(
        action=AuditAction.AGENT_INVOKE,
        resource_type=RESOURCE_TYPE,
        description=INVOKED.format(tool=name),
        user=user,
        engagement_id=_named_engagement(user, arguments),
        metadata=common,
        session_id=session.pk if session else None,
        trace_id=trace_id,
    )
    call_message = None
    if session is not None:
        call_message = _append_call(session, user, name, kept_arguments, call_id, trace_id)

    tool = TOOLS.get(name)
    if session_failure is not None:
        outcome = CallOutcome(failure=session_failure)
    elif tool is None:
        outcome = CallOutcome(failure=_unknown_tool(name))
    else:
        try:
            outcome = run_tool(tool, context, arguments)
        except Exception as error:  # the server must answer, whatever the handler did
            logger.exception("MCP tool %s failed (trace %s)", name, trace_id)
            outcome = CallOutcome(
                failure=ToolFailure(
                    INTERNAL_ERROR.format(
                        name=name, error_type=type(error).__name__, trace_id=trace_id
                    ),
                    code="error",
                ),
                touched=list(context.touched),
            )

    touched = [item.as_dict() for item in outcome.touched]
    if outcome.failure is None:
        action, severity = AuditAction.AGENT_COMPLETE, Severity.INFO
        description = COMPLETED.format(tool=name)
        metadata = {**common, "touched": touched}
    else:
        failure = outcome.failure
        action = AuditAction.AGENT_ERROR
        severity = Severity.ERROR if failure.code == "error" else Severity.WARNING
        description = FAILED.format(tool=name, message=failure.message)[:1000]
        metadata = {**common, "touched": touched, **failure.as_dict()}
    audit_record(
        action=action,
        severity=severity,
        resource_type=RESOURCE_TYPE,
        description=description,
        user=user,
        engagement_id=context.engagement_id or _named_engagement(user, arguments),
        metadata=metadata,
        session_id=session.pk if session else None,
        trace_id=trace_id,
    )
    if call_message is not None:
        _append_result(session, user, name, call_message, outcome, touched, trace_id)
    return outcome


def _unknown_tool(name: str) -> ToolFailure:
    if is_decision_name(name):
        return decision_refusal(name)
    return ToolFailure(
        UNKNOWN_TOOL_MESSAGE.format(name=name, names=", ".join(sorted(TOOLS))),
        code="not_found",
        argument="name",
    )


def _chat_session(user, chat_session_id) -> tuple[Session | None, ToolFailure | None]:
    """Return the user's chat session the call names, or the failure to report."""
    if not chat_session_id:
        return None, None
    try:
        pk = uuid.UUID(str(chat_session_id))
    except ValueError:
        return None, not_found("Chat session", chat_session_id, argument="chat_session_id")
    sessions = Session.objects.filter(pk=pk)
    if not user.is_superuser:
        sessions = sessions.filter(user=user)
    session = sessions.first()
    if session is None:
        return None, not_found("Chat session", chat_session_id, argument="chat_session_id")
    return session, None


def _named_engagement(user, arguments) -> uuid.UUID | None:
    """Return the engagement a call's arguments name, if the user sees it (for the timeline)."""
    value = (arguments or {}).get("engagement_id") if isinstance(arguments, dict) else None
    try:
        pk = uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
    if pk is None:
        return None
    return engagements_visible_to(user).filter(pk=pk).values_list("pk", flat=True).first()


def _append_call(session, user, name, arguments, call_id, trace_id) -> ChatMessage:
    text = json.dumps(arguments, sort_keys=True, default=str)
    return chat_message_add(
        session=session,
        role=MessageRole.TOOL,
        content=CALL_MESSAGE.format(tool=name, arguments=text)[:MAX_MESSAGE_TEXT],
        actor=user,
        tool_name=name,
        tool_call_id=call_id,
        metadata={
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            ],
        },
        trace_id=trace_id,
        agent_runtime=True,
    )


def _append_result(session, user, name, call_message, outcome, touched, trace_id) -> None:
    if outcome.failure is None:
        status = "complete"
        text = json.dumps(outcome.result, default=str)
    else:
        status = "error"
        text = outcome.failure.message
    chat_message_add(
        session=session,
        role=MessageRole.TOOL,
        content=text[:MAX_MESSAGE_TEXT] or status,
        actor=user,
        tool_name=name,
        tool_call_id=call_message.tool_call_id,
        parent=call_message,
        metadata={
            "tool_calls": [{"id": call_message.tool_call_id, "status": status}],
            "touched": touched,
            **({} if outcome.failure is None else outcome.failure.as_dict()),
        },
        trace_id=trace_id,
        agent_runtime=True,
    )
