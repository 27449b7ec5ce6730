"""Admin for workflow runs: create, edit, replay and move them through `workflows.services`.

The form offers only the types the back office runs (`workflows.registry`), and their
inputs as fields that make the run's input_params: the triangle (an uploaded triangle
of the run's engagement, never a run's output) and how to read it. Internal fields
(the agent's name, the step count, the raw JSON) are not on the form: the services
and the runner set them. Queue is offered only for the types the runner executes, and
Start never: the runner starts such a run, and a type without a runner is worked on
outside the back office and reported through the API. The change page (`run_page`)
shows the run as an actuary reads it, with a Replay button that re-runs it through
`workflow_run_replay` and says whether every output matched.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.text import slugify

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

from ..choices import WorkflowStatus, WorkflowType
from ..models import ReplayRecord, WorkflowRun
from ..registry import implementation_for, runnable_types
from ..reserving import AVERAGES, LAYOUTS, MEASURES
from ..reserving.triangles import MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM
from ..selectors import triangle_inputs
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
    workflow_run_update,
)
from ..working_papers import run_working_paper_xlsx
from .compare import (
    COMPARE_NOT_FOUND,
    compare_runs,
    comparison_problem,
    parse_run_ids,
)
from .filters import AgentNameListFilter
from .new_analysis import AnalysisViews, rerun_url, run_status
from .run_page import METHOD_LABELS, RESERVING_TYPES, run_details
from .selections import form_labels, words
from .working_paper import read_run_triangle

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
# The run fields on the form: the reserving inputs make input_params, the services and
# the runner set the rest (agent_name, step_count).
FORM_FIELDS = ("engagement", "workflow_type", "name", "description", "period")
CUMULATIVE_CHOICES = (("", "---------"), ("true", "cumulative"), ("false", "incremental"))

TRIANGLE_HELP = (
    "The triangle (CSV or Excel) to read: a triangle uploaded to this engagement as "
    "input data (upload one with the artefact type Triangle)."
)
TYPE_HELP = (
    "The analyses the back office runs. To compare methods or make selections, start "
    "from “New reserving analysis” on the engagement page."
)
TRIANGLE_REQUIRED = "Choose the triangle a {workflow_type} run reads."
TAIL_FACTOR_HELP = (
    "Reserve calculation and IBNR estimation: a factor of at least 1; empty: no tail."
)
AVERAGE_HELP = "Reserve calculation and IBNR estimation: how age-to-age factors are averaged."
NEGATIVE_HELP = "Accept decreases of cumulative values (e.g. salvage, RAA's 1982 at 72–84)."
NOT_A_TRIANGLE_WORKFLOW = (
    "A {workflow_type} run reads no triangle: leave the reserving fields empty."
)

NO_WORKING_PAPER = "This run has no working paper (only reserving runs with results do)."
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# Runs the back office can re-execute: they produced their results and recorded provenance.
REPLAYABLE_STATUSES = frozenset({WorkflowStatus.COMPLETED, WorkflowStatus.WAITING_APPROVAL})

REPLAY_MATCHED = (
    "Replay of workflow run “{run}”: matched — all {count} output(s) reproduced byte for byte."
)
REPLAY_MISMATCHED = "Replay of workflow run “{run}”: did not match — {problem}"
REPLAY_OUTPUTS_DIFFER = "{names} differ from the stored artefacts (see the replay below)."


def is_runnable(run: WorkflowRun) -> bool:
    """Return whether the runner executes runs of this type (only those are ever queued)."""
    return implementation_for(run.workflow_type) is not None


def can_queue(run: WorkflowRun) -> bool:
    """Return whether Queue is offered: a pending run of a type the runner executes."""
    return is_runnable(run) and "queue" in run.available_moves()


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
        fields = FORM_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "workflow_type" in self.fields:
            self._offer_runnable_types()
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

    def _offer_runnable_types(self) -> None:
        """Offer only the types the runner executes (and the run's own, if it is another)."""
        field = self.fields["workflow_type"]
        offered = set(runnable_types())
        if not self.instance._state.adding:
            offered.add(self.instance.workflow_type)
        field.choices = [("", "---------")] + [
            (value, label) for value, label in WorkflowType.choices if value in offered
        ]
        field.help_text = TYPE_HELP

    def clean(self):
        cleaned_data = super().clean()
        workflow_type = cleaned_data.get("workflow_type") or self.instance.workflow_type
        implementation = implementation_for(workflow_type)
        accepted = getattr(implementation, "accepted_params", ())
        triangle = cleaned_data.get("triangle_artefact")
        if "triangle_artefact" not in self.fields:
            return cleaned_data
        if "triangle_artefact" not in accepted:
            if triangle is not None:
                self.add_error(
                    "triangle_artefact",
                    NOT_A_TRIANGLE_WORKFLOW.format(workflow_type=_type_words(workflow_type)),
                )
            return cleaned_data
        if triangle is None:
            self.add_error(
                "triangle_artefact",
                TRIANGLE_REQUIRED.format(workflow_type=_type_words(workflow_type)),
            )
            return cleaned_data
        cleaned_data["input_params"] = self._reserving_params(cleaned_data, accepted)
        self._check_params(cleaned_data, workflow_type)
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

    def _check_params(self, data, workflow_type) -> None:
        """Report bad inputs next to the triangle, in the words the services would use."""
        engagement = data.get("engagement") or getattr(self.instance, "engagement", None)
        if engagement is None:
            return
        implementation = implementation_for(workflow_type)
        try:
            data["input_params"] = implementation.validate_params(data["input_params"], engagement)
        except InvalidInput as error:
            # The parameter named as this form labels its field ("Tail factor must be …").
            message = words(error.message, form_labels(self))
            message = message.replace(MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM)
            self.add_error("triangle_artefact", message)


def _type_words(workflow_type: str) -> str:
    """Return a workflow type as a sentence names it ("reserve calculation")."""
    try:
        return WorkflowType(workflow_type).label.lower()
    except ValueError:
        return str(workflow_type)


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
    # The reserving headline (method, ultimate, IBNR) early, so it shows without scrolling.
    list_display = (
        "name",
        "engagement",
        "workflow_type",
        "status",
        "result_method",
        "result_ultimate",
        "result_ibnr",
        "progress",
        "completed_at",
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
    actions = ("compare_selected",)
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
        "error_message",
    )

    service_object_argument = "run"
    service_moves = (
        AdminMove("queue", "Queue", workflow_run_queue, available=can_queue),
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

    # The reserving headline, read from the output summary each listed run already holds.
    @admin.display(description="method")
    def result_method(self, obj):
        headline = obj.result_headline
        if headline is None or not headline["method"]:
            return "—"
        return METHOD_LABELS.get(headline["method"], headline["method"])

    @admin.display(description="ultimate")
    def result_ultimate(self, obj):
        headline = obj.result_headline
        return "—" if headline is None else f"{headline['ultimate']:,.0f}"

    @admin.display(description="IBNR")
    def result_ibnr(self, obj):
        headline = obj.result_headline
        return "—" if headline is None else f"{headline['ibnr']:,.0f}"

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "compare/",
                self.admin_site.admin_view(self.compare_view),
                name="{}_{}_compare".format(*info),
            ),
            path(
                "<path:object_id>/working-paper/",
                self.admin_site.admin_view(self.working_paper_view),
                name="{}_{}_working_paper".format(*info),
            ),
            # The guided analysis, re-runs and the live status (`new_analysis`).
            *AnalysisViews(self).urls(),
            *super().get_urls(),
        ]

    @admin.action(description="Compare the two selected runs")
    def compare_selected(self, request, queryset):
        runs = list(queryset.select_related("engagement")[:3])
        problem = comparison_problem(runs)
        if problem:
            self.message_user(request, problem, messages.ERROR)
            return None
        first, second = runs
        return redirect(compare_url(first, second))

    def compare_view(self, request):
        """Show two runs of an engagement side by side (?run=<id>&run=<id>)."""
        ids = parse_run_ids(request.GET.getlist("run"))
        runs = list(
            self.get_queryset(request)
            .filter(pk__in=ids)
            .select_related("engagement", "created_by", "queued_by")
        )
        if len(set(ids)) != 2 or len(runs) != 2 or not self.has_view_permission(request):
            raise Http404(COMPARE_NOT_FOUND)
        problem = comparison_problem(runs)
        if problem:
            messages.error(request, problem)
            return redirect(reverse("admin:workflows_workflowrun_changelist"))
        comparison = compare_runs(runs)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Compare “{comparison.first}” with “{comparison.second}”",
            "comparison": comparison,
        }
        return TemplateResponse(request, "admin/workflows/workflowrun/compare.html", context)

    def working_paper_view(self, request, object_id):
        """Download the run's Excel working paper, written now with the run's current status."""
        run = self.get_object(request, unquote(object_id))
        if run is None or not self.has_view_permission(request, run):
            raise Http404(NO_WORKING_PAPER)
        summary = run.output_summary if isinstance(run.output_summary, dict) else {}
        if run.workflow_type not in RESERVING_TYPES or not summary.get("development_factors"):
            raise Http404(NO_WORKING_PAPER)
        triangle, problem = read_run_triangle(run, summary, request)
        if triangle is None:
            messages.error(request, problem)
            return redirect(reverse("admin:workflows_workflowrun_change", args=(run.pk,)))
        response = HttpResponse(run_working_paper_xlsx(run, triangle), content_type=XLSX_TYPE)
        name = slugify(run.name)[:80] or "run"
        response["Content-Disposition"] = f'attachment; filename="working_paper_{name}.xlsx"'
        return response

    def get_fieldsets(self, request, obj=None):
        editable = obj is None or obj.status in EDITABLE_STATUSES
        run = (
            "engagement",
            "workflow_type",
            "name",
            "description",
            "period",
            "status",
        )
        fieldsets = [(None, {"fields": run})]
        if editable and (obj is None or is_runnable(obj)):
            fieldsets.append(
                (
                    "Reserving inputs",
                    {
                        "fields": RESERVING_FIELDS,
                        "description": "The triangle the run reads and how to read it.",
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
        if obj.status not in EDITABLE_STATUSES or not is_runnable(obj):
            # A type without a runner is defined by whoever works on it (the API).
            extra += [name for name in FORM_FIELDS if name in EDITABLE_FIELDS]
        return (*readonly, *(f for f in extra if f not in readonly))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None and (obj.status not in EDITABLE_STATUSES or not is_runnable(obj)):
            # Nothing to edit: the reserving fields (declared, so always there) go too.
            fixed = type(form.__name__, (form,), {})
            fixed.base_fields = {
                name: field
                for name, field in form.base_fields.items()
                if name not in RESERVING_FIELDS
            }
            return fixed
        engagement_id = obj.engagement_id if obj is not None else _engagement_id_of(request)
        choices = triangle_inputs(engagement_id, request.user)
        return type(form.__name__, (form,), {"triangle_choices": choices})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            context["run_details"] = run_details(obj, request)
            context["run_status"] = run_status(obj)
            context["rerun_url"] = rerun_url(obj, request.user)
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
            # Made from the reserving fields: saved when they change the parameters.
            if params is not None and params != obj.input_params:
                data["input_params"] = params
            if not data:
                return
            saved = workflow_run_update(run=obj, actor=request.user, data=data)
        adopt(obj, saved)


def compare_url(first: WorkflowRun, second: WorkflowRun) -> str:
    """Return the address of the page comparing two runs."""
    return f"{reverse('admin:workflows_workflowrun_compare')}?run={first.pk}&run={second.pk}"


def _engagement_id_of(request) -> uuid.UUID | None:
    """Return the engagement the add form is for (chosen, or given in the link), if any."""
    value = request.POST.get("engagement") or request.GET.get("engagement")
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
