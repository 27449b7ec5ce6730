"""What the tools refuse, and how: named arguments, permissions, scoping, decisions, the record."""

from __future__ import annotations

import base64

import pytest

from artefacts.models import Artefact
from audit.models import AuditLog
from conversations.services import session_create
from tests.api_fixtures import reader
from tests.factories import UserFactory

from .conftest import answer, failure, in_process, meta, raa_csv, raa_upload, run_async

pytestmark = pytest.mark.django_db


def call(user, name, arguments, **call_meta):
    """Call one tool as `user` in process; return the result."""
    connection = in_process(user)

    async def scenario():
        async with connection as client:
            return await client.call_tool(name, arguments, meta=meta(**call_meta))

    return run_async(scenario)


def calls(user, *steps):
    """Make several calls as `user` in one connection; return their results."""
    connection = in_process(user)

    async def scenario():
        async with connection as client:
            return [await client.call_tool(name, arguments) for name, arguments in steps]

    return run_async(scenario)


@pytest.mark.parametrize(
    ("arguments", "argument", "words"),
    [
        ({"engagement_id": "42"}, "engagement_id", "UUID"),
        ({}, "engagement_id", "required"),
        ({"engagement_id": "5b0c0000-0000-0000-0000-000000000000", "x": 1}, "x", "unknown"),
    ],
)
def test_a_bad_argument_is_a_tool_error_naming_it(team, arguments, argument, words):
    _engagement, actuary, _reviewer = team
    error = failure(call(actuary, "get_engagement", arguments))
    assert error["code"] == "invalid"
    assert error["argument"] == argument
    assert argument in error["message"] and words in error["message"]


def test_the_server_keeps_answering_after_errors(team):
    engagement, actuary, _reviewer = team
    results = calls(
        actuary,
        ("get_run", {"run_id": None}),
        ("no_such_tool", {}),
        ("get_engagement", {"engagement_id": str(engagement.pk)}),
    )
    assert failure(results[0])["argument"] == "run_id"
    unknown = failure(results[1])
    assert unknown["argument"] == "name" and "list_engagements" in unknown["message"]
    assert answer(results[2])["status"] == "active"


def test_another_teams_objects_are_not_found(team, other_team):
    _engagement, actuary, _reviewer = team
    other, lead = other_team
    [uploaded] = [answer(call(lead, "upload_triangle", raa_upload(other)))["artefact"]]
    results = calls(
        actuary,
        ("get_engagement", {"engagement_id": str(other.pk)}),
        ("get_timeline", {"engagement_id": str(other.pk)}),
        (
            "validate_triangle",
            {"triangle_artefact_id": uploaded["id"], "cumulative": True, "measure": "paid"},
        ),
        ("upload_triangle", raa_upload(other)),
        ("list_runs", {"engagement_id": str(other.pk)}),
    )
    for result, argument in zip(
        results[:3], ("engagement_id", "engagement_id", "triangle_artefact_id"), strict=True
    ):
        error = failure(result)
        assert (error["code"], error["argument"]) == ("not_found", argument)
        assert "not in your engagements" in error["message"]
    refused_upload = failure(results[3])
    assert refused_upload["argument"] == "engagement_id"
    assert "does not exist" in refused_upload["message"]
    assert answer(results[4]) == {"count": 0, "runs": []}
    assert Artefact.objects.filter(engagement=other).count() == 1


def test_a_user_without_the_permission_is_refused_as_by_the_api(team):
    engagement, _actuary, _reviewer = team
    observer = reader(UserFactory(username="observer"))
    engagement.team.create(user=observer, role="observer")
    error = failure(call(observer, "upload_triangle", raa_upload(engagement)))
    assert error["code"] == "not_allowed"
    assert "artefacts.add_artefact" in error["message"]
    assert not Artefact.objects.filter(engagement=engagement).exists()
    assert answer(call(observer, "get_engagement", {"engagement_id": str(engagement.pk)}))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("approve_approval", "approve approvals"),
        ("reject", "reject approvals"),
        ("revoke_approval", "revoke approvals"),
        ("certify_qualification", "certify qualifications"),
        ("restore_backup", "restore backups"),
    ],
)
def test_a_decision_is_refused_naming_who_decides(team, name, words):
    _engagement, actuary, _reviewer = team
    error = failure(call(actuary, name, {"approval_id": "anything"}))
    assert error["code"] == "refused"
    assert words in error["message"]
    assert "qualified person" in error["message"]
    assert "in the admin or the REST API" in error["message"]
    assert "conflict-of-interest statement" in error["message"]


