"""Serializers of workflow runs."""

from rest_framework import serializers

from engagements.models import Engagement
from records.api.serializers import (
    InputSerializer,
    JSONObjectField,
    RecordSerializer,
    VisiblePrimaryKeyRelatedField,
)

from ..models import ReplayRecord, WorkflowRun

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
    available_moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The lifecycle moves allowed from the current status (the API offers "
        "queue, start, pause, resume and cancel).",
    )

    class Meta:
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
            "error_message",
            "error_details",
            "agent_name",
            "metrics",
            "provenance",
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
            "trace_id",
            *AUDIT_FIELDS,
        )
        create_only_fields = ("engagement",)


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
