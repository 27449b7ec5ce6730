"""What workflows add to the engagement page: its runs (registered in WorkflowsConfig.ready())."""

from __future__ import annotations

from records.admin import (
    PageExtension,
    ReadOnlyInline,
)

from ..models import WorkflowRun


class WorkflowRunInline(ReadOnlyInline):
    model = WorkflowRun
    fields = ("name", "workflow_type", "period", "status", "started_at", "completed_at")
    ordering = ("-created_at",)


ENGAGEMENT_PAGE = PageExtension(inlines=(WorkflowRunInline,))
