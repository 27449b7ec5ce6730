"""Tools on engagements: list and search them, get one with its team and status, its timeline."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from django.db.models import Count, Prefetch, Q
from pydantic import Field

from audit.selectors import engagement_timeline
from engagements.api.serializers import EngagementSerializer
from engagements.choices import EngagementStatus
from engagements.models import Engagement, EngagementMember
from engagements.selectors import scope_to_user
from workflows.choices import OPEN_STATUSES

from ..calls import CallContext, Tool
from .common import DEFAULT_LIST_LIMIT, Arguments, Limit, api_context, user_label, visible

ENGAGEMENT_ID = "Id (UUID) of an engagement you are on (list_engagements finds it)."
TIMELINE_MAX = 500


class ListEngagements(Arguments):
    search: str | None = Field(
        default=None,
        max_length=200,
        description="Words to find in the client code, client name, name or description.",
    )
    status: EngagementStatus | None = Field(default=None, description="Only this status.")
    limit: Limit = DEFAULT_LIST_LIMIT


class GetEngagement(Arguments):
    engagement_id: uuid.UUID = Field(description=ENGAGEMENT_ID)


class GetTimeline(Arguments):
    engagement_id: uuid.UUID = Field(description=ENGAGEMENT_ID)
    limit: Annotated[int, Field(ge=1, le=TIMELINE_MAX, description="Latest events to return.")] = (
        DEFAULT_LIST_LIMIT
    )


def _engagements():
    return Engagement.objects.prefetch_related(
        Prefetch("team", queryset=EngagementMember.objects.select_related("user"))
    )


def engagement_row(engagement: Engagement) -> dict[str, Any]:
    """Return the short form of an engagement a list shows."""
    return {
        "id": str(engagement.pk),
        "client_code": engagement.client_code,
        "client_name": engagement.client_name,
        "name": engagement.name,
        "engagement_type": engagement.engagement_type,
        "status": engagement.status,
        "due_date": engagement.due_date.isoformat() if engagement.due_date else None,
    }


def list_engagements(context: CallContext, arguments: ListEngagements) -> dict[str, Any]:
    rows = scope_to_user(Engagement.objects.all(), context.user, engagement_path="")
    if arguments.search:
        for word in arguments.search.split():
            rows = rows.filter(
                Q(client_code__icontains=word)
                | Q(client_name__icontains=word)
                | Q(name__icontains=word)
                | Q(description__icontains=word)
            )
    if arguments.status:
        rows = rows.filter(status=arguments.status)
    rows = rows.order_by("-created_at")
    total = rows.count()
    engagements = [engagement_row(e) for e in rows[: arguments.limit]]
    return {"count": total, "engagements": engagements}


def get_engagement(context: CallContext, arguments: GetEngagement) -> dict[str, Any]:
    engagement = visible(
        context,
        _engagements(),
        arguments.engagement_id,
        what="Engagement",
        argument="engagement_id",
        engagement_path="",
    )
    data = dict(EngagementSerializer(engagement, context=api_context(context.user)).data)
    counts = engagement.workflow_runs.order_by().values("status").annotate(count=Count("id"))
    data["runs_by_status"] = {row["status"]: row["count"] for row in counts}
    data["open_runs"] = sum(
        count for status, count in data["runs_by_status"].items() if status in OPEN_STATUSES
    )
    return data


def get_timeline(context: CallContext, arguments: GetTimeline) -> dict[str, Any]:
    engagement = visible(
        context,
        Engagement.objects.all(),
        arguments.engagement_id,
        what="Engagement",
        argument="engagement_id",
        engagement_path="",
    )
    entries = engagement_timeline(engagement, limit=arguments.limit)
    return {
        "engagement": engagement_row(engagement),
        "events": [
            {
                "at": entry.at.isoformat(),
                "source": entry.source,
                "kind": entry.kind,
                "object_type": entry.object_type,
                "object_id": str(entry.object_id) if entry.object_id else None,
                "object": entry.object_label,
                "user": user_label(entry.user),
                "description": entry.description,
                "severity": entry.severity,
                "changes": [
                    {"field": change.field, "old": str(change.old), "new": str(change.new)}
                    for change in entry.changes
                ],
                "trace_id": getattr(entry.record, "trace_id", None),
            }
            for entry in entries
        ],
    }


TOOLS = (
    Tool(
        name="list_engagements",
        description="List or search the engagements you are on (newest first): id, client, "
        "name, type, status and due date. Use an id with the other tools.",
        arguments=ListEngagements,
        handler=list_engagements,
        permissions=("engagements.view_engagement",),
        verb="view engagements",
        read_only=True,
    ),
    Tool(
        name="get_engagement",
        description="One engagement with its team (user, username, role), status, the moves "
        "its lifecycle allows, and how many of its workflow runs are in each status.",
        arguments=GetEngagement,
        handler=get_engagement,
        permissions=("engagements.view_engagement",),
        verb="view engagements",
        read_only=True,
    ),
    Tool(
        name="get_timeline",
        description="The engagement's timeline, newest first: audit events (decisions, "
        "downloads, agent calls with their trace ids) and the change history of its runs, "
        "artefacts, approvals and team.",
        arguments=GetTimeline,
        handler=get_timeline,
        permissions=("engagements.view_engagement", "audit.view_auditlog"),
        verb="read engagement timelines",
        read_only=True,
    ),
)
