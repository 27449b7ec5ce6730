"""The guided "New reserving analysis", "Re-run with changes", and a run's live status.

From the engagement page, four steps, each a page of the admin site (URLs added by
`WorkflowRunAdmin.get_urls`):

1. the triangle: upload a file (an input-data triangle artefact, through
   `artefacts.services.artefact_create`) or pick one of the engagement's triangles;
2. its columns: origin, development and value by the file's own headers (or the wide
   layout), cumulative or incremental, paid or incurred; htmx shows the triangle as
   read, or every problem named by its row and column, on each change;
3. the method and the selections (`selections`), with the link-ratio panel;
4. Run: one button creates and queues the run (`workflow_run_submit`) and lands on its
   page, whose status refreshes itself (`run_status_view`, polled by htmx) until the
   run has finished.

"Re-run with changes" opens step 3 pre-filled from a run's input_params and queues a
new run linked to it (`workflow_run_rerun`). Only working members of the engagement's
team (and superusers) with the permission to add runs see these pages; anyone else
gets a 404, as for an engagement they cannot see. Every write goes through the
services, so it is checked and audited like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from artefacts.services import artefact_create
from engagements.choices import CLOSED_STATUSES
from engagements.models import Engagement
from engagements.selectors import WORKING_ROLES, engagement_role_of, engagements_visible_to
from records.exceptions import DomainError

from ..choices import WorkflowStatus, WorkflowType
from ..implementations.reserving_inputs import RESERVE_PARAMS, artefact_bytes
from ..models import WorkflowRun
from ..reserving import TriangleError
from ..reserving.triangles import MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM
from ..reserving.triangles.read import file_headers
from ..selectors import triangle_inputs, worker_warning
from ..services import workflow_run_rerun, workflow_run_submit
from .analysis_forms import ColumnsForm, TriangleUploadForm, columns_query, read_preview
from .selections import (
    UPLOAD_PLACEHOLDER,
    SelectionsForm,
    form_labels,
    initial_from_params,
    selection_panel,
    words,
)

ADD_PERMISSION = "workflows.add_workflowrun"
# How the services frame a refusal of input_params (`workflows.registry.INVALID_PARAMS`).
INVALID_PARAMS_PREFIX = re.compile(r"^Invalid input_params \([a-z_0-9]+\): ")
TEMPLATES = "admin/workflows/new_analysis/"
# The statuses in which a run's page keeps asking for its status.
LIVE_STATUSES = frozenset({WorkflowStatus.PENDING, WorkflowStatus.QUEUED, WorkflowStatus.RUNNING})
POLL_SECONDS = 2
# The bootstrap's seed offered until one is chosen (any fixed seed makes it reproducible).
DEFAULT_SEED = 2024
STEPS = ("Triangle", "Columns", "Method and selections", "Run")

NOT_READABLE = "The triangle cannot be read with these columns: fix them first."
TRIANGLE_UPLOADED = "Triangle “{artefact}” uploaded. Now say what its columns hold."
RUN_QUEUED = "Run “{run}” is queued: this page follows it until it has finished."
NOT_RESERVING = "Only reserve calculations and IBNR estimations are re-run with changes."
STATUS_TEXT = {
    WorkflowStatus.PENDING: "Pending: not queued yet",
    WorkflowStatus.QUEUED: "Queued: waiting for a worker to start it",
    WorkflowStatus.RUNNING: "Running: step {step} of {count}",
}


# --- who may --------------------------------------------------------------------------------


def engagement_for_analysis(request, engagement_id) -> Engagement:
    """Return the engagement if the user may start analyses in it; raise Http404 otherwise."""
    user = request.user
    engagement = engagements_visible_to(user).filter(pk=engagement_id).first()
    if engagement is None or not may_analyse(user, engagement):
        raise Http404("No such engagement.")
    return engagement


def may_analyse(user, engagement: Engagement) -> bool:
    """Return whether `user` may start runs in `engagement` (and it still accepts them)."""
    if not user.has_perm(ADD_PERMISSION) or engagement.status in CLOSED_STATUSES:
        return False
    if user.is_superuser:
        return True
    return engagement_role_of(engagement=engagement, user=user) in WORKING_ROLES


def triangle_of(engagement: Engagement, artefact_id) -> Artefact:
    """Return the engagement's uploaded triangle `artefact_id`; raise Http404 otherwise."""
    artefact = triangle_inputs(engagement.pk, None).filter(pk=artefact_id).first()
    if artefact is None:
        raise Http404("No such triangle in this engagement.")
    return artefact


