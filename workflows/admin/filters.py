"""Changelist filters of workflow runs that stay cheap at 100,000 runs."""

from django.contrib import admin

from ..models import WorkflowRun

# The agent filter offers the agents of this many latest runs (a SELECT DISTINCT over
# every run was a full scan on each changelist page: issue 18).
AGENT_SAMPLE = 1000


class AgentNameListFilter(admin.SimpleListFilter):
    """Filter by agent: the names seen in the latest AGENT_SAMPLE runs, and the chosen one."""

    title = "agent name"
    # The parameter of Django's own field filter, so links made for it still work.
    parameter_name = "agent_name__exact"

    def lookups(self, request, model_admin):
        latest = WorkflowRun.objects.order_by("-created_at").values_list("agent_name", flat=True)
        names = set(latest[:AGENT_SAMPLE]) - {""}
        if self.value():
            names.add(self.value())
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(agent_name=self.value())
