"""Admin for workflow runs: create, edit and move them through `workflows.services`.

The change page shows the run as an actuary reads it: a progress bar with its steps,
duration and people, the input parameters and results as tables (for reserving runs,
the chain ladder results by origin with totals, read from the run's results CSV, and
the development factors), its charts and result artefacts, and any error with its
traceback; what it ran with (ASOP 56: its inputs with their SHA-256, the parameters'
hash, the code and library versions) and its replays, with a Replay button that
re-runs it through `workflow_run_replay` and says whether every output matched. The
reserving inputs have their own form fields; other types take input_params as JSON.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from approvals.models import Approval
from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from artefacts.services import ACCESS_PREVIEW, artefact_open_for_download
from audit.admin import EngagementListFilter, RecordAdmin
from config.exceptions import DomainError, InvalidInput
from config.service_admin import AdminMove, ServiceAdminMixin, adopt, changed_data, form_data
from engagements.selectors import scope_to_user

from .choices import WorkflowStatus, WorkflowType
from .models import ReplayRecord, WorkflowRun
from .registry import implementation_for, runnable_types, validate_input_params
from .reserving import AVERAGES, LAYOUTS, MEASURES
from .services import (
    EDITABLE_FIELDS,
    EDITABLE_STATUSES,
    workflow_run_cancel,
    workflow_run_create,
    workflow_run_delete,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_replay,
    workflow_run_resume,
    workflow_run_start,
    workflow_run_update,
)

# The reserving inputs offered as form fields, in the order the form shows them.
RESERVING_FIELDS = (
    "triangle_artefact",
    "cumulative",
    "measure",
    "layout",
    "allow_negative_development",
    "average",
    "tail_factor",
)
# Artefacts a triangle may be read from (CSV or Excel files).
TRIANGLE_ARTEFACT_TYPES = (
    ArtefactType.TRIANGLE,
    ArtefactType.CSV,
    ArtefactType.EXCEL,
    ArtefactType.DATA_FILE,
)
CUMULATIVE_CHOICES = (("", "---------"), ("true", "cumulative"), ("false", "incremental"))
# The header of the reserving results CSV (workflows.reserving.outputs.RESERVE_COLUMNS).
RESERVE_CSV_HEADER = ("origin", "development_age", "latest", "cdf", "ultimate", "ibnr")
RESERVE_CSV_TOTAL = "Total"
RESERVE_CSV_MAX_BYTES = 1024 * 1024
RESERVING_TYPES = frozenset(
    {WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION, WorkflowType.TRIANGLE_ANALYSIS}
)

TRIANGLE_HELP = (
    "Reserving workflows: the triangle (CSV or Excel) to read, from this engagement. "
    "When chosen, the fields below make the input parameters (the JSON is ignored)."
)
TAIL_FACTOR_HELP = (
    "Reserve calculation and IBNR estimation: a factor of at least 1; empty: no tail."
)
AVERAGE_HELP = "Reserve calculation and IBNR estimation: how age-to-age factors are averaged."
NEGATIVE_HELP = "Accept decreases of cumulative values (e.g. salvage, RAA's 1982 at 72–84)."
PARAMS_HELP_INTRO = "Other types: the parameters as a JSON object. Parameters each type takes: "
NOT_A_TRIANGLE_WORKFLOW = (
    "A {workflow_type} run reads no triangle: leave the reserving fields empty and give "
    "its input parameters as JSON."
)
RESULTS_UNREADABLE = "The results file cannot be shown: {error}"
NO_RESULTS_FILE = "No results file (CSV) is stored for this run."
# Runs the back office can re-execute: they produced their results and recorded provenance.
REPLAYABLE_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL})
# How many replay records the run page lists (the latest; the count says how many exist).
REPLAYS_SHOWN = 20
REPLAY_MATCHED = (
    "Replay of workflow run “{run}”: matched — all {count} output(s) reproduced byte for byte."
)
REPLAY_MISMATCHED = "Replay of workflow run “{run}”: did not match — {problem}"
REPLAY_OUTPUTS_DIFFER = "{names} differ from the stored artefacts (see the replay below)."


def expected_parameters_help() -> str:
    """Return which parameters each runnable workflow type takes (for the form's help)."""
    parts = []
    for workflow_type in runnable_types():
        implementation = implementation_for(workflow_type)
        accepted = getattr(implementation, "accepted_params", ())
        parts.append(f"{workflow_type}: {', '.join(accepted) or 'none'}")
    return PARAMS_HELP_INTRO + "; ".join(parts) + "."


class WorkflowRunForm(forms.ModelForm):
    """A run's fields, plus the reserving inputs as fields that make its input_params."""

    triangle_artefact = forms.ModelChoiceField(
        queryset=Artefact.objects.none(), required=False, help_text=TRIANGLE_HELP
    )
    cumulative = forms.ChoiceField(
        choices=CUMULATIVE_CHOICES, required=False, label="Triangle values are"
    )
    measure = forms.ChoiceField(
        choices=(("", "---------"), *((m, m) for m in MEASURES)), required=False
    )
    layout = forms.ChoiceField(
        choices=tuple((layout, layout) for layout in LAYOUTS), initial="auto", required=False
    )
    allow_negative_development = forms.BooleanField(required=False, help_text=NEGATIVE_HELP)
    average = forms.ChoiceField(
        choices=tuple((a, a) for a in AVERAGES),
        initial="volume",
        required=False,
        help_text=AVERAGE_HELP,
    )
    tail_factor = forms.FloatField(min_value=1.0, required=False, help_text=TAIL_FACTOR_HELP)

    # Set per request by the admin: the triangles the user may choose from.
    triangle_choices = Artefact.objects.none()

    class Meta:
        model = WorkflowRun
        fields = ("engagement", *sorted(EDITABLE_FIELDS))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "triangle_artefact" not in self.fields:
            return
        chooser = self.fields["triangle_artefact"]
        chooser.queryset = self.triangle_choices
        chooser.label_from_instance = _triangle_label
        params = None if self.instance._state.adding else self.instance.input_params
        if isinstance(params, dict) and params.get("triangle_artefact"):
            for name in RESERVING_FIELDS:
                value = params.get(name)
                if isinstance(value, bool) and name == "cumulative":
                    value = "true" if value else "false"
                if value is not None:
                    self.initial[name] = value

    def clean(self):
        cleaned_data = super().clean()
        workflow_type = cleaned_data.get("workflow_type") or self.instance.workflow_type
        used_fields = set(RESERVING_FIELDS) & set(self.changed_data)
        if used_fields and cleaned_data.get("triangle_artefact") is not None:
            implementation = implementation_for(workflow_type)
            accepted = getattr(implementation, "accepted_params", ())
            if "triangle_artefact" not in accepted:
                self.add_error(
                    "triangle_artefact",
                    NOT_A_TRIANGLE_WORKFLOW.format(workflow_type=workflow_type),
                )
                return cleaned_data
            cleaned_data["input_params"] = self._reserving_params(cleaned_data, accepted)
        self._check_params(cleaned_data, workflow_type, error_field=self._error_field(used_fields))
        return cleaned_data

    def _reserving_params(self, data, accepted) -> dict[str, Any]:
        """Return input_params made of the reserving fields the workflow type accepts."""
        cumulative = {"true": True, "false": False}.get(data.get("cumulative") or "")
        # Keep the choices the form has no field for (a method, exclusions, a tail, …).
        kept = {} if self.instance._state.adding else dict(self.instance.input_params or {})
        params = {
            **kept,
            "triangle_artefact": str(data["triangle_artefact"].pk),
            "cumulative": cumulative,
            "measure": data.get("measure") or None,
            "layout": data.get("layout") or "auto",
            "allow_negative_development": bool(data.get("allow_negative_development")),
            "average": data.get("average") or "volume",
            "tail_factor": data.get("tail_factor"),
        }
        return {name: value for name, value in params.items() if name in accepted}

    def _error_field(self, used_fields) -> str:
        return "triangle_artefact" if used_fields else "input_params"

    def _check_params(self, data, workflow_type, *, error_field) -> None:
        """Report bad inputs next to their field, in the words the services would use."""
        params = data.get("input_params")
        engagement = data.get("engagement") or getattr(self.instance, "engagement", None)
        if not params or engagement is None or implementation_for(workflow_type) is None:
            return
        if error_field not in self.fields:
            error_field = None
        try:
            data["input_params"] = validate_input_params(
                workflow_type=workflow_type, input_params=params, engagement=engagement
            )
        except InvalidInput as error:
            self.add_error(error_field, error.message)


def _triangle_label(artefact: Artefact) -> str:
    return f"{artefact.name} v{artefact.version} ({artefact.file_name}) · {artefact.engagement}"


def is_replayable(run: WorkflowRun) -> bool:
    """Return whether the Replay button is offered: a finished run of a type the runner runs."""
    return (
        run.status in REPLAYABLE_STATUSES
        and bool(run.provenance)
        and implementation_for(run.workflow_type) is not None
    )


def replay_report(run: WorkflowRun, record: ReplayRecord) -> tuple[int, str]:
    """Return the message a replay ends with: matched (success), or what did not (warning)."""
    if record.matched:
        return messages.SUCCESS, REPLAY_MATCHED.format(run=run, count=len(record.outputs))
    problem = record.error_message or REPLAY_OUTPUTS_DIFFER.format(
        names=", ".join(o["file_name"] or o["name"] for o in record.outputs if not o["match"])
    )
    return messages.WARNING, REPLAY_MISMATCHED.format(run=run, problem=problem)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ServiceAdminMixin, RecordAdmin):
    form = WorkflowRunForm
    list_display = (
        "name",
        "engagement",
        "workflow_type",
        "period",
        "status",
        "progress",
        "started_at",
        "completed_at",
        "agent_name",
    )
    list_filter = ("status", "workflow_type", EngagementListFilter, "agent_name")
    search_fields = ("name", "description", "period", "engagement__name", "engagement__client_code")
    list_select_related = ("engagement",)
    autocomplete_fields = ("engagement",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = (
        "started_at",
        "started_by",
        "queued_by",
        "completed_at",
        "current_step",
        "output_summary",
        "error_message",
        "error_details",
        "metrics",
    )

    service_object_argument = "run"
    service_moves = (
        AdminMove("queue", "Queue", workflow_run_queue),
        AdminMove("start", "Start", workflow_run_start),
        AdminMove("pause", "Pause", workflow_run_pause),
        AdminMove("resume", "Resume", workflow_run_resume),
        AdminMove("cancel", "Cancel", workflow_run_cancel),
        AdminMove(
            "replay",
            "Replay",
            workflow_run_replay,
            available=is_replayable,
            bulk=False,
            report=replay_report,
        ),
    )
    delete_service = workflow_run_delete

    @admin.display(description="progress")
    def progress(self, obj):
        return f"{obj.progress_percent}%"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_fieldsets(self, request, obj=None):
        editable = obj is None or obj.status in EDITABLE_STATUSES
        run = (
            "engagement",
            "workflow_type",
            "name",
            "description",
            "period",
            "agent_name",
            "status",
        )
        fieldsets = [(None, {"fields": run})]
        if editable:
            fieldsets.append(
                (
                    "Reserving inputs",
                    {
                        "fields": RESERVING_FIELDS,
                        "description": "For triangle_analysis, reserve_calculation, "
                        "ibnr_estimation and data_validation runs.",
                    },
                )
            )
            fieldsets.append(
                (
                    "Input parameters",
                    {
                        "fields": ("input_params", "step_count"),
                        "description": expected_parameters_help(),
                    },
                )
            )
        shown = {name for _, options in fieldsets for name in options["fields"]}
        record = [
            name
            for name in self.get_fields(request, obj)
            if name not in shown and name not in RESERVING_FIELDS
        ]
        fieldsets.append(("Record", {"classes": ("collapse",), "fields": record}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if obj is None:
            return readonly
        # A run stays in its engagement; once started, its record is kept as it ran.
        extra = ["engagement"]
        if obj.status not in EDITABLE_STATUSES:
            extra += sorted(EDITABLE_FIELDS)
        return (*readonly, *(f for f in extra if f not in readonly))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "triangle_artefact" not in form.base_fields:
            return form
        choices = scope_to_user(
            Artefact.objects.filter(artefact_type__in=TRIANGLE_ARTEFACT_TYPES), request.user
        ).select_related("engagement")
        engagement_id = obj.engagement_id if obj is not None else _engagement_id_of(request)
        if engagement_id is not None:
            choices = choices.filter(engagement_id=engagement_id)
        choices = choices.order_by("engagement__client_code", "-created_at")
        return type(form.__name__, (form,), {"triangle_choices": choices})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context["run_details"] = run_details(obj, request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            saved = workflow_run_create(
                engagement=form.cleaned_data["engagement"],
                actor=request.user,
                **form_data(form, EDITABLE_FIELDS),
            )
        else:
            data = changed_data(form, EDITABLE_FIELDS)
            params = form.cleaned_data.get("input_params")
            # Made from the reserving fields: the JSON field itself did not change.
            if "input_params" in form.fields and params != form.initial.get("input_params"):
                data["input_params"] = params
            if not data:
                return
            saved = workflow_run_update(run=obj, actor=request.user, data=data)
        adopt(obj, saved)


def _engagement_id_of(request) -> uuid.UUID | None:
    """Return the engagement the add form is for (chosen, or given in the link), if any."""
    value = request.POST.get("engagement") or request.GET.get("engagement")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


# --- the run, as the change page shows it ------------------------------------------------


@dataclass
class StepState:
    """One step of a run: its label, whether it ran (and failed), and how long it took."""

    number: int
    label: str
    state: str  # done, failed, todo
    seconds: float | None = None


@dataclass
class ReserveTable:
    """The chain ladder results by origin (from the results CSV) and the totals row."""

    rows: list[dict[str, str]]
    total: dict[str, str] | None
    artefact: Artefact | None = None


@dataclass
class RunDetails:
    """What the run page shows below its fields."""

    run: WorkflowRun
    steps: list[StepState]
    duration: str
    running_for: str
    input_rows: list[tuple[str, object]]
    summary_rows: list[tuple[str, object]]
    totals: dict[str, str] | None
    factors: list[dict[str, str]]
    reserve_table: ReserveTable | None
    results_problem: str
    warnings: list[str]
    charts: list[Artefact]
    results: list[Artefact]
    approvals: list[Approval]
    error: dict[str, Any] | None
    error_extra: list[tuple[str, object]] = field(default_factory=list)
    provenance: ProvenanceView | None = None
    replays: list[ReplayView] = field(default_factory=list)
    more_replays: bool = False


@dataclass
class ProvenanceView:
    """What the run ran with (ASOP 56), readable: inputs, parameters, code and libraries."""

    recorded_at: str
    implementation: str
    steps: list[str]
    # (param, name and version, artefact (or None if not visible / gone), file, size, SHA-256)
    inputs: list[dict[str, Any]]
    parameters_hash: str
    parameters: str
    environment: list[tuple[str, str]]
    libraries: list[tuple[str, str]]


@dataclass
class ReplayView:
    """One replay of the run: who and when, matched or not, per output, what differed."""

    record: ReplayRecord
    outputs: list[dict[str, Any]]
    differences: list[tuple[str, str, str]]


def run_details(run: WorkflowRun, request) -> RunDetails:
    """Return the readable view of `run`: progress, inputs, results and errors."""
    summary = run.output_summary if isinstance(run.output_summary, dict) else {}
    artefacts = list(
        scope_to_user(Artefact.objects.filter(workflow_run=run), request.user).order_by(
            "created_at"
        )
    )
    charts = [a for a in artefacts if a.mime_type in ("image/png", "image/jpeg")]
    # One row more than shown: whether there are older replays, without counting them all.
    replays = list(
        run.replays.select_related("replayed_by").order_by("-replayed_at")[: REPLAYS_SHOWN + 1]
    )
    reserve_table, problem = None, ""
    if run.workflow_type in RESERVING_TYPES and summary.get("totals"):
        reserve_table, problem = _reserve_table(artefacts, request)
    error = run.error_details if isinstance(run.error_details, dict) else None
    shown_error_keys = {"step", "step_label", "step_number", "step_count", "message"}
    shown_error_keys |= {"exception_type", "traceback"}
    return RunDetails(
        run=run,
        steps=_steps(run),
        duration=_seconds_text(run.duration_seconds),
        running_for=_running_for(run),
        input_rows=_input_rows(run, request),
        summary_rows=_summary_rows(summary),
        totals=_totals(summary.get("totals")),
        factors=_factors(summary.get("development_factors")),
        reserve_table=reserve_table,
        results_problem=problem,
        warnings=[str(w) for w in summary.get("warnings") or ()],
        charts=charts,
        results=[a for a in artefacts if a not in charts],
        approvals=list(
            run.approvals.select_related(
                "requested_by", "approver", "designated_approver"
            ).order_by("-requested_at")
        ),
        error=error,
        error_extra=[(k, v) for k, v in (error or {}).items() if k not in shown_error_keys],
        provenance=_provenance(run, request),
        replays=[_replay_view(record) for record in replays[:REPLAYS_SHOWN]],
        more_replays=len(replays) > REPLAYS_SHOWN,
    )


def _provenance(run: WorkflowRun, request) -> ProvenanceView | None:
    """Return the run's recorded provenance, readable (None until the runner recorded it)."""
    provenance = run.provenance if isinstance(run.provenance, dict) else {}
    if not provenance:
        return None
    recorded = [item for item in provenance.get("inputs") or () if isinstance(item, dict)]
    ids = []
    for item in recorded:
        try:
            ids.append(uuid.UUID(str(item.get("artefact_id"))))
        except ValueError:
            continue
    visible = scope_to_user(Artefact.all_objects.filter(pk__in=ids), request.user).only(
        "pk", "content_hash", "version", "is_deleted", "engagement_id"
    )
    artefacts = {str(artefact.pk): artefact for artefact in visible}
    inputs = []
    for item in recorded:
        artefact = artefacts.get(str(item.get("artefact_id")))
        inputs.append(
            {
                **item,
                "artefact": artefact,
                # The stored artefact still holds the recorded bytes (what a replay checks).
                "unchanged": artefact is not None
                and not artefact.is_deleted
                and artefact.content_hash == item.get("content_hash"),
            }
        )
    parameters = provenance.get("parameters") or {}
    environment = provenance.get("environment") or {}
    return ProvenanceView(
        recorded_at=str(provenance.get("recorded_at") or "")[:19].replace("T", " "),
        implementation=provenance.get("implementation") or "—",
        steps=[str(step) for step in provenance.get("steps") or ()],
        inputs=inputs,
        parameters_hash=parameters.get("sha256") or "",
        parameters=parameters.get("canonical") or "",
        environment=[
            ("App version", _plain(environment.get("app_version"))),
            ("Git commit", _plain(environment.get("git_commit"))),
            (
                "Python",
                f"{_plain(environment.get('python'))} "
                f"({_plain(environment.get('python_implementation'))})",
            ),
        ],
        libraries=[
            (name, _plain(version))
            for name, version in sorted((environment.get("libraries") or {}).items())
        ],
    )


def _replay_view(record: ReplayRecord) -> ReplayView:
    differences = (record.environment or {}).get("differences") or {}
    return ReplayView(
        record=record,
        outputs=[output for output in record.outputs or () if isinstance(output, dict)],
        differences=[
            (what, _plain(values.get("original")), _plain(values.get("replay")))
            for what, values in differences.items()
            if isinstance(values, dict)
        ],
    )


def _steps(run: WorkflowRun) -> list[StepState]:
    """Return the run's steps: those that ran (from its metrics) and those still to run."""
    metrics = run.metrics if isinstance(run.metrics, dict) else {}
    ran = [step for step in metrics.get("steps") or () if isinstance(step, dict)]
    implementation = implementation_for(run.workflow_type)
    planned = [step.label for step in implementation.steps] if implementation else []
    steps = []
    for number, step in enumerate(ran, start=1):
        state = "failed" if step.get("failed") else "done"
        steps.append(
            StepState(number, step.get("label") or step.get("name"), state, step.get("seconds"))
        )
    for number, label in enumerate(planned[len(ran) :], start=len(ran) + 1):
        steps.append(StepState(number, label, "todo"))
    return steps


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)} min {rest:.0f} s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)} h {int(minutes)} min"


