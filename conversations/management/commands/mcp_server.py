"""Serve the AI assistant's MCP tools over stdio, as the user of the API token AI_ACTUARY_TOKEN."""

from __future__ import annotations

import os

import anyio
from django.core.management.base import BaseCommand, CommandError
from mcp.server.stdio import stdio_server

from conversations.mcp.auth import TOKEN_ENVIRONMENT_VARIABLE, user_for_token
from conversations.mcp.server import build_server

TOKEN_MISSING = (
    "Set AI_ACTUARY_TOKEN to your API token (the admin's Auth Token page, or "
    "`manage.py drf_create_token <username>`): the server acts as its user."
)
TOKEN_INVALID = "AI_ACTUARY_TOKEN is not the token of an active user: nothing is served."


class Command(BaseCommand):
    help = (
        "Serve the MCP tools (docs/api/mcp.md) over stdin and stdout, as the user whose API "
        "token is in the AI_ACTUARY_TOKEN environment variable. A desktop assistant launches "
        "it; every tool call is an audit event."
    )

    def handle(self, *args, **options):
        key = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
        if not key:
            raise CommandError(TOKEN_MISSING)
        if user_for_token(key) is None:
            raise CommandError(TOKEN_INVALID)
        server = build_server(token_for=lambda ctx: key, transport="stdio")
        anyio.run(self._serve, server)

    @staticmethod
    async def _serve(server) -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
