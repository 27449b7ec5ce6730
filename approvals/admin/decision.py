"""What the approval page leads with: what is being decided, read as a reviewer reads it.

The subject (the artefact and its version, or the workflow run) and, when it came
from a reserving run, the run's key results from its output summary: totals by
method, the selections and their reasons, the warnings; what changed since the
previous run (`workflows.reserving.compare`); and the provenance (what the work ran
with). Plain data for the template: numbers already formatted for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from engagements.selectors import scope_to_user
from records.formatting import (
    format_datetime,
    format_file_size,
    format_number,
    humanize_code,
    person,
)
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun
from workflows.reserving import compare_results

from ..models import Approval

METHOD_LABELS = {
    "chain_ladder": "Chain ladder",
    "bornhuetter_ferguson": "Bornhuetter-Ferguson",
    "benktander": "Benktander",
    "cape_cod": "Cape Cod",
    "bootstrap_odp": "Bootstrap (ODP)",
}
SOURCE_LABELS = {
    "average": "average of the link ratios",
    "override": "selected by judgment",
    "no_data": "no usable link ratio (1.000)",
    "tail": "tail factor",
}
AVERAGE_LABELS = {"volume": "volume-weighted", "simple": "simple", "regression": "regression"}
EXCLUSION_LABELS = {
    "exclude": "excluded by name",
    "drop_high": "among the highest dropped",
    "drop_low": "among the lowest dropped",
    "medial_high": "highest left out (medial average)",
    "medial_low": "lowest left out (medial average)",
}
# How many development factors the page lists before saying "and N more".
FACTORS_SHOWN = 12


@dataclass
class MethodTotals:
    """One method's totals: latest, ultimate, IBNR and its spread."""

    label: str
    run_name: str
    latest: str
    ultimate: str
    ibnr: str
    spread: str
    current: bool = False


@dataclass
class Selection:
    """A choice that shaped the results, and why (the actuary's reason when given)."""

    what: str
    value: str
    reason: str


@dataclass
class Change:
    """What changed since the previous run: a figure or an option, before and after."""

    what: str
    before: str
    after: str
    difference: str = ""


@dataclass
class PreviousRun:
    """The run this one is compared with, and how it was chosen."""

    run: WorkflowRun | None
    name: str
    url: str
    how: str
    completed: str