def _running_for(run: WorkflowRun) -> str:
    if run.started_at is None or run.completed_at is not None:
        return ""
    return _seconds_text((timezone.now() - run.started_at).total_seconds())


def _input_rows(run: WorkflowRun, request) -> list[tuple[str, object]]:
    """Return the input parameters as (name, shown value); an artefact id links to it."""
    params = run.input_params if isinstance(run.input_params, dict) else {}
    artefact_ids = {}
    for name, value in params.items():
        if name.endswith("artefact") and value:
            try:
                artefact_ids[name] = uuid.UUID(str(value))
            except ValueError:
                continue
    artefacts = {}
    if artefact_ids:
        artefacts = {
            a.pk: a
            for a in scope_to_user(
                Artefact.all_objects.filter(pk__in=artefact_ids.values()), request.user
            )
        }
    rows = []
    for name, value in params.items():
        artefact = artefacts.get(artefact_ids.get(name))
        if artefact is not None:
            shown = format_html(
                '<a href="{}">{}</a>',
                reverse("admin:artefacts_artefact_change", args=(artefact.pk,)),
                f"{artefact.name} v{artefact.version} ({artefact.file_name})",
            )
        else:
            shown = _plain(value)
        rows.append((name, shown))
    return rows


def _summary_rows(summary: dict[str, Any]) -> list[tuple[str, object]]:
    """Return the summary's scalar entries and small nested ones, readable; tables aside."""
    tabled = {"totals", "development_factors", "warnings", "artefacts"}
    rows = []
    for name, value in summary.items():
        if name in tabled:
            continue
        if isinstance(value, dict):
            value = format_html_join(
                "", "<div><code>{}</code>: {}</div>", ((k, _plain(v)) for k, v in value.items())
            )
        else:
            value = _plain(value)
        rows.append((name, value))
    return rows