# --- the views ------------------------------------------------------------------------------


class AnalysisViews:
    """The guided path's views, bound to the run admin (its site, its scoping)."""

    def __init__(self, model_admin):
        self.model_admin = model_admin
        self.site = model_admin.admin_site

    def urls(self) -> list:
        wrap = self.site.admin_view
        step = "analysis/<uuid:engagement_id>/"
        triangle = step + "<uuid:artefact_id>/"
        return [
            path(step, wrap(self.start), name="workflows_analysis_start"),
            path(triangle + "columns/", wrap(self.columns), name="workflows_analysis_columns"),
            path(
                triangle + "columns/preview/",
                wrap(self.columns_preview),
                name="workflows_analysis_preview",
            ),
            path(triangle + "method/", wrap(self.method), name="workflows_analysis_method"),
            path(
                triangle + "method/panel/",
                wrap(self.method_panel),
                name="workflows_analysis_panel",
            ),
            path("<path:object_id>/rerun/", wrap(self.rerun), name="workflows_workflowrun_rerun"),
            path(
                "<path:object_id>/rerun/panel/",
                wrap(self.rerun_panel),
                name="workflows_workflowrun_rerun_panel",
            ),
            path(
                "<path:object_id>/status/",
                wrap(self.status),
                name="workflows_workflowrun_status",
            ),
        ]

    def render(self, request, template: str, context: dict) -> TemplateResponse:
        request.current_app = self.site.name
        opts = self.model_admin.opts
        return TemplateResponse(
            request,
            TEMPLATES + template,
            {**self.site.each_context(request), "opts": opts, "steps": STEPS, **context},
        )

    # Step 1 ---------------------------------------------------------------------------

    def start(self, request, engagement_id):
        engagement = engagement_for_analysis(request, engagement_id)
        posted = request.method == "POST"
        form = TriangleUploadForm(
            request.POST if posted else None, request.FILES if posted else None
        )
        if request.method == "POST" and form.is_valid():
            upload: UploadedFile = form.cleaned_data["file"]
            try:
                artefact = artefact_create(
                    engagement=engagement,
                    upload=upload,
                    actor=request.user,
                    name=form.cleaned_data["name"] or upload.name,
                    artefact_type=ArtefactType.TRIANGLE,
                    description="Uploaded for a new reserving analysis.",
                )
            except DomainError as error:
                form.add_error("file", error.message)
            else:
                messages.success(request, TRIANGLE_UPLOADED.format(artefact=artefact.name))
                return HttpResponseRedirect(
                    reverse("admin:workflows_analysis_columns", args=(engagement.pk, artefact.pk))
                )
        return self.render(
            request,
            "triangle.html",
            {
                "title": "New reserving analysis: the triangle",
                "engagement": engagement,
                "step": 1,
                "form": form,
                "triangles": triangle_inputs(engagement.pk, None),
            },
        )

    # Step 2 ---------------------------------------------------------------------------

    def _columns_form(self, request, artefact: Artefact, data: bytes):
        """Return the columns form for the file (bound to the query, or guessed), or None."""
        try:
            headers = file_headers(data, artefact.file_name)
        except TriangleError as error:  # the file cannot be read at all
            return None, str(error)
        if any(name in request.GET for name in ("layout", "origin")):
            return ColumnsForm(request.GET, headers=headers.names), ""
        # Recognised long columns, else a wide header of ages, else columns to map.
        wide = headers.long_columns is None and headers.wide
        initial = {"layout": "wide" if wide else "long"}
        initial.update(headers.long_columns or {})
        return ColumnsForm(headers=headers.names, initial=initial), ""

    def columns(self, request, engagement_id, artefact_id):
        engagement = engagement_for_analysis(request, engagement_id)
        artefact = triangle_of(engagement, artefact_id)
        data = self._bytes(artefact)
        form, unreadable = self._columns_form(request, artefact, data)
        preview = None
        if form is not None:
            preview = self._preview(form, artefact, data)
        return self.render(
            request,
            "columns.html",
            {
                "title": f"New reserving analysis: the columns of “{artefact.name}”",
                "engagement": engagement,
                "artefact": artefact,
                "step": 2,
                "form": form,
                "unreadable": unreadable,
                "preview": preview,
                "preview_url": reverse(
                    "admin:workflows_analysis_preview", args=(engagement.pk, artefact.pk)
                ),
                "method_url": reverse(
                    "admin:workflows_analysis_method", args=(engagement.pk, artefact.pk)
                ),
            },
        )

    def columns_preview(self, request, engagement_id, artefact_id):
        engagement = engagement_for_analysis(request, engagement_id)
        artefact = triangle_of(engagement, artefact_id)
        data = self._bytes(artefact)
        form, unreadable = self._columns_form(request, artefact, data)
        preview = self._preview(form, artefact, data) if form is not None else None
        return self.render(
            request,
            "preview.html",
            {"preview": preview, "form": form, "unreadable": unreadable},
        )

    def _preview(self, form: ColumnsForm, artefact: Artefact, data: bytes):
        if not form.is_bound:
            form = ColumnsForm(
                {**{name: field.initial for name, field in form.fields.items()}, **form.initial},
                headers=tuple(value for value, _ in form.fields["origin"].choices if value),
            )
        if not form.is_valid():
            return None
        return read_preview(data, artefact, form.triangle_params())

    def _bytes(self, artefact: Artefact) -> bytes:
        try:
            return artefact_bytes(artefact)
        except DomainError as error:
            raise Http404(error.message) from None

    # Step 3 and 4 ---------------------------------------------------------------------

    def _read_for_method(self, request, engagement, artefact_id, source):
        """Return (artefact, triangle params, preview) from the columns in `source`."""
        artefact = triangle_of(engagement, artefact_id)
        data = self._bytes(artefact)
        try:
            headers = file_headers(data, artefact.file_name)
        except TriangleError:  # the columns page says why
            return artefact, None, None
        columns = ColumnsForm(source, headers=headers.names)
        if not columns.is_valid():
            return artefact, None, None
        params = columns.triangle_params()
        preview = read_preview(data, artefact, params)
        return artefact, params, preview

    def method(self, request, engagement_id, artefact_id):
        engagement = engagement_for_analysis(request, engagement_id)
        source = request.POST if request.method == "POST" else request.GET
        artefact, params, preview = self._read_for_method(request, engagement, artefact_id, source)
        columns_url = reverse("admin:workflows_analysis_columns", args=(engagement.pk, artefact.pk))
        if params is None or preview.triangle is None:
            messages.error(request, NOT_READABLE)
            query = urlencode({k: v for k, v in source.items() if k != "csrfmiddlewaretoken"})
            return HttpResponseRedirect(f"{columns_url}?{query}")
        form = SelectionsForm(
            request.POST or None,
            request.FILES or None,
            triangle=preview.triangle,
            engagement_id=engagement.pk,
            initial={"name": f"{artefact.name}: reserves", "random_seed": DEFAULT_SEED},
        )
        if request.method == "POST" and form.is_valid():
            run = self._submit(request, form, engagement, artefact, params)
            if run is not None:
                messages.success(request, RUN_QUEUED.format(run=run))
                return HttpResponseRedirect(run.get_absolute_url())
        return self._render_method(
            request,
            form,
            engagement=engagement,
            artefact=artefact,
            params=params,
            preview=preview,
            panel_url=reverse("admin:workflows_analysis_panel", args=(engagement.pk, artefact.pk)),
            back_url=f"{columns_url}?{urlencode(columns_query(params))}",
        )

    def method_panel(self, request, engagement_id, artefact_id):
        engagement = engagement_for_analysis(request, engagement_id)
        _artefact, params, preview = self._read_for_method(
            request, engagement, artefact_id, request.POST
        )
        if params is None or preview.triangle is None:
            return HttpResponse(NOT_READABLE)
        form = SelectionsForm(request.POST, triangle=preview.triangle, engagement_id=engagement.pk)
        form.is_valid()
        return self._render_panel(request, form)

    def _render_panel(self, request, form):
        context = {
            "form": form,
            "panel": selection_panel(form),
            "period_fields": _period_fields(form),
        }
        return self.render(request, "panel.html", context)

    def _render_method(self, request, form, **context):
        return self.render(
            request,
            "method.html",
            {
                "title": "New reserving analysis: method and selections",
                "step": 3,
                "form": form,
                "panel": selection_panel(form),
                "hidden_columns": columns_query(context["params"]),
                "period_fields": _period_fields(form),
                **context,
            },
        )

    def _submit(self, request, form, engagement, artefact, triangle_params):
        """Create and queue the run (uploading its exposure first); None when refused."""
        params = {"triangle_artefact": str(artefact.pk), **triangle_params, **form.params}
        try:
            with transaction.atomic():
                self._upload_exposure(request, form, engagement, params)
                return workflow_run_submit(
                    engagement=engagement,
                    workflow_type=WorkflowType.RESERVE_CALCULATION,
                    name=form.cleaned_data["name"],
                    period=form.cleaned_data.get("period") or "",
                    input_params=params,
                    actor=request.user,
                )
        except DomainError as error:
            form.add_error(None, _form_words(error.message, form))
            return None

    def _upload_exposure(self, request, form, engagement, params) -> None:
        if params.get("exposure_artefact") != UPLOAD_PLACEHOLDER:
            return
        upload = form.cleaned_data["exposure_file"]
        exposure = artefact_create(
            engagement=engagement,
            upload=upload,
            actor=request.user,
            name=upload.name,
            artefact_type=ArtefactType.DATA_FILE,
            description="Exposure uploaded for a reserving analysis.",
        )
        params["exposure_artefact"] = str(exposure.pk)

    # Re-run with changes --------------------------------------------------------------

    def _run_for_rerun(self, request, object_id) -> WorkflowRun:
        run = self.model_admin.get_object(request, unquote(object_id))
        if run is None or not may_analyse(request.user, run.engagement):
            raise Http404("No such workflow run.")
        if run.workflow_type not in (
            WorkflowType.RESERVE_CALCULATION,
            WorkflowType.IBNR_ESTIMATION,
        ) or not (run.input_params or {}).get("triangle_artefact"):
            raise Http404(NOT_RESERVING)
        return run

    def _rerun_triangle(self, run: WorkflowRun):
        params = run.input_params
        artefact = Artefact.objects.filter(
            pk=params["triangle_artefact"], engagement_id=run.engagement_id
        ).first()
        if artefact is None:
            raise Http404("The run's triangle no longer exists.")
        triangle_params = {
            name: params.get(name)
            for name in ("layout", "cumulative", "measure", "allow_negative_development")
        }
        if params.get("columns"):
            triangle_params["columns"] = params["columns"]
        preview = read_preview(self._bytes(artefact), artefact, triangle_params)
        if preview.triangle is None:
            raise Http404("The run's triangle can no longer be read.")
        return artefact, triangle_params, preview

    def rerun(self, request, object_id):
        run = self._run_for_rerun(request, object_id)
        artefact, triangle_params, preview = self._rerun_triangle(run)
        initial = {
            **initial_from_params(run.input_params, preview.triangle),
            "name": f"{run.name} (re-run)"[:255],
            "period": run.period,
        }
        initial.setdefault("random_seed", DEFAULT_SEED)
        form = SelectionsForm(
            request.POST or None,
            request.FILES or None,
            triangle=preview.triangle,
            engagement_id=run.engagement_id,
            initial=initial,
        )
        if request.method == "POST" and form.is_valid():
            new_run = self._submit_rerun(request, form, run, triangle_params)
            if new_run is not None:
                messages.success(request, RUN_QUEUED.format(run=new_run))
                return HttpResponseRedirect(new_run.get_absolute_url())
        return self.render(
            request,
            "method.html",
            {
                "title": f"Re-run “{run}” with changes",
                "rerun_of": run,
                "engagement": run.engagement,
                "artefact": artefact,
                "form": form,
                "panel": selection_panel(form),
                "period_fields": _period_fields(form),
                "preview": preview,
                "panel_url": reverse("admin:workflows_workflowrun_rerun_panel", args=(run.pk,)),
            },
        )

    def rerun_panel(self, request, object_id):
        run = self._run_for_rerun(request, object_id)
        _artefact, _params, preview = self._rerun_triangle(run)
        form = SelectionsForm(
            request.POST, triangle=preview.triangle, engagement_id=run.engagement_id
        )
        form.is_valid()
        return self._render_panel(request, form)

    def _submit_rerun(self, request, form, run, triangle_params):
        params = {"triangle_artefact": run.input_params["triangle_artefact"], **triangle_params}
        params.update(form.params)
        kept = {
            name: run.input_params[name] for name in ("prior_run",) if run.input_params.get(name)
        }
        params.update(kept)
        params = {name: value for name, value in params.items() if name in RESERVE_PARAMS}
        try:
            with transaction.atomic():
                self._upload_exposure(request, form, run.engagement, params)
                return workflow_run_rerun(
                    run=run, actor=request.user, input_params=params, name=form.cleaned_data["name"]
                )
        except DomainError as error:
            form.add_error(None, _form_words(error.message, form))
            return None

    # The run's status -----------------------------------------------------------------

    def status(self, request, object_id):
        run = self.model_admin.get_object(request, unquote(object_id))
        if run is None:
            raise Http404("No such workflow run.")
        response = self.render(request, "run_status.html", {"run_status": run_status(run)})
        if run.status not in LIVE_STATUSES and request.htmx:
            # Finished (or waiting for sign-off): reload the page to show the results.
            response["HX-Refresh"] = "true"
        return response


