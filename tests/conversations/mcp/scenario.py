"""The reserving path an agent takes, end to end, through any MCP client (one per transport).

Upload RAA and its premium, validate the triangle, run chain ladder and
Bornhuetter-Ferguson, compare them, request the sign-off; on the way, another team's
engagement is not found, a decision is refused and a bad argument is named. Each call
carries the trace id and the chat session in its _meta.
"""

from __future__ import annotations

from dataclasses import dataclass

from .conftest import answer, failure, meta, raa_csv, raa_premium_csv

TRACE_ID = "agent-trace-raa-2025"
# RAA's chain ladder IBNR with volume-weighted factors and no tail (Mack 1994).
RAA_CHAIN_LADDER_IBNR = 52135.23


@dataclass
class Ids:
    engagement: str
    other_engagement: str
    reviewer: int
    chat_session: object = None


async def reserving_path(client, ids: Ids) -> dict:
    """Walk the path; return what the checks after it need."""
    call_meta = meta(trace_id=TRACE_ID, chat_session=ids.chat_session)

    async def call(name, arguments):
        return await client.call_tool(name, arguments, meta=call_meta)

    tools = {tool.name for tool in (await client.list_tools()).tools}
    assert {"upload_triangle", "create_reserving_run", "compare_runs"} <= tools

    listed = answer(await call("list_engagements", {"search": ""}))
    assert ids.engagement in {row["id"] for row in listed["engagements"]}
    assert ids.other_engagement not in {row["id"] for row in listed["engagements"]}

    triangle = answer(
        await call(
            "upload_triangle",
            {"engagement_id": ids.engagement, "file_name": "raa.csv", "csv_text": raa_csv()},
        )
    )["artefact"]
    premium = answer(
        await call(
            "upload_triangle",
            {
                "engagement_id": ids.engagement,
                "file_name": "raa-premium.csv",
                "csv_text": raa_premium_csv(),
                "artefact_type": "data_file",
            },
        )
    )["artefact"]

    checked = answer(
        await call(
            "validate_triangle",
            {
                "triangle_artefact_id": triangle["id"],
                "cumulative": True,
                "measure": "incurred",
                "allow_negative_development": True,
            },
        )
    )
    assert checked["valid"] is True, checked["results"]

    triangle_params = {"triangle_artefact": triangle["id"], "cumulative": True}
    chain_ladder = answer(
        await call(
            "create_reserving_run",
            {
                "engagement_id": ids.engagement,
                "name": "RAA chain ladder",
                "period": "2025-Q4",
                "input_params": {**triangle_params, "measure": "incurred"},
                "wait_seconds": 60,
            },
        )
    )
    assert chain_ladder["run"]["status"] == "waiting_approval", chain_ladder["run"]
    totals = chain_ladder["results"]["totals"]
    assert round(totals["ibnr"], 2) == RAA_CHAIN_LADDER_IBNR
    assert len(chain_ladder["results"]["by_origin"]) == 10
    assert chain_ladder["results"]["selections"]["development_factors"]
    assert any("negative development" in w for w in chain_ladder["results"]["warnings"])

    bf = answer(
        await call(
            "create_reserving_run",
            {
                "engagement_id": ids.engagement,
                "name": "RAA Bornhuetter-Ferguson",
                "input_params": {
                    **triangle_params,
                    "measure": "incurred",
                    "method": "bornhuetter_ferguson",
                    "exposure_artefact": premium["id"],
                    "apriori_loss_ratio": 0.7,
                },
                "wait_seconds": 60,
            },
        )
    )
    assert bf["run"]["status"] == "waiting_approval", bf["run"]
    assert bf["results"]["method"] == "bornhuetter_ferguson"

    compared = answer(
        await call(
            "compare_runs",
            {"first_run_id": chain_ladder["run"]["id"], "second_run_id": bf["run"]["id"]},
        )
    )["comparison"]
    assert compared["methods"] == ["chain_ladder", "bornhuetter_ferguson"]
    assert len(compared["origins"]) == 10

    results_artefact = chain_ladder["artefacts"][0]
    sign_off = answer(
        await call(
            "request_approval",
            {
                "approval_type": "actuarial_sign_off",
                "artefact_id": results_artefact["id"],
                "designated_approver_id": ids.reviewer,
                "request_notes": "Chain ladder on RAA; BF for comparison.",
            },
        )
    )["approval"]
    assert sign_off["status"] == "pending"

    hidden = failure(await call("get_engagement", {"engagement_id": ids.other_engagement}))
    assert hidden["code"] == "not_found"
    assert hidden["argument"] == "engagement_id"

    refused = failure(await call("approve_approval", {"approval_id": sign_off["id"]}))
    assert refused["code"] == "refused"
    assert "qualified person" in refused["message"]
    assert "conflict-of-interest" in refused["message"]
    asked = failure(await call("request_decision", {"decision": "approve"}))
    assert asked["code"] == "refused"

    bad = failure(
        await call(
            "create_reserving_run",
            {
                "engagement_id": ids.engagement,
                "name": "Bad method",
                "input_params": {**triangle_params, "measure": "incurred", "method": "magic"},
            },
        )
    )
    assert bad["argument"] == "input_params.method"

    timeline = answer(await call("get_timeline", {"engagement_id": ids.engagement}))
    assert any(event["kind"] == "agent_complete" for event in timeline["events"])

    cited = await client.read_resource(f"ai-actuary://runs/{chain_ladder['run']['id']}")
    assert '"waiting_approval"' in cited.contents[0].text
    return {
        "triangle": triangle,
        "chain_ladder": chain_ladder,
        "bf": bf,
        "sign_off": sign_off,
    }
