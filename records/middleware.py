"""Request context: who is acting, from where, so audit events can be filled in anywhere."""

from __future__ import annotations

import contextvars
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, replace

TRACE_HEADER = "HTTP_X_TRACE_ID"
CHAT_SESSION_HEADER = "HTTP_X_CHAT_SESSION_ID"


@dataclass(frozen=True)
class RequestContext:
    """What is known about the current request (or command) for the audit trail."""

    request: object | None = None
    acting_user: object | None = None
    ip_address: str | None = None
    user_agent: str = ""
    trace_id: str | None = None
    session_id: uuid.UUID | None = None

    @property
    def user(self):
        """Return the acting user: set explicitly, or the request's authenticated user.

        Read lazily, because DRF authenticates (token auth) after middleware ran.
        """
        if self.acting_user is not None:
            return self.acting_user
        user = getattr(self.request, "user", None)
        return user if user is not None and user.is_authenticated else None


_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "request_context",
    default=RequestContext(),  # noqa: B039 - immutable default
)


def get_request_context() -> RequestContext:
    """Return the context of the request being served (empty outside a request)."""
    return _context.get()


@contextmanager
def request_context(**values):
    """Override parts of the request context for a block (commands, tasks, tests)."""
    token = _context.set(replace(_context.get(), **values))
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def client_ip(request) -> str | None:
    """Return the client's IP address as the web server saw it."""
    return request.META.get("REMOTE_ADDR") or None


def _parse_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


class RequestContextMiddleware:
    """Capture user, IP address, user agent, trace id and chat session of each request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = RequestContext(
            request=request,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:500],
            trace_id=(request.META.get(TRACE_HEADER) or None) and request.META[TRACE_HEADER][:64],
            session_id=_parse_uuid(request.META.get(CHAT_SESSION_HEADER)),
        )
        token = _context.set(context)
        try:
            return self.get_response(request)
        finally:
            _context.reset(token)
