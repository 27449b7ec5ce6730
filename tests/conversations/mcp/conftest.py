"""Fixtures of the MCP server tests: a team with API permissions, tokens, and SDK clients.

Tests talk to the server through the SDK's own `mcp.Client`: in process (the server
object itself; the ORM runs in the test's thread, inside its transaction), over stdio
(`manage.py mcp_server` as a subprocess) and over Streamable HTTP (the ASGI app served
by uvicorn in a thread). The reserving data is RAA, the sample chainladder ships.
"""

from __future__ import annotations

import functools
import json

import pytest
from asgiref.sync import async_to_sync
from mcp import Client
from rest_framework.authtoken.models import Token

from conversations.mcp.server import CHAT_SESSION_META, TRACE_META, build_server
from engagements.services import engagement_activate
from tests.api_fixtures import worker
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory
from workflows.reserving import sample_triangle_rows
from workflows.reserving.samples import sample_triangle_csv


@functools.cache
def raa_csv() -> str:
    """Return RAA as long CSV text (origins 1981 to 1990, ages 12 to 120)."""
    return sample_triangle_csv("raa").decode()


@functools.cache
def raa_premium_csv() -> str:
    """Return an earned premium table for RAA's origins (for Bornhuetter-Ferguson)."""
    origins, _ages, _values = sample_triangle_rows("raa")
    lines = ["origin,earned_premium"] + [
        f"{origin},{40000 + 1000 * index}" for index, origin in enumerate(origins)
    ]
    return "\n".join(lines) + "\n"


def raa_upload(engagement) -> dict:
    """Return the arguments of upload_triangle for RAA into `engagement`."""
    return {"engagement_id": str(engagement.pk), "file_name": "raa.csv", "csv_text": raa_csv()}


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def team(db, actuary, reviewer):
    """An active engagement: `actuary` leads it, `reviewer` reviews; both hold API permissions."""
    actuary, reviewer = worker(actuary), worker(reviewer)
    engagement = EngagementFactory(lead_actuary=actuary, reviewer=reviewer, created_by=actuary)
    EngagementMemberFactory(engagement=engagement, user=actuary, role="lead")
    EngagementMemberFactory(engagement=engagement, user=reviewer, role="reviewer")
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    return engagement, actuary, reviewer


@pytest.fixture
def other_team(db):
    """Another team's engagement, and its lead."""
    lead = worker(UserFactory(username="elsewhere"))
    engagement = EngagementFactory(lead_actuary=lead, created_by=lead, client_code="OTHER")
    EngagementMemberFactory(engagement=engagement, user=lead, role="lead")
    return engagement, lead


def in_process(user):
    """Return an SDK client on the server itself, acting as `user` (same thread as the test)."""
    key = token_of(user)
    server = build_server(token_for=lambda ctx: key, transport="test", close_connections=False)
    return Client(server)


def meta(*, trace_id: str | None = None, chat_session=None) -> dict | None:
    """Return the _meta of a call naming a trace and a chat session."""
    values = {}
    if trace_id:
        values[TRACE_META] = trace_id
    if chat_session is not None:
        values[CHAT_SESSION_META] = str(chat_session.pk)
    return values or None


def answer(result) -> dict:
    """Return a successful tool result's structured content (asserting it succeeded)."""
    assert not result.is_error, result.content[0].text
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content


def failure(result) -> dict:
    """Return a tool error's {code, message, argument} (asserting it failed)."""
    assert result.is_error, result.structured_content
    return result.structured_content["error"]


def run_async(scenario, *args, **kwargs):
    """Run an async scenario from a sync test, its ORM calls back on the test's thread."""
    return async_to_sync(scenario)(*args, **kwargs)
