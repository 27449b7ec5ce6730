"""What the reserving path leaves on the record: audit events and the chat session's messages."""

from __future__ import annotations

from audit.models import AuditLog
from conversations.models import ChatMessage

from .scenario import TRACE_ID


def check_the_record(session) -> None:
    """Assert every call of the path is on record with its trace id and chat session."""
    events = list(AuditLog.objects.filter(trace_id=TRACE_ID).order_by("sequence"))
    agent = [e for e in events if e.action.startswith("agent_")]
    invokes = [e for e in agent if e.action == "agent_invoke"]
    ends = [e for e in agent if e.action in ("agent_complete", "agent_error")]
    assert len(invokes) == len(ends) > 10
    assert all(e.session_id == session.pk for e in agent)
    assert all(e.user_id == session.user_id for e in agent)
    assert {e.metadata["tool"] for e in invokes} >= {
        "upload_triangle",
        "create_reserving_run",
        "compare_runs",
        "request_approval",
        "approve_approval",
    }
    upload = next(e for e in invokes if e.metadata["tool"] == "upload_triangle")
    assert upload.metadata["arguments"]["csv_text"].startswith("<")  # content kept as its hash
    refused = next(e for e in ends if e.metadata["tool"] == "approve_approval")
    assert refused.action == "agent_error"
    assert refused.metadata["error"]["code"] == "refused"
    created = next(e for e in ends if e.metadata["tool"] == "create_reserving_run")
    assert any(t["model"] == "workflows.workflowrun" for t in created.metadata["touched"])
    # The services' own events of the calls carry the same trace and session.
    assert {"artefact_create", "workflow_create", "approval_request"} <= {e.action for e in events}
    messages = list(ChatMessage.objects.filter(session=session).order_by("created_at", "id"))
    assert len(messages) == 2 * len(invokes)
    assert all(m.role == "tool" for m in messages)
    calls = [m for m in messages if m.parent_id is None]
    results = [m for m in messages if m.parent_id is not None]
    assert all(m.metadata["tool_calls"][0]["function"]["name"] == m.tool_name for m in calls)
    assert {m.parent_id for m in results} == {m.pk for m in calls}
