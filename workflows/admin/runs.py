"""Admin for workflow runs: create, edit, replay and move them through `workflows.services`.

The reserving inputs have their own form fields; other types take input_params as
JSON. The change page (`run_page`) shows the run as an actuary reads it, with a
Replay button that re-runs it through `workflow_run_replay` and says whether every
output matched.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages

from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from engagements.selectors import scope_to_user
from records.admin import (
    AdminMove,
    EngagementListFilter,
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
)
from records.exceptions import InvalidInput

from ..choices import WorkflowStatus
from ..models import ReplayRecord, WorkflowRun
from ..registry import implementation_for, runnable_types, validate_input_params
from ..reserving import AVERAGES, LAYOUTS, MEASURES
from ..services import (
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
from .filters import AgentNameListFilter
from .run_page import run_details

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

# Runs the back office can re-execute: they produced their results and recorded provenance.
REPLAYABLE_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL})

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
    # Bounded filters and a date filter instead of a date hierarchy: none of them scans
    # every run to build its choices (issue 18).
    list_filter = (
        "status",
        "workflow_type",
        EngagementListFilter,
        AgentNameListFilter,
        "created_at",
    )
    show_full_result_count = False
    search_fields = ("name", "description", "period", "engagement__name", "engagement__client_code")
    list_select_related = ("engagement",)
    autocomplete_fields = ("engagement",)
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
