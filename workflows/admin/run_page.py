"""What a run's change page shows below its fields, read from the run as an actuary reads it.

A progress bar with its steps, duration (and, apart, the compute time and the wait for
approval) and people; the input parameters and results as tables (for reserving runs,
the method's results by origin with totals, read from the run's results CSV, and the
development factors); for reserving runs the working paper (`working_paper`) and the
engagement's other runs to compare with (`compare`); its charts and result artefacts;
what it ran with (ASOP 56) and its replays.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from artefacts.models import Artefact
from artefacts.services import ACCESS_PREVIEW, artefact_open_for_download
from engagements.selectors import scope_to_user
from records.exceptions import DomainError
from records.formatting import field_label, format_datetime, humanize_code

from ..choices import WorkflowStatus, WorkflowType
from ..models import ReplayRecord, WorkflowRun
from ..registry import implementation_for
from ..working_papers import APPROVED, WORKFLOW_APPROVAL
from .run_values import METHOD_LABELS
from .run_values import shown as _shown
from .selections import param_label
from .working_paper import WorkingPaperView, working_paper_for

# The header of the reserving results CSV (workflows.reserving.outputs.RESERVE_COLUMNS).
RESERVE_CSV_HEADER = ("origin", "development_age", "latest", "cdf", "ultimate", "ibnr")
RESERVE_CSV_TOTAL = "Total"
# The columns some methods add to the results CSV, and their headings on the page.
EXTRA_RESERVE_COLUMNS = {
    "exposure": "Exposure",
    "apriori_loss_ratio": "A-priori loss ratio",
    "expected_ultimate": "Expected ultimate",
    "ibnr_mean": "Simulated IBNR mean",
    "ibnr_std": "Simulated IBNR std. dev.",
}
RESERVE_CSV_MAX_BYTES = 1024 * 1024
RESERVING_TYPES = frozenset(
    {WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION, WorkflowType.TRIANGLE_ANALYSIS}
)

RESULTS_UNREADABLE = "The results file cannot be shown: {error}"
NO_RESULTS_FILE = "No results file (CSV) is stored for this run."

# How many replay records the run page lists (the latest; the count says how many exist).
REPLAYS_SHOWN = 20


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
    # The method's own columns after the chain ladder's (exposure-based, bootstrap).
    extra_headings: list[str] = field(default_factory=list)


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
    # The run's approvals, read through the reverse relation of approvals.Approval.
    approvals: list[models.Model]
    error: dict[str, Any] | None
    error_extra: list[tuple[str, object]] = field(default_factory=list)
    provenance: ProvenanceView | None = None
    replays: list[ReplayView] = field(default_factory=list)
    more_replays: bool = False
    # Reserving runs: the working paper (triangle to reserves), or why it is not shown.
    working_paper: WorkingPaperView | None = None
    working_paper_problem: str = ""
    # The steps' own time, apart from the time the run waited for its approval.
    compute_time: str = ""
    approval_wait: str = ""
    # The engagement's other reserving runs with results, to compare this one with.
    compare_with: list[WorkflowRun] = field(default_factory=list)

    @property
    def method_label(self) -> str:
        """Return the reserving method's name (e.g. Chain ladder with Mack), or ''."""
        summary = self.run.output_summary if isinstance(self.run.output_summary, dict) else {}
        method = summary.get("method")
        if method == "chain_ladder":
            return "Chain ladder with Mack standard errors"
        return METHOD_LABELS.get(method, str(method or "Reserves"))

    @property
    def run_approved(self) -> bool:
        """Return whether the run's workflow approval was given (its working paper: APPROVED)."""
        return any(
            a.approval_type == WORKFLOW_APPROVAL and a.status == APPROVED for a in self.approvals
        )


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
    paper, paper_problem = None, ""
    if run.workflow_type in RESERVING_TYPES and summary.get("totals"):
        reserve_table, problem = _reserve_table(artefacts, request)
        if summary.get("development_factors") and summary.get("origins"):
            paper, paper_problem = working_paper_for(run, summary, request)
    approvals = list(
        run.approvals.select_related("requested_by", "approver", "designated_approver").order_by(
            "-requested_at"
        )
    )
    error = run.error_details if isinstance(run.error_details, dict) else None
    shown_error_keys = {"step", "step_label", "step_number", "step_count", "message"}
    shown_error_keys |= {"exception_type", "traceback"}
    return RunDetails(
        run=run,
        steps=_steps(run),
        duration=_seconds_text(run.duration_seconds),
        running_for=_running_for(run),
        input_rows=_input_rows(run, request),
        summary_rows=_summary_rows(summary, by_origin_shown=reserve_table is not None),
        totals=_totals(summary.get("totals")),
        factors=_factors(summary.get("development_factors")),
        reserve_table=reserve_table,
        results_problem=problem,
        warnings=[str(w) for w in summary.get("warnings") or ()],
        charts=charts,
        results=[a for a in artefacts if a not in charts],
        approvals=approvals,
        error=error,
        error_extra=[
            (field_label(k), _shown(v, k))
            for k, v in (error or {}).items()
            if k not in shown_error_keys
        ],
        provenance=_provenance(run, request),
        replays=[_replay_view(record) for record in replays[:REPLAYS_SHOWN]],
        more_replays=len(replays) > REPLAYS_SHOWN,
        working_paper=paper,
        working_paper_problem=paper_problem,
        compare_with=_compare_with(run) if paper is not None else [],
        compute_time=_compute_time(run),
        approval_wait=_approval_wait(run, approvals),
    )