@dataclass
class DecisionSubject:
    """What the approval page leads with."""

    subject: str
    subject_url: str
    run: WorkflowRun | None = None
    run_url: str = ""
    measure: str = ""
    totals: list[MethodTotals] = field(default_factory=list)
    selections: list[Selection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    previous: PreviousRun | None = None
    changes: list[Change] = field(default_factory=list)
    emergence: list[Change] = field(default_factory=list)
    provenance: list[tuple[str, str]] = field(default_factory=list)
    results_note: str = ""


def approval_run(approval: Approval) -> WorkflowRun | None:
    """Return the workflow run the approval's subject came from, if any."""
    if approval.workflow_run_id is not None:
        return approval.workflow_run
    if approval.artefact_id is not None and approval.artefact.workflow_run_id is not None:
        return approval.artefact.workflow_run
    return None


def decision_subject(approval: Approval, user) -> DecisionSubject:
    """Return what `approval` decides, its key results, changes and provenance."""
    run = approval_run(approval)
    if approval.artefact_id is not None:
        subject = approval.artefact
        url = reverse("admin:artefacts_artefact_change", args=(subject.pk,))
    elif run is not None:
        subject, url = run, reverse("admin:workflows_workflowrun_change", args=(run.pk,))
    else:
        subject = approval.engagement
        url = reverse("admin:engagements_engagement_change", args=(subject.pk,))
    view = DecisionSubject(subject=str(subject), subject_url=url)
    if approval.artefact_id is not None:
        view.provenance.extend(_artefact_provenance(approval))
    if run is None:
        return view
    view.run = run
    view.run_url = reverse("admin:workflows_workflowrun_change", args=(run.pk,))
    summary = run.output_summary if isinstance(run.output_summary, dict) else {}
    if not summary.get("totals"):
        view.results_note = "The run has recorded no results to show here."
    else:
        view.measure = str(summary.get("measure") or "")
        view.totals.append(_method_totals(summary, run, current=True))
        view.selections = _selections(summary)
        view.warnings = _warnings(summary)
        previous, how = _previous_run(run, summary, user)
        if previous is not None:
            prior = previous.output_summary
            view.previous = PreviousRun(
                run=previous,
                name=str(previous),
                url=reverse("admin:workflows_workflowrun_change", args=(previous.pk,)),
                how=how,
                completed=format_datetime(previous.completed_at),
            )
            view.totals.append(_method_totals(prior, previous))
            view.changes = _changes(prior, summary)
        view.emergence = _emergence(summary.get("actual_vs_expected"))
    view.provenance.extend(_run_provenance(run))
    return view


def _method_label(method: Any) -> str:
    return METHOD_LABELS.get(str(method), humanize_code(method or "chain_ladder"))


def _method_totals(summary: dict, run: WorkflowRun, *, current: bool = False) -> MethodTotals:
    totals = summary.get("totals") or {}
    spread = ""
    if totals.get("mack_se") is not None:
        spread = f"{format_number(totals['mack_se'], 0)} (Mack s.e.)"
    elif totals.get("ibnr_std") is not None:
        spread = f"{format_number(totals['ibnr_std'], 0)} (simulated s.d.)"
    return MethodTotals(
        label=_method_label(summary.get("method") or totals.get("method")),
        run_name=str(run),
        latest=format_number(totals.get("latest"), 0),
        ultimate=format_number(totals.get("ultimate"), 0),
        ibnr=format_number(totals.get("ibnr"), 0),
        spread=spread or "—",
        current=current,
    )


def _selections(summary: dict) -> list[Selection]:
    """Return the choices behind the results: average, judgmental factors, tail, exclusions."""
    options = summary.get("options") or {}
    selections = [Selection("Method", _method_label(summary.get("method")), "")]
    average = options.get("average")
    if average:
        periods = options.get("n_periods")
        text = AVERAGE_LABELS.get(str(average), humanize_code(average))
        if periods:
            text += f", latest {periods} periods"
        selections.append(Selection("Average of the link ratios", text, ""))
    for key, label in (("drop_high", "Highest ratios dropped"), ("drop_low", "Lowest dropped")):
        if options.get(key):
            selections.append(Selection(label, str(options[key]), "per period"))
    factors = [f for f in summary.get("development_factors") or () if isinstance(f, dict)]
    for factor in factors:
        if factor.get("source") == "tail":
            continue  # the tail is its own selection below
        if factor.get("source") == "override" or factor.get("reason"):
            computed = factor.get("computed")
            reason = factor.get("reason") or ""
            if computed is not None:
                reason = f"{reason} (the data gave {format_number(computed, 4)})".strip()
            selections.append(
                Selection(
                    f"Factor {factor.get('period', '')}",
                    format_number(factor.get("ldf"), 4),
                    reason or SOURCE_LABELS.get(str(factor.get("source")), ""),
                )
            )
    tail = summary.get("tail")
    if isinstance(tail, dict):
        selections.append(
            Selection(
                f"Tail ({humanize_code(tail.get('method')).lower() or 'chosen'})",
                format_number(tail.get("factor"), 4),
                str(tail.get("reason") or ""),
            )
        )
    elif options.get("tail_factor"):
        selections.append(Selection("Tail", format_number(options["tail_factor"], 4), ""))
    else:
        selections.append(Selection("Tail", "none (1.000)", "no tail beyond the last age"))
    excluded = [p for p in summary.get("excluded_points") or () if isinstance(p, dict)]
    for point in excluded:
        selections.append(
            Selection(
                f"Link ratio {point.get('origin')} {point.get('period')}",
                f"{format_number(point.get('ratio'), 4)} left out",
                EXCLUSION_LABELS.get(str(point.get("reason")), humanize_code(point.get("reason"))),
            )
        )
    return selections


def _warnings(summary: dict) -> list[str]:
    warnings = [str(w) for w in summary.get("warnings") or ()]
    triangle = summary.get("triangle") or {}
    warnings += [str(w) for w in triangle.get("warnings") or () if str(w) not in warnings]
    emergence = summary.get("actual_vs_expected") or {}
    warnings += [str(w) for w in emergence.get("warnings") or ()]
    return warnings


def _previous_run(run: WorkflowRun, summary: dict, user) -> tuple[WorkflowRun | None, str]:
    """Return the run to compare with: the prior valuation the run names, else the last
    completed run of the engagement of the same type and measure (one query)."""
    visible = scope_to_user(WorkflowRun.objects.all(), user).exclude(pk=run.pk)
    prior = summary.get("prior_run") or {}
    if prior.get("run_id"):
        named = visible.filter(pk=prior["run_id"]).first()
        if named is not None and isinstance(named.output_summary, dict):
            return named, "the prior valuation this run was compared with"
    previous = (
        visible.filter(
            engagement_id=run.engagement_id,
            workflow_type=run.workflow_type,
            status=WorkflowStatus.COMPLETED,
            created_at__lt=run.created_at,
            output_summary__measure=summary.get("measure"),
        )
        .order_by("-created_at")
        .first()
    )
    if previous is None or not (previous.output_summary or {}).get("totals"):
        return None, ""
    return previous, "the engagement's previous completed run of this kind"


def _changes(prior: dict, current: dict) -> list[Change]:
    comparison = compare_results(prior, current)
    totals = comparison["totals"]
    first, second = totals["first"] or {}, totals["second"] or {}
    changes = [
        Change(
            "Total ultimate",
            format_number(first.get("ultimate"), 0),
            format_number(second.get("ultimate"), 0),
            _signed((second.get("ultimate") or 0) - (first.get("ultimate") or 0)),
        ),
        Change(
            "Total IBNR",
            format_number(first.get("ibnr"), 0),
            format_number(second.get("ibnr"), 0),
            _signed(totals["ibnr_difference"]),
        ),
    ]
    methods = comparison["methods"]
    if methods[0] != methods[1]:
        changes.append(Change("Method", _method_label(methods[0]), _method_label(methods[1])))
    for key, values in comparison["options"].items():
        if key == "engine":
            continue
        changes.append(
            Change(
                humanize_code(key) if "_" in key else key.capitalize(),
                _option(values["first"]),
                _option(values["second"]),
            )
        )
    return changes


def _emergence(emergence: Any) -> list[Change]:
    if not isinstance(emergence, dict):
        return []
    totals = emergence.get("totals") or {}
    ratio = totals.get("actual_to_expected")
    return [
        Change(
            "Emergence since the prior valuation",
            f"expected {format_number(totals.get('expected'), 0)}",
            f"actual {format_number(totals.get('actual'), 0)}",
            f"{format_number(ratio * 100, 0)}% of expected" if ratio is not None else "",
        )
    ]


def _option(value: Any) -> str:
    if value in (None, "", [], {}):
        return "none"
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_option(item)}" for key, item in value.items())
    if isinstance(value, list):
        return ", ".join(_option(item) for item in value)
    if isinstance(value, float):
        return format_number(value, 4)
    return humanize_code(value) if isinstance(value, str) else str(value)


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else "−" if value < 0 else "±"
    return f"{sign}{format_number(abs(value), 0)}"


