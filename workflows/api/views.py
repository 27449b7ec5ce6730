"""API views of workflow runs and their lifecycle.

The runs themselves are executed by the background runner (workflows/tasks.py):
queueing a run hands it over. The API offers the moves a person or an agent
makes on a run (queue, start, pause, resume, cancel); completing or failing a run
is the runner's job, and a run waiting for approval is released only by the
decision on its workflow approval (/approvals/{id}/approve/ or …/reject/).
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action

from config.api import ServiceViewSetMixin

from .. import services
from ..filters import WorkflowRunFilterSet
from ..models import WorkflowRun
from .serializers import WorkflowRunSerializer

TRANSITION = "Lifecycle move of the run; any working member of the engagement's team."


@extend_schema_view(
    list=extend_schema(summary="List the workflow runs of your engagements"),
    create=extend_schema(summary="Create a pending workflow run"),
    update=extend_schema(summary="Edit a pending or queued run"),
    partial_update=extend_schema(summary="Edit a pending or queued run"),
    destroy=extend_schema(summary="Delete a finished run (soft delete)"),
)
class WorkflowRunViewSet(ServiceViewSetMixin, viewsets.ModelViewSet):
    """Workflow runs: executions of actuarial processes inside your engagements."""

    queryset = WorkflowRun.objects.all()
    serializer_class = WorkflowRunSerializer
    filterset_class = WorkflowRunFilterSet
    search_fields = ("name", "description", "period", "agent_name")
    ordering_fields = (
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "name",
        "status",
        "period",
    )
    service_object_name = "run"

    def perform_create(self, serializer):
        serializer.instance = services.workflow_run_create(
            actor=self.actor, trace_id=self.trace_id(), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.workflow_run_update(
            run=serializer.instance, actor=self.actor, data=serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.workflow_run_delete(run=instance, actor=self.actor)

    @extend_schema(
        request=None,
        summary="Queue for the background runner: pending → queued",
        description=TRANSITION,
    )
    @action(detail=True, methods=["post"])
    def queue(self, request, pk=None):
        return self.transition(services.workflow_run_queue)

    @extend_schema(
        request=None, summary="Start: pending or queued → running", description=TRANSITION
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self.transition(services.workflow_run_start)

    @extend_schema(request=None, summary="Pause: running → paused", description=TRANSITION)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self.transition(services.workflow_run_pause)

    @extend_schema(request=None, summary="Resume: paused → running", description=TRANSITION)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self.transition(services.workflow_run_resume)

    @extend_schema(
        request=None, summary="Cancel: any open state → cancelled", description=TRANSITION
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self.transition(services.workflow_run_cancel)