def test_request_decision_refuses_and_changes_nothing(team):
    _engagement, actuary, _reviewer = team
    before = AuditLog.objects.exclude(action__startswith="agent_").count()
    error = failure(call(actuary, "request_decision", {"decision": "certify"}))
    assert error["code"] == "refused" and "certify qualifications" in error["message"]
    assert AuditLog.objects.exclude(action__startswith="agent_").count() == before


def test_inline_content_is_capped_and_checked(team, settings):
    engagement, actuary, _reviewer = team
    settings.MCP_MAX_UPLOAD_BYTES = 100
    too_large = failure(call(actuary, "upload_triangle", raa_upload(engagement)))
    assert (too_large["code"], too_large["argument"]) == ("too_large", "csv_text")
    assert "MCP_MAX_UPLOAD_BYTES" in too_large["message"]
    settings.MCP_MAX_UPLOAD_BYTES = 1024 * 1024
    arguments = {"engagement_id": str(engagement.pk), "file_name": "raa.csv"}
    not_base64 = failure(call(actuary, "upload_triangle", {**arguments, "content_base64": "%%"}))
    assert not_base64["argument"] == "content_base64"
    both = failure(
        call(actuary, "upload_triangle", {**arguments, "csv_text": "a", "content_base64": "YQ=="})
    )
    assert "exactly one" in both["message"]
    encoded = base64.b64encode(raa_csv().encode()).decode()
    uploaded = answer(call(actuary, "upload_triangle", {**arguments, "content_base64": encoded}))
    assert uploaded["artefact"]["file_size"] == len(raa_csv().encode())


def test_secrets_are_redacted_and_content_kept_as_its_hash(team):
    engagement, actuary, _reviewer = team
    call(actuary, "list_engagements", {"api_token": "s3cret"}, trace_id="redaction")
    call(actuary, "upload_triangle", raa_upload(engagement), trace_id="redaction")
    invokes = AuditLog.objects.filter(trace_id="redaction", action="agent_invoke")
    arguments = [event.metadata["arguments"] for event in invokes.order_by("sequence")]
    assert arguments[0] == {"api_token": "********"}
    assert "s3cret" not in str(list(AuditLog.objects.filter(trace_id="redaction").values()))
    assert arguments[1]["csv_text"].startswith(f"<{len(raa_csv()):,} characters, sha256 ")


def test_a_chat_session_must_be_the_callers(team):
    engagement, actuary, reviewer = team
    theirs = session_create(actor=reviewer, engagement=engagement, title="Reviewer's")
    error = failure(call(actuary, "list_engagements", {}, chat_session=theirs))
    assert (error["code"], error["argument"]) == ("not_found", "chat_session_id")
    assert not theirs.messages.exists()
    event = AuditLog.objects.filter(action="agent_error").latest("sequence")
    assert event.metadata["chat_session"] == str(theirs.pk)


def test_a_deactivated_user_is_not_authenticated(team):
    _engagement, actuary, _reviewer = team
    connection = in_process(actuary)
    actuary.is_active = False
    actuary.save(update_fields=["is_active"])

    async def scenario():
        async with connection as client:
            return await client.call_tool("list_engagements", {})

    assert failure(run_async(scenario))["code"] == "not_authenticated"


def test_review_points_are_raised_by_the_reviewer_and_answered_by_the_preparer(team):
    engagement, actuary, reviewer = team
    artefact = answer(call(actuary, "upload_triangle", raa_upload(engagement)))["artefact"]
    approval = answer(
        call(
            actuary,
            "request_approval",
            {"approval_type": "peer_review", "artefact_id": artefact["id"]},
        )
    )["approval"]
    assert approval["status"] == "pending" and "qualified person" in approval["who_decides"]
    own = failure(
        call(actuary, "raise_review_point", {"approval_id": approval["id"], "text": "Mine?"})
    )
    assert own["code"] == "not_allowed"
    point = answer(
        call(
            reviewer,
            "raise_review_point",
            {"approval_id": approval["id"], "text": "Why no tail?", "severity": "major"},
        )
    )["review_point"]
    assert (point["status"], point["severity"]) == ("open", "major")
    answered = answer(
        call(
            actuary,
            "respond_to_review_point",
            {"review_point_id": point["id"], "response": "RAA is fully developed at 120."},
        )
    )["review_point"]
    assert answered["status"] == "responded"
    listed = answer(call(actuary, "list_approvals", {"engagement_id": str(engagement.pk)}))
    assert listed["approvals"][0]["review_points"][0]["status"] == "responded"
