"""The MCP server (the SDK's lowlevel `Server`): tools and resources, for either door.

`build_server(token_for=…)` makes a server whose handlers find the API token of each
request with `token_for(ctx)`: the stdio command gives AI_ACTUARY_TOKEN's, the HTTP app
the request's `Authorization: Token …` header; the token's user is looked up on every
call (`auth.user_for_token`). Each call runs synchronously in a
worker thread (the ORM is synchronous) through `recording.call_tool`, and answers a
tool result: the structured content and its JSON text, or an error result the agent
reads (`isError`), never a protocol error that would look like a crash.

The trace id and the chat session come from the call's `_meta`
(`ai-actuary/trace-id`, `ai-actuary/chat-session-id`) or, over HTTP, the
`X-Trace-Id` and `X-Chat-Session-Id` headers the REST API reads too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types as types
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import close_old_connections
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from .auth import user_for_token
from .calls import CallOutcome, ToolFailure
from .recording import call_tool
from .resources import RESOURCE_TEMPLATES, ResourceNotFound, list_resources, read_resource
from .tools import TOOLS

SERVER_NAME = "ai-actuary"
INSTRUCTIONS = (
    "AI Actuary back office: you act as the user whose API token you hold, on their "
    "engagements only. Upload a triangle, validate it, create reserving runs (chain "
    "ladder, Bornhuetter-Ferguson, …), compare them and request sign-off. Decisions "
    "(approve, reject, revoke, certify, restore) are made by a qualified person, never by "
    "a tool. Every call is recorded with its trace id."
)
TRACE_META = "ai-actuary/trace-id"
CHAT_SESSION_META = "ai-actuary/chat-session-id"
TRACE_HEADER = "x-trace-id"
CHAT_SESSION_HEADER = "x-chat-session-id"
NOT_AUTHENTICATED = "Not authenticated: this server needs a valid API token."

TokenResolver = Callable[[ServerRequestContext], "str | None"]


def tool_definitions() -> list[types.Tool]:
    """Return every tool as tools/list shows it: name, description, JSON schema, hints."""
    return [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema(),
            annotations=types.ToolAnnotations(
                read_only_hint=tool.read_only,
                destructive_hint=False,
                open_world_hint=False,
            ),
        )
        for tool in TOOLS.values()
    ]


def _call_metadata(ctx: ServerRequestContext) -> tuple[str | None, str | None]:
    """Return the (trace id, chat session id) the call names in its _meta or headers."""
    meta = dict(ctx.meta or {})
    trace_id = meta.get(TRACE_META)
    session_id = meta.get(CHAT_SESSION_META)
    headers = getattr(ctx.request, "headers", None)
    if headers is not None:
        trace_id = trace_id or headers.get(TRACE_HEADER)
        session_id = session_id or headers.get(CHAT_SESSION_HEADER)
    return (str(trace_id) if trace_id else None, str(session_id) if session_id else None)


def build_server(
    *, token_for: TokenResolver, transport: str, close_connections: bool = True
) -> Server:
    """Return the MCP server; `token_for(ctx)` gives the API token of each request.

    `close_connections`: run each call in its own thread context and close the
    database connection it used afterwards (the servers do; in-process tests share the
    test's connection instead).
    """

    def _run_call(key, name, arguments, trace_id, chat_session_id):
        if close_connections:
            close_old_connections()
        try:
            user = user_for_token(key)
            if user is None:
                return CallOutcome(failure=ToolFailure(NOT_AUTHENTICATED, code="not_authenticated"))
            return call_tool(
                user=user,
                name=name,
                arguments=arguments,
                trace_id=trace_id,
                chat_session_id=chat_session_id,
                transport=transport,
            )
        finally:
            if close_connections:
                close_old_connections()

    async def in_thread(function, *args):
        if close_connections:
            async with ThreadSensitiveContext():
                return await sync_to_async(function)(*args)
        return await sync_to_async(function)(*args)

    async def on_list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tool_definitions())

    async def on_call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        trace_id, chat_session_id = _call_metadata(ctx)
        outcome = await in_thread(
            _run_call, token_for(ctx), params.name, params.arguments, trace_id, chat_session_id
        )
        if outcome.failure is not None:
            return _error_result(outcome.failure.as_dict(), outcome.failure.message)
        text = json.dumps(outcome.result, default=str)
        return types.CallToolResult(
            content=[types.TextContent(text=text)],
            structured_content=json.loads(text),
        )

    async def on_list_resource_templates(ctx, params) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=RESOURCE_TEMPLATES)

    def _as_reader(function, key, *args):
        if close_connections:
            close_old_connections()
        try:
            user = user_for_token(key)
            if user is None:
                raise MCPError(code=types.INVALID_REQUEST, message=NOT_AUTHENTICATED)
            return function(user, *args)
        finally:
            if close_connections:
                close_old_connections()

    async def on_list_resources(ctx, params) -> types.ListResourcesResult:
        resources = await in_thread(_as_reader, list_resources, token_for(ctx))
        return types.ListResourcesResult(resources=resources)

    async def on_read_resource(ctx, params: types.ReadResourceRequestParams):
        try:
            text = await in_thread(_as_reader, read_resource, token_for(ctx), str(params.uri))
        except ResourceNotFound as missing:
            raise MCPError(code=types.INVALID_PARAMS, message=str(missing)) from None
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=str(params.uri), mime_type="application/json", text=text
                )
            ]
        )

    return Server(
        SERVER_NAME,
        version="1",
        title="AI Actuary back office",
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
        get_tool_input_schema=lambda name: TOOLS[name].input_schema() if name in TOOLS else None,
    )


def _error_result(structured: dict[str, Any], message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=message)], structured_content=structured, is_error=True
    )
