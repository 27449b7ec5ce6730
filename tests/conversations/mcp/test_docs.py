"""The manual's page on the MCP server says what the server does: its tools and its refusal."""

from __future__ import annotations

import re
from pathlib import Path

from conversations.mcp.tools import TOOLS, decision_refusal

PAGE = Path(__file__).resolve().parents[3] / "docs" / "api" / "mcp.md"
ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<what>[^|]+) \| (?P<permissions>[^|]+) \|$")


def table() -> dict[str, str]:
    return {
        match["name"]: match["permissions"]
        for line in PAGE.read_text().splitlines()
        if (match := ROW.match(line))
    }


def test_the_page_lists_every_tool_with_the_permissions_it_needs():
    rows = table()
    assert set(rows) == set(TOOLS)
    for name, tool in TOOLS.items():
        codenames = {permission.split(".")[1] for permission in tool.permissions}
        assert set(re.findall(r"`([a-z_]+)`", rows[name])) == codenames, name


def test_the_refusal_the_page_shows_is_the_servers():
    text = " ".join(PAGE.read_text().split())
    assert " ".join(decision_refusal("approve_approval").message.split()) in text