@dataclass(frozen=True)
class RunStatus:
    """What the run page's live status says, and where it asks again."""

    live: bool
    text: str
    url: str
    seconds: int = POLL_SECONDS
    warning: str = ""  # a queued run with no worker alive to pick it up


def run_status(run: WorkflowRun) -> RunStatus:
    """Return the live status of `run` (live while it is pending, queued or running)."""
    text = STATUS_TEXT.get(run.status, run.get_status_display())
    return RunStatus(
        live=run.status in LIVE_STATUSES,
        text=text.format(step=run.current_step, count=run.step_count),
        url=reverse("admin:workflows_workflowrun_status", args=(run.pk,)),
        warning=worker_warning() if run.status == WorkflowStatus.QUEUED else "",
    )


def rerun_url(run: WorkflowRun, user) -> str:
    """Return the "Re-run with changes" link of a finished reserving run, or ""."""
    if (
        run.workflow_type not in (WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION)
        or run.status in LIVE_STATUSES
        or not (run.input_params or {}).get("triangle_artefact")
        or not user.has_perm(ADD_PERMISSION)
    ):
        return ""
    return reverse("admin:workflows_workflowrun_rerun", args=(run.pk,))


def _period_fields(form: SelectionsForm) -> list[tuple[Any, Any, Any]]:
    return [
        (form[f"average_{i}"], form[f"factor_{i}"], form[f"reason_{i}"])
        for i in range(len(form.starts))
    ]


def _form_words(message: str, form=None) -> str:
    """Return a service refusal without the API's framing, in the form's words (the
    parameter it names by the label of the form's field for it)."""
    labels = form_labels(form) if form is not None else None
    message = words(INVALID_PARAMS_PREFIX.sub("", message), labels)
    message = message.replace(MSG_NEGATIVE_HINT, MSG_NEGATIVE_HINT_FORM)
    return message[:1].upper() + message[1:]
