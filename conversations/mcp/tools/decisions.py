"""The rule that keeps agents honest: no tool decides; asking for a decision is refused.

There are no tools to approve, reject or revoke approvals, to certify professional
qualifications, or to restore backups. An agent that asks (through `request_decision`,
or by calling a tool named like one of those moves) is answered with a refusal saying
that a qualified person decides, in the admin or the REST API, with their
conflict-of-interest statement on record. Nothing is changed.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from ..calls import CallContext, Tool, ToolFailure
from .common import Arguments

DECISIONS = ("approve", "reject", "revoke", "certify", "restore")
# Tool names an agent might try for a decision: approve, approve_run, reject_approval, …
DECISION_NAME = re.compile(r"(^|[_\-.])(approve|reject|revoke|certify|restore|sign_off)", re.I)
REFUSAL = (
    "Refused: an AI agent does not {decision}. {what} is decided by a qualified person "
    "independent of the work, in the admin or the REST API, who records their conflict-of-"
    "interest statement with the decision; no tool of this server can make it. Prepare the "
    "work and request the approval (request_approval); a person decides."
)
WHAT = {
    "approve": "An approval",
    "reject": "An approval",
    "revoke": "The revocation of an approval",
    "certify": "A professional qualification",
    "restore": "The restore of a backup",
}


class RequestDecision(Arguments):
    decision: Literal[DECISIONS] = Field(description="The decision asked for.")
    object_id: str | None = Field(
        default=None, max_length=100, description="The approval, qualification or backup."
    )
    reason: str = Field(default="", max_length=2000, description="Why it is asked.")


def decision_refusal(name_or_decision: str) -> ToolFailure:
    """Return the refusal for a decision an agent asked for (by tool name or decision)."""
    match = DECISION_NAME.search(name_or_decision)
    decision = match.group(2).lower() if match else name_or_decision
    decision = "approve" if decision == "sign_off" else decision
    return ToolFailure(
        REFUSAL.format(
            decision={"certify": "certify qualifications", "restore": "restore backups"}.get(
                decision, f"{decision} approvals"
            ),
            what=WHAT.get(decision, "A decision"),
        ),
        code="refused",
    )


def is_decision_name(name: str) -> bool:
    """Return whether an unknown tool name asks for a decision (approve, reject, …)."""
    return bool(DECISION_NAME.search(name))


def request_decision(context: CallContext, arguments: RequestDecision) -> dict[str, Any]:
    raise decision_refusal(arguments.decision)


TOOLS = (
    Tool(
        name="request_decision",
        description="Decisions are not an agent's: approving, rejecting or revoking an "
        "approval, certifying a qualification and restoring a backup are made by a qualified "
        "person in the admin or the REST API. Calling this changes nothing and says so.",
        arguments=RequestDecision,
        handler=request_decision,
        read_only=True,
    ),
)