def _run_provenance(run: WorkflowRun) -> list[tuple[str, str]]:
    provenance = run.provenance if isinstance(run.provenance, dict) else {}
    rows = [
        ("Workflow run", f"{run} ({run.get_workflow_type_display()})"),
        ("Run by", person(run.started_by or run.created_by)),
        ("Completed", format_datetime(run.completed_at)),
    ]
    for item in provenance.get("inputs") or ():
        if isinstance(item, dict):
            rows.append(
                (
                    "Input",
                    f"{item.get('name')} v{item.get('version')} ({item.get('file_name')}, "
                    f"{format_file_size(item.get('file_size'))}, SHA-256 "
                    f"{str(item.get('content_hash') or '')[:12]}…)",
                )
            )
    environment = provenance.get("environment") or {}
    if environment:
        commit = str(environment.get("git_commit") or "")[:12]
        rows.append(
            (
                "Code",
                f"version {environment.get('app_version') or '—'}"
                + (f", commit {commit}" if commit else ""),
            )
        )
    if provenance.get("recorded_at"):
        rows.append(("Recorded", format_datetime(provenance["recorded_at"])))
    return rows


def _artefact_provenance(approval: Approval) -> list[tuple[str, str]]:
    artefact = approval.artefact
    rows = [
        (
            "Artefact",
            f"{artefact.name}, version {approval.artefact_version or artefact.version} "
            f"({artefact.file_name or 'no file'}, {format_file_size(artefact.file_size)})",
        ),
        ("Uploaded by", f"{person(artefact.created_by)}, {format_datetime(artefact.created_at)}"),
    ]
    if approval.artefact_content_hash:
        rows.append(("SHA-256 at request", f"{approval.artefact_content_hash[:12]}…"))
    return rows
