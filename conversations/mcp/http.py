"""The MCP server over Streamable HTTP: the ASGI application config/asgi.py mounts at /mcp/.

Every request must carry `Authorization: Token <key>` (a DRF API token of an active
user); without one it is answered 401 with the REST API's error body, and nothing
reaches the server. The SDK's session manager runs stateless, answering JSON: each
request stands on its own and acts as its own token's user, so no session can be
taken over with another token. Its task group lives for the application's lifespan
(`lifespan` handles the ASGI lifespan messages the server sends).
"""

from __future__ import annotations

import json

from asgiref.sync import sync_to_async
from django.conf import settings
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE

from .auth import token_from_authorization, user_for_token
from .server import build_server

PATHS = frozenset({"/mcp", "/mcp/"})
NOT_AUTHENTICATED = (
    "Authentication credentials were not provided or are not valid: send "
    "`Authorization: Token <your API token>`."
)
# Room in a request body beyond the inline upload itself (base64 grows it by a third).
BODY_MARGIN = 64 * 1024


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
        if key is None or await sync_to_async(_active_user_exists)(key) is False:
            await _unauthorized(send)
            return
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


def _active_user_exists(key: str) -> bool:
    from django.db import close_old_connections

    close_old_connections()
    try:
        return user_for_token(key) is not None
    finally:
        close_old_connections()


async def _unauthorized(send) -> None:
    body = json.dumps({"detail": NOT_AUTHENTICATED, "code": "not_authenticated"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b"Token"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