def _plain(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return (
            ", ".join(_plain(item) for item in value) if len(value) <= 30 else f"{len(value)} items"
        )
    if isinstance(value, float):
        return f"{value:,.6g}"
    return str(value)


def _amount(value) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:,.0f}"


def _ratio(value, decimals=4) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:.{decimals}f}"


def _percent(value) -> str:
    number = _number(value)
    return "—" if number is None else f"{number:.1%}"


def _number(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _totals(totals) -> dict[str, str] | None:
    if not isinstance(totals, dict):
        return None
    latest, ultimate = _number(totals.get("latest")), _number(totals.get("ultimate"))
    return {
        "latest": _amount(latest),
        "cdf": _ratio(ultimate / latest) if latest and ultimate is not None else "—",
        "ultimate": _amount(ultimate),
        "ibnr": _amount(totals.get("ibnr")),
        "mack_se": _amount(totals.get("mack_se")),
        "cv": _percent(totals.get("cv")),
    }


def _factors(factors) -> list[dict[str, str]]:
    if not isinstance(factors, list):
        return []
    return [
        {
            "period": str(f.get("period", "")),
            "ldf": _ratio(f.get("ldf")),
            "cdf": _ratio(f.get("cdf")),
        }
        for f in factors
        if isinstance(f, dict)
    ]


def _reserve_table(artefacts: list[Artefact], request) -> tuple[ReserveTable | None, str]:
    """Return the results by origin read from the run's results CSV, or why they cannot be."""
    candidates = [a for a in artefacts if a.mime_type == "text/csv"]
    for artefact in candidates:
        try:
            handle = artefact_open_for_download(
                artefact=artefact, actor=request.user, purpose=ACCESS_PREVIEW
            )
        except DomainError as error:
            return None, RESULTS_UNREADABLE.format(error=error.message)
        with handle:
            data = handle.read(RESERVE_CSV_MAX_BYTES)
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8", errors="replace"))))
        if not rows or tuple(rows[0])[: len(RESERVE_CSV_HEADER)] != RESERVE_CSV_HEADER:
            continue
        table, total = [], None
        for row in rows:
            shown = {
                "origin": row.get("origin", ""),
                "development_age": row.get("development_age", ""),
                "latest": _amount(row.get("latest")),
                "cdf": _ratio(row.get("cdf")),
                "ultimate": _amount(row.get("ultimate")),
                "ibnr": _amount(row.get("ibnr")),
                "mack_se": _amount(row.get("mack_se")),
                "cv": _percent(row.get("cv")),
            }
            if row.get("origin") == RESERVE_CSV_TOTAL:
                total = shown
            else:
                table.append(shown)
        return ReserveTable(rows=table, total=total, artefact=artefact), ""
    return None, NO_RESULTS_FILE if not candidates else ""
