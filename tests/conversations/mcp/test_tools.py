"""The tools through the SDK's client, in process: each refusal, and what each answers."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditLog
from conversations.services import session_create

from .conftest import answer, failure, in_process, meta, raa_upload, run_async
from .record import check_the_record
from .scenario import Ids, reserving_path

pytestmark = pytest.mark.django_db


def test_the_tools_are_listed_with_their_schemas(team):
    _engagement, actuary, _reviewer = team

    connection = in_process(actuary)

    async def scenario():
        async with connection as client:
            return await client.list_tools()

    tools = {tool.name: tool for tool in run_async(scenario).tools}
    assert {"list_engagements", "create_reserving_run", "request_decision"} <= set(tools)
    assert not any(name.startswith(("approve", "reject", "revoke")) for name in tools)
    schema = tools["upload_triangle"].input_schema
    assert schema["type"] == "object"
    assert {"engagement_id", "file_name", "csv_text"} <= set(schema["properties"])


def test_upload_then_list_engagements(team):
    engagement, actuary, _reviewer = team

    connection = in_process(actuary)

    async def scenario():
        async with connection as client:
            listed = await client.call_tool("list_engagements", {})
            uploaded = await client.call_tool(
                "upload_triangle",
                raa_upload(engagement),
                meta=meta(trace_id="trace-upload"),
            )
            return listed, uploaded

    listed, uploaded = run_async(scenario)
    assert [row["id"] for row in answer(listed)["engagements"]] == [str(engagement.pk)]
    artefact = answer(uploaded)["artefact"]
    assert artefact["file_name"] == "raa.csv"
    assert artefact["trace_id"] == "trace-upload"
    actions = list(
        AuditLog.objects.filter(trace_id="trace-upload").values_list("action", flat=True)
    )
    assert {"agent_invoke", "agent_complete", "artefact_create"} <= set(actions)


def test_a_bad_argument_is_named(team):
    _engagement, actuary, _reviewer = team

    connection = in_process(actuary)

    async def scenario():
        async with connection as client:
            return await client.call_tool("get_engagement", {"engagement_id": "nope"})

    error = failure(run_async(scenario))
    assert error["argument"] == "engagement_id"
    assert "engagement_id" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_the_reserving_path_in_process(team, other_team):
    engagement, actuary, reviewer = team
    session = session_create(actor=actuary, engagement=engagement, title="RAA reserving")
    connection = in_process(actuary)
    ids = Ids(str(engagement.pk), str(other_team[0].pk), reviewer.pk, session)

    async def scenario():
        async with connection as client:
            return await reserving_path(client, ids)

    run_async(scenario)
    check_the_record(session)


def test_the_admin_shows_a_sessions_tool_calls_with_links_to_what_they_touched(
    team, client, superuser
):
    engagement, actuary, _reviewer = team
    session = session_create(actor=actuary, engagement=engagement, title="Upload")
    connection = in_process(actuary)

    async def scenario():
        async with connection as mcp:
            return await mcp.call_tool(
                "upload_triangle",
                raa_upload(engagement),
                meta=meta(chat_session=session),
            )

    artefact = answer(run_async(scenario))["artefact"]
    client.force_login(superuser)
    page = client.get(reverse("admin:conversations_session_change", args=(session.pk,)))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<code>upload_triangle(" in html
    assert reverse("admin:artefacts_artefact_change", args=(artefact["id"],)) in html
    assert reverse("admin:engagements_engagement_change", args=(engagement.pk,)) in html
