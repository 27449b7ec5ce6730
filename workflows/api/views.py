"""API views of workflow runs and their lifecycle.

Runs of the types the back office runs itself (workflows/registry.py) are executed
by the background runner: queueing one hands it over, and the runner alone records
its progress, results and failure. Work done elsewhere (by an agent or a person,
for the other types) is reported with start, progress, complete and fail. A run
waiting for approval is released only by the decision on its workflow approval
(/approvals/{id}/approve/ or …/reject/).
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action

from config.api import ServiceViewSetMixin
from config.exceptions import Conflict

from .. import services
from ..filters import WorkflowRunFilterSet
from ..models import WorkflowRun
from ..registry import implementation_for
from .serializers import (
    WorkflowRunCompleteSerializer,
    WorkflowRunFailSerializer,
    WorkflowRunProgressSerializer,
    WorkflowRunSerializer,
)

TRANSITION = "Lifecycle move of the run; any working member of the engagement's team."
REPORTED_ELSEWHERE = (
    "For work done outside the back office (types the runner does not run); any working "
    "member of the engagement's team. Refused (409) for the types the runner executes."
)
RUN_REPORTED_BY_RUNNER = (
    "Cannot {verb} workflow run “{run}” through the API: the back office runs "
    "{workflow_type} workflows itself, and only its runner {does}."
)
RUNNER_STARTS = "starts them (queue the run instead)"
RUNNER_RECORDS = "records their {what}"


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
        request=None,
        summary="Start work done elsewhere: pending → running",
        description=REPORTED_ELSEWHERE + " Runs of the runner's types are queued instead.",
    )
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        self._refuse_runner_work(verb="start", does=RUNNER_STARTS)
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

    @extend_schema(
        request=WorkflowRunProgressSerializer,
        summary="Record progress of a running run (work done elsewhere)",
        description=REPORTED_ELSEWHERE,
    )
    @action(detail=True, methods=["post"])
    def progress(self, request, pk=None):
        data = self.validated_input(WorkflowRunProgressSerializer)
        self._refuse_runner_work(
            verb="record progress of", does=RUNNER_RECORDS.format(what="progress")
        )
        return self.transition(services.workflow_run_update_progress, **data)

    @extend_schema(
        request=WorkflowRunCompleteSerializer,
        summary="Complete a running run with its results (work done elsewhere)",
        description=REPORTED_ELSEWHERE + " A run waiting for approval is released by the "
        "decision on its workflow approval instead (409).",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        data = self.validated_input(WorkflowRunCompleteSerializer)
        self._refuse_runner_work(verb="complete", does=RUNNER_RECORDS.format(what="results"))
        return self.transition(services.workflow_run_complete, **data)

    @extend_schema(
        request=WorkflowRunFailSerializer,
        summary="Fail an open run with what went wrong (work done elsewhere)",
        description=REPORTED_ELSEWHERE,
    )
    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        data = self.validated_input(WorkflowRunFailSerializer)
        self._refuse_runner_work(verb="fail", does=RUNNER_RECORDS.format(what="failures"))
        return self.transition(services.workflow_run_fail, **data)

    def _refuse_runner_work(self, *, verb: str, does: str) -> None:
        """Refuse to start or report by hand on a run whose type the background runner executes.

        A run must not be a status someone types in (issue 7): such a run is queued,
        and the runner starts it and records its progress, results or failure. The
        services accept these moves from the runner, so the API keeps the rule for
        its callers.
        """
        run = self.get_object()
        if implementation_for(run.workflow_type) is not None:
            raise Conflict(
                RUN_REPORTED_BY_RUNNER.format(
                    verb=verb, run=run, workflow_type=run.workflow_type, does=does
                )
            )
