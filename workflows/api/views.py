"""API views of workflow runs, their lifecycle, and replays of their results.

Runs of the types the back office runs itself (workflows/registry.py) are executed
by the background runner: queueing one hands it over, and the runner alone records
its progress, results and failure (the services refuse anyone else: 409). Work done
elsewhere (by an agent or a person, for the other types) is reported with start,
progress, complete and fail. A run waiting for approval is released only by the
decision on its workflow approval (/approvals/{id}/approve/ or …/reject/). A
finished run of a runner type can be replayed: re-executed on its recorded inputs,
storing nothing, to show its outputs are reproduced byte for byte.
"""

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from records.api.viewsets import ServiceViewSetMixin

from .. import services
from ..filters import WorkflowRunFilterSet
from ..models import ReplayRecord, WorkflowRun
from .serializers import (
    ReplayRecordSerializer,
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
QUEUE = (
    "Only the types the runner executes can be queued (data_validation, triangle_analysis, "
    "reserve_calculation, ibnr_estimation; 409 otherwise). A worker then runs the steps: "
    "the run goes running → completed, recording output_summary, metrics and provenance; "
    "or, for reserve_calculation and ibnr_estimation, → waiting_approval, with the "
    "workflow approval requested by the runner itself in the name of whoever queued "
    "(GET /approvals/?workflow_run_id=…): someone else decides it, which completes or "
    "fails the run. A step that fails fails the run (error_details)."
)
REPLAY = (
    "Re-execute a completed (or waiting) run of a type the runner executes on its recorded "
    "inputs, storing nothing, and compare each output's SHA-256 with the artefact the run "
    "stored. 409 if an input is missing or changed (nothing is recorded then). The report "
    "(a replay record: per artefact the original and replay hashes and whether they match, "
    "and how the code and library versions differ) is kept as evidence. Any working member "
    "of the team."
)


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
        description=TRANSITION + " " + QUEUE,
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
        return self.transition(services.workflow_run_update_progress, WorkflowRunProgressSerializer)

    @extend_schema(
        request=WorkflowRunCompleteSerializer,
        summary="Complete a running run with its results (work done elsewhere)",
        description=REPORTED_ELSEWHERE + " A run waiting for approval is released by the "
        "decision on its workflow approval instead (409).",
    )
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self.transition(services.workflow_run_complete, WorkflowRunCompleteSerializer)

    @extend_schema(
        request=WorkflowRunFailSerializer,
        summary="Fail an open run with what went wrong (work done elsewhere)",
        description=REPORTED_ELSEWHERE,
    )
    @action(detail=True, methods=["post"])
    def fail(self, request, pk=None):
        return self.transition(services.workflow_run_fail, WorkflowRunFailSerializer)

    @extend_schema(
        request=None,
        responses=ReplayRecordSerializer,
        summary="Replay a finished run and report whether its outputs match",
        description=REPLAY,
    )
    @action(detail=True, methods=["post"], permission_model=ReplayRecord)
    def replay(self, request, pk=None):
        record = services.workflow_run_replay(run=self.get_object(), actor=self.actor)
        return Response(ReplayRecordSerializer(record, context=self.get_serializer_context()).data)

    @extend_schema(
        responses=ReplayRecordSerializer(many=True),
        summary="The replays of a run, latest first (paginated)",
    )
    @action(detail=True, methods=["get"], permission_model=ReplayRecord, filter_backends=())
    def replays(self, request, pk=None):
        run = self.get_object()
        records = run.replays.select_related("replayed_by").order_by("-replayed_at", "-pk")
        page = self.paginate_queryset(records)
        serializer = ReplayRecordSerializer(page, many=True, context=self.get_serializer_context())
        return self.get_paginated_response(serializer.data)
