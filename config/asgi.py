"""ASGI entry point; production settings unless DJANGO_SETTINGS_MODULE says otherwise.

Requests to /mcp/ go to the AI assistant's MCP tool server (Streamable HTTP,
`conversations.mcp.http`), which also receives the server's lifespan messages (its
session manager lives from start-up to shutdown); everything else goes to Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

django_application = get_asgi_application()

from conversations.mcp.http import PATHS as MCP_PATHS  # noqa: E402 - needs Django set up
from conversations.mcp.http import MCPApplication  # noqa: E402

mcp_application = MCPApplication()


async def application(scope, receive, send):
    """Route /mcp/ (and the lifespan) to the MCP server, every other request to Django."""
    if scope["type"] == "lifespan" or (scope["type"] == "http" and scope.get("path") in MCP_PATHS):
        await mcp_application(scope, receive, send)
        return
    await django_application(scope, receive, send)
