"""Tools on approvals: find them, request one, raise a review point, respond to one.

Requests and review points go through the REST API's serializers and the approval
services, so the professional-standards rules hold as they do for a person: the
requester never decides, a reviewer raises points, the preparer answers them. The
decisions themselves are not tools (`decisions`).
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from approvals import services as approval_services
from approvals.api.serializers import (
    ApprovalSerializer,
    ReviewPointRespondSerializer,
    ReviewPointSerializer,
)
from approvals.choices import ApprovalStatus, ApprovalType, ReviewPointSeverity
from approvals.models import Approval, ReviewPoint
from engagements.selectors import scope_to_user

from ..calls import CallContext, Tool, validated
from .common import DEFAULT_LIST_LIMIT, Arguments, Limit, api_context, visible

APPROVAL_ARGUMENTS = {
    "artefact": "artefact_id",
    "engagement": "engagement_id",
    "workflow_run": "workflow_run_id",
    "designated_approver": "designated_approver_id",
}
POINT_ARGUMENTS = {
    "approval": "approval_id",
    "artefact": "artefact_id",
    "workflow_run": "workflow_run_id",
}
WHO_DECIDES = (
    "A qualified person independent of the work decides it, in the admin or the REST API; "
    "no agent can."
)


class ListApprovals(Arguments):
    engagement_id: uuid.UUID | None = Field(default=None, description="Only this engagement.")
    workflow_run_id: uuid.UUID | None = Field(
        default=None, description="Only the approvals of this run (its workflow approval)."
    )
    status: ApprovalStatus | None = Field(default=None, description="Only this status.")
    limit: Limit = DEFAULT_LIST_LIMIT


class RequestApproval(Arguments):
    approval_type: ApprovalType = Field(
        description="What is asked for, e.g. actuarial_sign_off, peer_review, "
        "methodology_approval (workflow_approval: the runner requests it itself)."
    )
    artefact_id: uuid.UUID | None = Field(
        default=None, description="The artefact to review (a draft is submitted for review)."
    )
    workflow_run_id: uuid.UUID | None = Field(
        default=None, description="workflow_approval only: the run it releases."
    )
    engagement_id: uuid.UUID | None = Field(
        default=None, description="The engagement; taken from the artefact or run if omitted."
    )
    designated_approver_id: int | None = Field(
        default=None, description="If set, only this user (on the team, independent) decides."
    )
    request_notes: str = Field(default="", max_length=10000, description="What to look at.")


class RaiseReviewPoint(Arguments):
    approval_id: uuid.UUID = Field(description="The pending approval the point challenges.")
    text: str = Field(min_length=1, max_length=10000, description="The challenge.")
    severity: ReviewPointSeverity = Field(default=ReviewPointSeverity.MINOR)
    artefact_id: uuid.UUID | None = Field(default=None, description="The artefact it concerns.")
    workflow_run_id: uuid.UUID | None = Field(default=None, description="The run it concerns.")


class RespondToReviewPoint(Arguments):
    review_point_id: uuid.UUID = Field(description="The open review point to answer.")
    response: str = Field(
        min_length=1, max_length=10000, description="How the point was addressed."
    )


def approval_row(approval: Approval, context: CallContext) -> dict[str, Any]:
    """Return an approval as the REST API shows it, with its review points."""
    data = dict(ApprovalSerializer(approval, context=api_context(context.user)).data)
    data["review_points"] = [
        {
            "id": str(point.pk),
            "severity": point.severity,
            "status": point.status,
            "text": point.text,
            "response": point.response,
        }
        for point in approval.review_points.all()
    ]
    data["who_decides"] = WHO_DECIDES
    return data


def _approvals():
    return Approval.objects.select_related("artefact", "engagement").prefetch_related(
        "review_points"
    )


def list_approvals(context: CallContext, arguments: ListApprovals) -> dict[str, Any]:
    rows = scope_to_user(_approvals(), context.user)
    if arguments.engagement_id:
        rows = rows.filter(engagement_id=arguments.engagement_id)
    if arguments.workflow_run_id:
        rows = rows.filter(workflow_run_id=arguments.workflow_run_id)
    if arguments.status:
        rows = rows.filter(status=arguments.status)
    rows = rows.order_by("-requested_at")
    return {
        "count": rows.count(),
        "approvals": [approval_row(a, context) for a in rows[: arguments.limit]],
    }


def request_approval(context: CallContext, arguments: RequestApproval) -> dict[str, Any]:
    body: dict[str, Any] = {
        "approval_type": arguments.approval_type.value,
        "request_notes": arguments.request_notes,
    }
    for field_name, argument in APPROVAL_ARGUMENTS.items():
        value = getattr(arguments, argument)
        if value is not None:
            body[field_name] = str(value) if isinstance(value, uuid.UUID) else value
    data = validated(
        ApprovalSerializer, body, context=api_context(context.user), names=APPROVAL_ARGUMENTS
    )
    for subject in ("artefact", "workflow_run", "engagement"):
        if data.get(subject) is not None:
            context.touch(data[subject])
    approval = approval_services.approval_request(
        actor=context.user, trace_id=context.trace_id, **data
    )
    context.touch(approval)
    return {"approval": approval_row(_approvals().get(pk=approval.pk), context)}


def raise_review_point(context: CallContext, arguments: RaiseReviewPoint) -> dict[str, Any]:
    body: dict[str, Any] = {
        "approval": str(arguments.approval_id),
        "text": arguments.text,
        "severity": arguments.severity.value,
    }
    if arguments.artefact_id:
        body["artefact"] = str(arguments.artefact_id)
    if arguments.workflow_run_id:
        body["workflow_run"] = str(arguments.workflow_run_id)
    data = validated(
        ReviewPointSerializer, body, context=api_context(context.user), names=POINT_ARGUMENTS
    )
    context.touch(data["approval"])
    point = approval_services.review_point_raise(
        actor=context.user, trace_id=context.trace_id, **data
    )
    context.touch(point)
    return {"review_point": point_row(point, context)}


def respond_to_review_point(
    context: CallContext, arguments: RespondToReviewPoint
) -> dict[str, Any]:
    point = visible(
        context,
        ReviewPoint.objects.select_related("approval"),
        arguments.review_point_id,
        what="Review point",
        argument="review_point_id",
        engagement_path="approval__engagement",
    )
    data = validated(
        ReviewPointRespondSerializer,
        {"response": arguments.response},
        context=api_context(context.user),
    )
    point = approval_services.review_point_respond(point=point, actor=context.user, **data)
    return {"review_point": point_row(point, context)}


def point_row(point: ReviewPoint, context: CallContext) -> dict[str, Any]:
    """Return a review point as the REST API shows it."""
    return dict(ReviewPointSerializer(point, context=api_context(context.user)).data)


TOOLS = (
    Tool(
        name="list_approvals",
        description="List the approvals of your engagements (latest first) with their status "
        "and review points; workflow_run_id finds the workflow approval a finished reserving "
        "run waits for.",
        arguments=ListApprovals,
        handler=list_approvals,
        permissions=("approvals.view_approval",),
        verb="view approvals",
        read_only=True,
    ),
    Tool(
        name="request_approval",
        description="Ask for a sign-off (e.g. actuarial_sign_off on a run's results artefact, "
        "or on the engagement). You prepare, a qualified person decides: the request never "
        "approves anything.",
        arguments=RequestApproval,
        handler=request_approval,
        permissions=("approvals.add_approval",),
        verb="request approvals",
    ),
    Tool(
        name="raise_review_point",
        description="Raise a review point (a challenge) on a pending approval. Only someone "
        "who may decide the approval raises points.",
        arguments=RaiseReviewPoint,
        handler=raise_review_point,
        permissions=("approvals.add_reviewpoint",),
        verb="raise review points",
    ),
    Tool(
        name="respond_to_review_point",
        description="Answer an open review point as the preparer (the requester, the lead "
        "actuary or someone who took part in the work; never its raiser).",
        arguments=RespondToReviewPoint,
        handler=respond_to_review_point,
        permissions=("approvals.change_reviewpoint",),
        verb="respond to review points",
    ),
)
