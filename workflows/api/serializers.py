"""Serializers of workflow runs."""

from rest_framework import serializers

from engagements.models import Engagement
from records.api.lean import LeanListSerializer
from records.api.serializers import (
    AvailableMovesField,
    InputSerializer,
    JSONObjectField,
    RecordSerializer,
    VisiblePrimaryKeyRelatedField,
)
from records.api.shapes import ShapeField

from ..models import ReplayRecord, WorkflowRun
from .results import (
    ERROR_DETAILS_SHAPES,
    OUTPUT_SUMMARY_SHAPES,
    ReplayEnvironmentShape,
    ReplayInputShape,
    ReplayOutputShape,
    RunProvenanceShape,
    RunResultHeadlineShape,
    WorkflowRunMetricsShape,
)

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")


class WorkflowRunSerializer(RecordSerializer):
    """A workflow run; what the run itself records (status, timing, results) is read-only."""

    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        help_text="Id of the engagement (one you are on). Set on creation only.",
    )
    input_params = JSONObjectField(
        required=False,
        help_text="Inputs of the run (a JSON object). Reserve calculation and IBNR estimation: "
        'the triangle ({"triangle_artefact": id, "cumulative": true, "measure": "paid"}) and '
        "the reserving choices (method, average, averages, n_periods, drop_high, drop_low, "
        "exclude, selected_factors, tail, exposure_artefact, apriori_loss_ratio, n_iterations, "
        "trend, decay, n_sims, random_seed, percentiles, prior_run), each with an example in "
        "docs/reserving-methods.md; a bad one is a 400 naming it.",
    )
    progress_percent = serializers.IntegerField(read_only=True, help_text="0–100.")
    duration_seconds = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Run time; null until it started and ended."
    )
    available_moves = AvailableMovesField(
        help_text="The moves the run's lifecycle allows from its current status, computed "
        "by the server. Not each is yours to make: await_approval is the runner's (no "
        "endpoint); a run of a type the runner executes (data_validation, "
        "triangle_analysis, reserve_calculation, ibnr_estimation) is queued, and the runner "
        "alone starts, completes or fails it (those actions answer 409); a run waiting for "
        "approval is completed or failed by the decision on its workflow approval.",
    )
    output_summary = ShapeField(
        OUTPUT_SUMMARY_SHAPES,
        allow_null=True,
        help_text="The results: for the runner's types, the result of the run's type "
        "(ReservingRunSummary for reserve_calculation and ibnr_estimation, "
        "TriangleAnalysisSummary, DataValidationSummary); for work done elsewhere, what was "
        "reported. Null until there are results.",
    )
    result_headline = ShapeField(
        RunResultHeadlineShape,
        allow_null=True,
        help_text="For reserving runs with results: the method and the total latest, ultimate "
        "and IBNR, read from output_summary (what the run lists show). Null otherwise.",
    )
    error_details = ShapeField(
        ERROR_DETAILS_SHAPES,
        allow_null=True,
        help_text="Why a failed run failed: the runner's step and exception "
        "(StepFailure), the rejected workflow approval (ApprovalRejection), or what was "
        "reported for work done elsewhere. Null unless the run failed.",
    )
    metrics = ShapeField(WorkflowRunMetricsShape, help_text="Step durations (the runner's).")
    provenance = ShapeField(
        RunProvenanceShape,
        help_text="Inputs, parameters, code and library versions, recorded by the runner "
        "when it starts the run.",
    )

    class Meta:
        # Lists are read lean (records.api.lean): the same JSON, a fraction of the CPU.
        list_serializer_class = LeanListSerializer
        model = WorkflowRun
        fields = (
            "id",
            "engagement",
            "workflow_type",
            "name",
            "description",
            "period",
            "status",
            "started_at",
            "started_by",
            "queued_by",
            "completed_at",
            "step_count",
            "current_step",
            "progress_percent",
            "duration_seconds",
            "input_params",
            "output_summary",
            "result_headline",
            "error_message",
            "error_details",
            "agent_name",
            "metrics",
            "provenance",
            "rerun_of",
            "trace_id",
            "available_moves",
            *AUDIT_FIELDS,
        )
        read_only_fields = (
            "id",
            "status",
            "started_at",
            "started_by",
            "queued_by",
            "completed_at",
            "current_step",
            "output_summary",
            "error_message",
            "error_details",
            "metrics",
            "provenance",
            "rerun_of",
            "trace_id",
            *AUDIT_FIELDS,
        )
        create_only_fields = ("engagement",)
        extra_kwargs = {
            "status": {
                "help_text": "Changes only through the actions. A run of a type the runner "
                "executes goes queued → running → completed, or, for reserve_calculation "
                "and ibnr_estimation (results that need sign-off), → waiting_approval: the "
                "runner then has requested its workflow approval itself (GET "
                "/approvals/?workflow_run_id=…; requesting another answers 409), whose "
                "decision completes or fails the run."
            },
            "rerun_of": {
                "help_text": "The run this one re-runs with changed choices (“Re-run with "
                "changes” in the admin); null for a run started afresh."
            },
        }


class WorkflowRunProgressSerializer(InputSerializer):
    """How far a run executed outside the back office has got."""

    current_step = serializers.IntegerField(min_value=0, help_text="Steps done so far.")
    step_count = serializers.IntegerField(
        min_value=0, required=False, help_text="Total number of steps, if it changed."
    )
    metrics = JSONObjectField(required=False, help_text="Merged into the run's metrics.")
    output_summary = JSONObjectField(required=False, help_text="Results recorded so far.")


class WorkflowRunCompleteSerializer(InputSerializer):
    """The end of a run executed outside the back office: its results summary."""

    output_summary = JSONObjectField(
        required=False, allow_null=True, help_text="Totals, parameters, key figures."
    )


class WorkflowRunFailSerializer(InputSerializer):
    """The failure of a run executed outside the back office: what went wrong."""

    error_message = serializers.CharField(help_text="What went wrong, in a sentence.")
    error_details = JSONObjectField(
        required=False, allow_null=True, help_text="Exception type, traceback, context."
    )


class ReplayRecordSerializer(RecordSerializer):
    """A replay of a run: whether every output matched, per artefact, and the environment."""

    inputs = ShapeField(
        ReplayInputShape, many=True, help_text="The inputs verified before replaying."
    )
    outputs = ShapeField(
        ReplayOutputShape, many=True, help_text="Per output artefact: both SHA-256, and match."
    )
    environment = ShapeField(
        ReplayEnvironmentShape,
        help_text="The replay's code and library versions and how they differ from the run's.",
    )

    class Meta:
        model = ReplayRecord
        fields = (
            "id",
            "run",
            "replayed_by",
            "replayed_at",
            "matched",
            "inputs",
            "outputs",
            "environment",
            "error_message",
        )
        read_only_fields = fields