# How many of the engagement's other runs the "Compare with" list offers (the latest).
COMPARE_CHOICES = 50


def _compare_with(run: WorkflowRun) -> list[WorkflowRun]:
    """Return the engagement's other reserving runs with results, the latest first."""
    return list(
        WorkflowRun.objects.filter(
            engagement_id=run.engagement_id,
            workflow_type__in=RESERVING_TYPES,
            output_summary__has_key="development_factors",
        )
        .exclude(pk=run.pk)
        .only("pk", "name", "created_at")
        .order_by("-created_at")[:COMPARE_CHOICES]
    )


def _compute_time(run: WorkflowRun) -> str:
    """Return the time the run's steps took (their sum), whatever it waited for after."""
    metrics = run.metrics if isinstance(run.metrics, dict) else {}
    seconds = [
        step.get("seconds")
        for step in metrics.get("steps") or ()
        if isinstance(step, dict) and isinstance(step.get("seconds"), int | float)
    ]
    return _seconds_text(sum(seconds)) if seconds else ""


def _approval_wait(run: WorkflowRun, approvals: list[models.Model]) -> str:
    """Return how long the run waited (or has waited so far) for its workflow approval."""
    waits = [a for a in approvals if a.approval_type == WORKFLOW_APPROVAL]
    if not waits:
        return ""
    approval = waits[0]
    end = approval.reviewed_at or (
        timezone.now() if run.status == WorkflowStatus.WAITING_APPROVAL else None
    )
    if end is None:
        return ""
    text = _seconds_text(max((end - approval.requested_at).total_seconds(), 0.0))
    return text if approval.reviewed_at else f"{text} so far"


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
                "label": param_label(item.get("param") or ""),
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
        recorded_at=format_datetime(provenance.get("recorded_at"), empty=""),
        implementation=provenance.get("implementation") or "—",
        steps=[_step_label(run, step) for step in provenance.get("steps") or ()],
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
    # A run waiting for approval is not running: its compute time and wait are shown apart.
    waiting = run.status == WorkflowStatus.WAITING_APPROVAL
    if run.started_at is None or run.completed_at is not None or waiting:
        return ""
    return _seconds_text((timezone.now() - run.started_at).total_seconds())


def _input_rows(run: WorkflowRun, request) -> list[tuple[str, object]]:
    """Return the input parameters as (label, shown value); an artefact id links to it."""
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
            shown = _shown(value, name)
        rows.append((param_label(name), shown))
    return rows


def _summary_rows(
    summary: dict[str, Any], by_origin_shown: bool = False
) -> list[tuple[str, object]]:
    """Return the summary's entries as (label, readable value); what is tabled elsewhere aside."""
    tabled = {"totals", "development_factors", "warnings", "artefacts"}
    if by_origin_shown:
        # The reserve table shows the figures by origin, read from the results CSV.
        tabled.add("origins")
    return [
        (field_label(name), _shown(value, name))
        for name, value in summary.items()
        if name not in tabled and value is not None
    ]


def _step_label(run: WorkflowRun, name: str) -> str:
    """Return a step's label as the progress shows it (its recorded name as words if gone)."""
    implementation = implementation_for(run.workflow_type)
    for step in getattr(implementation, "steps", ()) if implementation else ():
        if step.name == name:
            return step.label
    return humanize_code(name)


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
        extra = [column for column in EXTRA_RESERVE_COLUMNS if column in rows[0]]
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
                "extra": [
                    _percent(row.get(column))
                    if column == "apriori_loss_ratio"
                    else _amount(row.get(column))
                    for column in extra
                ],
            }
            if row.get("origin") == RESERVE_CSV_TOTAL:
                total = shown
            else:
                table.append(shown)
        headings = [EXTRA_RESERVE_COLUMNS[column] for column in extra]
        return (
            ReserveTable(rows=table, total=total, artefact=artefact, extra_headings=headings),
            "",
        )
    return None, NO_RESULTS_FILE if not candidates else ""
