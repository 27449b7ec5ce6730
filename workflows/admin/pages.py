"""What workflows add to the engagement page: its runs, and "New reserving analysis".

Registered in WorkflowsConfig.ready(). The button leads to the guided analysis
(`new_analysis`); it shows to the people who may start runs in the engagement.
"""

from __future__ import annotations

from django.urls import reverse

from records.admin import (
    PageExtension,
    ReadOnlyInline,
)

from ..models import WorkflowRun
from .new_analysis import may_analyse

NEW_ANALYSIS = "New reserving analysis"


class WorkflowRunInline(ReadOnlyInline):
    model = WorkflowRun
    fields = ("name", "workflow_type", "period", "status", "started_at", "completed_at")
    ordering = ("-created_at",)


def analysis_link(model_admin, request, engagement, context) -> dict:
    """Put "New reserving analysis" first among the engagement page's links that start work."""
    if not may_analyse(request.user, engagement):
        return {}
    url = reverse("admin:workflows_analysis_start", args=(engagement.pk,))
    links = context.get("engagement_add_links") or []
    return {"engagement_add_links": [(NEW_ANALYSIS, url), *links]}


ENGAGEMENT_PAGE = PageExtension(inlines=(WorkflowRunInline,), context=analysis_link)
