"""The tools of the MCP server, by name; each calls the services as the token's user."""

from __future__ import annotations

from ..calls import Tool
from . import approvals, artefacts, decisions, engagements, runs
from .decisions import decision_refusal, is_decision_name

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for module in (engagements, runs, artefacts, approvals, decisions)
    for tool in module.TOOLS
}

__all__ = ["TOOLS", "decision_refusal", "is_decision_name"]
