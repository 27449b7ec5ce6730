"""The MCP server over Streamable HTTP: the ASGI application config/asgi.py mounts at /mcp/.

Every request must carry `Authorization: Token <key>` (a DRF API token of an active
user); without one it is answered 401 with the REST API's error body, and nothing
reaches the server. Wrong tokens are throttled like the REST API's (django-axes): each
counts as a failed login from the client's address, and once the address reaches
LOGIN_FAILURE_LIMIT every further wrong token answers 429 with Retry-After until the
cool-off has passed; a valid token is never refused. The SDK's session manager runs
stateless, answering JSON: each request stands on its own and acts as its own token's
user, so no session can be taken over with another token. Its task group lives for
the application's lifespan (`lifespan` handles the ASGI lifespan messages).
"""

from __future__ import annotations

import json
import math

from asgiref.sync import sync_to_async
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import close_old_connections
from django.http import HttpRequest
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

from .auth import token_from_authorization, user_for_token
from .server import build_server

PATHS = frozenset({"/mcp", "/mcp/"})
NOT_AUTHENTICATED = (
    "Authentication credentials were not provided or are not valid: send "
    "`Authorization: Token <your API token>`."
)
LOCKED_OUT = (
    "Too many wrong tokens from this address: it is refused for {minutes} minutes. Try "
    "again after that, or ask an administrator to unlock it."
)
# Room in a request body beyond the inline upload itself (base64 grows it by a third).
BODY_MARGIN = 64 * 1024
VALID, INVALID, LOCKED = "valid", "invalid", "locked"


def _token_of(ctx) -> str | None:
    headers = getattr(ctx.request, "headers", None)
    return token_from_authorization(headers.get("authorization")) if headers else None


def _body_limit() -> int:
    upload = int(getattr(settings, "MCP_MAX_UPLOAD_BYTES", 1024 * 1024))
    return max(DEFAULT_MAX_REQUEST_BODY_SIZE, upload * 4 // 3 + BODY_MARGIN)


class MCPApplication:
    """The ASGI application of /mcp/: token check, then the SDK's session manager."""

    def __init__(self) -> None:
        self.server = build_server(token_for=_token_of, transport="http")
        self.manager = self._new_manager()

    def _new_manager(self) -> StreamableHTTPSessionManager:
        return StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            max_request_body_size=_body_limit(),
        )

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        key = token_from_authorization(headers.get(b"authorization", b"").decode("latin-1"))
        verdict = INVALID if key is None else await sync_to_async(_check_token)(key, scope)
        if verdict == LOCKED:
            await _locked_out(send, scope)
        elif verdict == INVALID:
            await _unauthorized(send)
        else:
            await self.manager.handle_request(scope, receive, send)

    async def lifespan(self, scope, receive, send) -> None:
        """Run the session manager from the server's start-up to its shutdown.

        A manager runs once: each start-up (a restarted server in the same process)
        gets a new one.
        """
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - ASGI guarantees it
            return
        self.manager = self._new_manager()
        async with self.manager.run():
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


def _django_request(scope) -> HttpRequest:
    """Return the request as django-axes reads one: the client's address and user agent."""
    request = HttpRequest()
    request.method = scope.get("method", "POST")
    request.path = request.path_info = scope.get("path", "/mcp/")
    client = scope.get("client") or ("", 0)
    headers = dict(scope.get("headers") or ())
    request.META = {
        "REMOTE_ADDR": client[0],
        "HTTP_USER_AGENT": headers.get(b"user-agent", b"").decode("latin-1"),
        "PATH_INFO": request.path,
        "REQUEST_METHOD": request.method,
    }
    return request


def _check_token(key: str, scope) -> str:
    """Return whether the token is valid, wrong, or wrong from a locked-out address."""
    close_old_connections()
    try:
        if user_for_token(key) is not None:
            return VALID
        request = _django_request(scope)
        if AxesProxyHandler.is_allowed(request, {}):
            user_login_failed.send(
                sender=__name__, credentials={"token": "********"}, request=request
            )
        if getattr(request, "axes_locked_out", False) or not AxesProxyHandler.is_allowed(
            request, {}
        ):
            return LOCKED
        return INVALID
    finally:
        close_old_connections()


def _retry_after_seconds(scope) -> int:
    cool_off = get_cool_off(_django_request(scope))
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


async def _locked_out(send, scope) -> None:
    seconds = _retry_after_seconds(scope)
    detail = LOCKED_OUT.format(minutes=math.ceil(seconds / 60))
    body = {"detail": detail, "code": "locked_out", "retry_after": seconds}
    await _answer(send, 429, body, [(b"retry-after", str(seconds).encode())])


async def _unauthorized(send) -> None:
    body = {"detail": NOT_AUTHENTICATED, "code": "not_authenticated"}
    await _answer(send, 401, body, [(b"www-authenticate", b"Token")])


async def _answer(send, status: int, payload: dict, headers: list) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
