"""The reserving path through the two doors an agent uses: stdio and Streamable HTTP.

Over stdio the test spawns `manage.py mcp_server` with the test database (PostgreSQL:
the test database itself; SQLite: a file copy of the in-memory test database, copied
back once the server has exited) and AI_ACTUARY_TOKEN. Over HTTP it serves
config.asgi's application with uvicorn in a thread and sends `Authorization: Token`.
Both run the same scenario and check the same record.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
import uvicorn
from django.db import connection
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from conversations.services import session_create

from .conftest import run_async, token_of
from .record import check_the_record
from .scenario import Ids, reserving_path

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_for_a_subprocess(tmp_path):
    """Yield a DATABASE_URL another process can open onto the test database's data."""
    config = connection.settings_dict
    if connection.vendor == "postgresql":
        user = config.get("USER") or ""
        password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
        host = config.get("HOST") or "127.0.0.1"
        port = config.get("PORT") or 5432
        yield f"postgres://{user}{password}@{host}:{port}/{config['NAME']}"
        return
    assert connection.vendor == "sqlite"
    connection.ensure_connection()
    if not connection.is_in_memory_db():
        yield f"sqlite:///{config['NAME']}"
        return
    copy = tmp_path / "mcp-stdio.sqlite3"
    with sqlite3.connect(copy) as target:
        connection.connection.backup(target)
    try:
        yield f"sqlite:///{copy}"
    finally:
        with sqlite3.connect(copy) as source:
            source.backup(connection.connection)


def test_over_stdio(team, other_team, tmp_path, media_root):
    engagement, actuary, reviewer = team
    session = session_create(actor=actuary, engagement=engagement, title="RAA over stdio")
    ids = Ids(str(engagement.pk), str(other_team[0].pk), reviewer.pk, session)
    token = token_of(actuary)
    with database_for_a_subprocess(tmp_path) as database_url:
        parameters = StdioServerParameters(
            command=sys.executable,
            args=["manage.py", "mcp_server"],
            cwd=str(ROOT),
            env={
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": database_url,
                "MEDIA_ROOT": str(media_root),
                "AI_ACTUARY_TOKEN": token,
                "PYTHONPATH": str(ROOT),
            },
        )

        async def scenario():
            async with Client(parameters, read_timeout_seconds=120) as client:
                return await reserving_path(client, ids)

        run_async(scenario)
    check_the_record(session)


@contextmanager
def served():
    """Serve config.asgi's application with uvicorn on a free port; yield its /mcp/ URL."""
    from config.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def http_client(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Token {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, read=300))
    return Client(streamable_http_client(url, http_client=http), read_timeout_seconds=120)


def test_over_http(team, other_team):
    engagement, actuary, reviewer = team
    session = session_create(actor=actuary, engagement=engagement, title="RAA over HTTP")
    ids = Ids(str(engagement.pk), str(other_team[0].pk), reviewer.pk, session)
    token = token_of(actuary)
    with served() as url:

        async def scenario():
            async with http_client(url, token) as client:
                return await reserving_path(client, ids)

        run_async(scenario)
    check_the_record(session)


def test_http_without_a_valid_token_is_refused(team):
    with served() as url:
        for headers in ({}, {"Authorization": "Token not-a-token"}):
            response = httpx2.post(
                url,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream", **headers},
            )
            assert response.status_code == 401
            assert "Authorization: Token" in response.json()["detail"]


def test_the_stdio_command_refuses_to_start_without_a_token(tmp_path):
    import subprocess

    environment = {k: v for k, v in os.environ.items() if k != "AI_ACTUARY_TOKEN"}
    result = subprocess.run(
        [sys.executable, "manage.py", "mcp_server"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings.test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "AI_ACTUARY_TOKEN" in result.stderr
    assert result.stdout == ""
