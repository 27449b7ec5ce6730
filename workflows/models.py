"""Workflow runs: executions of actuarial processes inside an engagement."""

from django.db import models
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from records.models import (
    LifecycleModel,
    SoftDeleteModel,
    TraceableModel,
    TrackedModel,
    acting_user_field,
    empty_dict,
    empty_list,
)

from .choices import TERMINAL_STATUSES, WORKFLOW_RUN_TRANSITIONS, WorkflowStatus, WorkflowType


class WorkflowRun(LifecycleModel, SoftDeleteModel, TraceableModel, TrackedModel):
    """One execution of an actuarial process (chain ladder, CSM, …) inside an engagement."""

    TRANSITIONS = WORKFLOW_RUN_TRANSITIONS

    engagement = models.ForeignKey(
        "engagements.Engagement", on_delete=models.CASCADE, related_name="workflow_runs"
    )
    workflow_type = models.CharField(max_length=40, choices=WorkflowType.choices, db_index=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    period = models.CharField(max_length=50, blank=True, db_index=True)
    status = models.CharField(
        max_length=20,
        choices=WorkflowStatus.choices,
        default=WorkflowStatus.PENDING,
        db_index=True,
    )
    started_at = models.DateTimeField(null=True, blank=True)
    # Who started the run: reviews of its results must be independent of them.
    started_by = acting_user_field()
    # Who queued the run for a worker: the worker acts for them (starts the run, asks for
    # its sign-off), so their reviews of it are not independent either.
    queued_by = acting_user_field()
    completed_at = models.DateTimeField(null=True, blank=True)
    step_count = models.PositiveIntegerField(default=0)
    current_step = models.PositiveIntegerField(default=0)
    input_params = models.JSONField(default=empty_dict, blank=True)
    output_summary = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    error_details = models.JSONField(null=True, blank=True)
    agent_name = models.CharField(max_length=100, blank=True, db_index=True)
    metrics = models.JSONField(default=empty_dict, blank=True)
    # What the runner ran, recorded when it starts the run (ASOP 56): the inputs' ids,
    # versions and SHA-256, the parameters' hash, the code and library versions.
    provenance = models.JSONField(default=empty_dict, blank=True, editable=False)
    # The run this one re-runs with changed choices (`workflow_run_rerun`): runs never
    # change, so judgment applied to a result is a new run that says where it came from.
    rerun_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="reruns",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-created_at",)
        verbose_name = "workflow run"
        constraints = (
            models.CheckConstraint(
                condition=models.Q(step_count__gte=0), name="workflow_run_step_count_non_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(current_step__gte=0),
                name="workflow_run_current_step_non_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(started_at__isnull=True)
                | models.Q(completed_at__isnull=True)
                | models.Q(completed_at__gte=models.F("started_at")),
                name="workflow_run_completed_after_started",
            ),
        )
        indexes = (
            models.Index(fields=("engagement", "status"), name="workflow_run_eng_status_idx"),
        )

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("admin:workflows_workflowrun_change", args=(self.pk,))

    @property
    def is_terminal(self) -> bool:
        """Return whether the run has ended (completed, failed or cancelled)."""
        return self.status in TERMINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        """Return the run time in seconds, or None until it has started and ended."""
        if self.started_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.started_at).total_seconds()

    @property
    def progress_percent(self) -> int:
        """Return the share of steps done, 0–100 (0 when the step count is unknown)."""
        if not self.step_count:
            return 0
        return max(0, min(100, round(100 * self.current_step / self.step_count)))

    @property
    def result_headline(self) -> dict | None:
        """Return a reserving result's method and total latest, ultimate and IBNR, or None.

        Read from the output summary the run already holds (no query): None for a run
        without reserving totals (other types, not finished, or work reported elsewhere
        without them).
        """
        summary = self.output_summary if isinstance(self.output_summary, dict) else {}
        totals = summary.get("totals")
        if not isinstance(totals, dict):
            return None
        figures = {}
        for key in ("latest", "ultimate", "ibnr"):
            value = totals.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            figures[key] = float(value)
        method = summary.get("method") or totals.get("method")
        measure = summary.get("measure")
        return {
            "method": method if isinstance(method, str) else None,
            "measure": measure if isinstance(measure, str) else None,
            **figures,
        }

    def queue(self):
        """Queue the run for a worker: pending → queued."""
        self._move("queue")

    queue.alters_data = True

    def start(self):
        """Start the run: pending or queued → running."""
        self._move("start")
        self.started_at = timezone.now()

    start.alters_data = True

    def pause(self):
        """Pause the run: running → paused."""
        self._move("pause")

    pause.alters_data = True

    def resume(self):
        """Resume the run: paused → running."""
        self._move("resume")

    resume.alters_data = True

    def await_approval(self):
        """Hold the finished run for sign-off: running → waiting_approval."""
        self._move("await_approval")

    await_approval.alters_data = True

    def complete(self, output_summary: dict | None = None):
        """Complete the run: running or waiting_approval → completed."""
        self._move("complete")
        self.completed_at = timezone.now()
        if output_summary is not None:
            self.output_summary = output_summary

    complete.alters_data = True

    def fail(self, error_message: str, error_details: dict | None = None):
        """End the run as failed, recording what went wrong."""
        self._move("fail")
        self.completed_at = timezone.now()
        self.error_message = error_message
        self.error_details = error_details

    fail.alters_data = True

    def cancel(self):
        """Cancel the run (any non-terminal state)."""
        self._move("cancel")
        self.completed_at = timezone.now()

    cancel.alters_data = True


