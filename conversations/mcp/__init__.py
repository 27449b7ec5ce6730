"""The AI assistant's doors: an MCP tool server over the service layer (docs/api/mcp.md).

An agent reaches the back office through the Model Context Protocol, as the token's user:
the tools (`conversations.mcp.tools`) validate their arguments with the REST API's own
serializers and call the same services, scoped the same way, so an agent can do nothing
its user could not do through the API, and decisions (approve, reject, revoke, certify,
restore) are not tools at all. Every call is on record (`conversations.mcp.recording`):
agent_invoke, then agent_complete or agent_error, and the chat session's tool messages.

Doors: stdio (`python manage.py mcp_server`, AI_ACTUARY_TOKEN) and Streamable HTTP at
/mcp/ (`conversations.mcp.http`, mounted by config/asgi.py).
"""