class ReplayRecord(TrackedModel):
    """Evidence that a run was re-executed on the same inputs, and whether its outputs matched.

    A replay never creates artefacts: it recomputes the run's outputs in memory and
    compares their SHA-256 with the artefacts the run stored (model validation, ASOP 56).
    """

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="replays")
    replayed_by = acting_user_field(editable=True)
    replayed_at = models.DateTimeField(default=timezone.now, db_index=True)
    matched = models.BooleanField(
        db_index=True, help_text="Whether every output artefact's SHA-256 matched the original."
    )
    inputs = models.JSONField(
        default=empty_list, blank=True, help_text="The inputs verified before replaying (id, hash)."
    )
    outputs = models.JSONField(
        default=empty_list,
        blank=True,
        help_text="Per output artefact: name, file name, original and replay SHA-256, match.",
    )
    environment = models.JSONField(
        default=empty_dict,
        blank=True,
        help_text="The replay's code and library versions and how they differ from the run's.",
    )
    error_message = models.TextField(blank=True, help_text="Why the replay did not finish.")

    history = HistoricalRecords()

    class Meta:
        ordering = ("-replayed_at",)
        verbose_name = "replay record"

    def __str__(self):
        outcome = "matched" if self.matched else "did not match"
        return f"Replay of {self.run} on {self.replayed_at:%Y-%m-%d %H:%M} ({outcome})"


class WorkerHeartbeat(models.Model):
    """A background worker process that is (or was) alive: `manage.py run_workers` keeps it.

    The worker writes its row when it starts, refreshes `last_seen_at` every few seconds
    from a thread of its own (so a long step does not silence it), names the task and
    run it is executing, and deletes the row when it stops cleanly. A row whose
    `last_seen_at` is older than the dead-after limit belongs to a worker that died
    (`kill -9`, power loss): the reaper (`workflows.services.workers_reap`) settles its
    run and removes it.
    """

    worker_id = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    # What the worker is executing now (empty while it waits for a task).
    task_id = models.UUIDField(null=True, blank=True)
    run = models.ForeignKey(
        WorkflowRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # When each worker started and stopped (or was reaped): heartbeats themselves are
    # plain UPDATEs, which the history does not record.
    history = HistoricalRecords()

    class Meta:
        ordering = ("-last_seen_at",)
        verbose_name = "worker heartbeat"

    def __str__(self):
        return f"worker {self.worker_id} on {self.hostname} (pid {self.pid})"
