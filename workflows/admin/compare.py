"""Two reserving runs of an engagement side by side, and what emerged against what was expected.

The earlier run is taken as the prior valuation: the page shows both runs' selected
factors and CDFs, their ultimates and IBNR by origin and in total with the differences
(second − first), the choices that differ, and the actual emergence since the prior run
against what its selections expected. The numbers come from the engine
(`workflows.reserving.compare`) applied to the results the runs stored: nothing is run
again, and the page reads only the two runs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from records.formatting import field_label, humanize_code, readable_value
from workflows.reserving import actual_vs_expected, compare_results
from workflows.reserving.outputs.svg import ibnr_comparison_svg

from ..models import WorkflowRun
from .run_page import METHOD_LABELS, RESERVING_TYPES

COMPARE_TWO = "Select exactly two workflow runs to compare (you selected {count})."
COMPARE_SAME_ENGAGEMENT = (
    "Runs “{first}” and “{second}” belong to different engagements: compare runs of one engagement."
)
COMPARE_NO_RESULTS = (
    "Run “{run}” has no reserving results to compare (only reserve calculations and IBNR "
    "estimations that computed their reserves do)."
)
COMPARE_NOT_FOUND = "No such workflow run among your engagements' runs."


@dataclass
class ComparedFactor:
    """One development period: both runs' selected factors and CDFs, and the differences."""

    period: str
    first: dict[str, str]
    second: dict[str, str]
    ldf_difference: str
    changed: bool


@dataclass
class ComparedOrigin:
    """One origin (or the total): both runs' ultimates and IBNR, and the differences."""

    origin: str
    first_ultimate: str
    second_ultimate: str
    ultimate_difference: str
    first_ibnr: str
    second_ibnr: str
    ibnr_difference: str
    ibnr_change: str


@dataclass
class Comparison:
    """What the compare page shows."""

    first: WorkflowRun
    second: WorkflowRun
    methods: tuple[str, str]
    factors: list[ComparedFactor]
    origins: list[ComparedOrigin]
    total: ComparedOrigin
    options: list[tuple[str, str, str]]
    emergence: list[dict[str, str]]
    emergence_total: dict[str, str] | None
    emergence_warnings: list[str]
    emergence_problem: str
    ibnr_svg: SafeString


def parse_run_ids(values: list[str]) -> list[uuid.UUID]:
    """Return the run ids given (bad ones left out)."""
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    return ids


def comparison_problem(runs: list[WorkflowRun]) -> str:
    """Return why these runs cannot be compared, or '' when they can."""
    if len(runs) != 2:
        return COMPARE_TWO.format(count=len(runs))
    first, second = runs
    if first.engagement_id != second.engagement_id:
        return COMPARE_SAME_ENGAGEMENT.format(first=first, second=second)
    for run in runs:
        summary = run.output_summary if isinstance(run.output_summary, dict) else {}
        if run.workflow_type not in RESERVING_TYPES or not (
            summary.get("origins") and summary.get("development_factors")
        ):
            return COMPARE_NO_RESULTS.format(run=run)
    return ""


def compare_runs(runs: list[WorkflowRun]) -> Comparison:
    """Return two runs side by side, the earlier first (the prior valuation)."""
    first, second = sorted(runs, key=lambda run: (run.created_at, str(run.pk)))
    a, b = first.output_summary, second.output_summary
    compared = compare_results(a, b)
    bars = tuple(
        (str(row["origin"]), (row["first"] or {}).get("ibnr"), (row["second"] or {}).get("ibnr"))
        for row in compared["origins"]
    )
    rows = [_origin(row) for row in compared["origins"]]
    totals = compared["totals"]
    total = _origin({"origin": "Total", "first": totals["first"], "second": totals["second"]})
    emergence, emergence_total, warnings, problem = _emergence(first, second)
    return Comparison(
        first=first,
        second=second,
        methods=tuple(METHOD_LABELS.get(m, str(m)) for m in compared["methods"]),
        factors=_factors(a, b),
        origins=rows,
        total=total,
        options=[
            (field_label(key), _choice(key, values["first"]), _choice(key, values["second"]))
            for key, values in compared["options"].items()
        ],
        emergence=emergence,
        emergence_total=emergence_total,
        emergence_warnings=warnings,
        emergence_problem=problem,
        # Built by workflows.reserving.outputs.svg, which escapes every text it writes.
        ibnr_svg=mark_safe(ibnr_comparison_svg(bars, (first.name, second.name))),
    )


def _factors(a: dict[str, Any], b: dict[str, Any]) -> list[ComparedFactor]:
    first = {factor["period"]: factor for factor in a.get("development_factors") or ()}
    second = {factor["period"]: factor for factor in b.get("development_factors") or ()}
    periods = list(first) + [period for period in second if period not in first]
    rows = []
    for period in periods:
        x, y = first.get(period), second.get(period)
        difference = y["ldf"] - x["ldf"] if x and y else None
        rows.append(
            ComparedFactor(
                period=period,
                first=_factor(x),
                second=_factor(y),
                ldf_difference=_signed_ratio(difference),
                changed=difference is not None and abs(difference) > 5e-7,
            )
        )
    return rows


def _factor(factor: dict[str, Any] | None) -> dict[str, str]:
    if factor is None:
        return {"ldf": "—", "cdf": "—", "source": ""}
    source = factor.get("source") or ""
    if source == "average":
        source = f"{factor.get('average')} average"
    return {"ldf": _ratio(factor.get("ldf")), "cdf": _ratio(factor.get("cdf")), "source": source}


def _origin(row: dict[str, Any]) -> ComparedOrigin:
    x, y = row.get("first") or {}, row.get("second") or {}
    ultimate = _difference(x.get("ultimate"), y.get("ultimate"))
    ibnr = _difference(x.get("ibnr"), y.get("ibnr"))
    change = None
    if ibnr is not None and x.get("ibnr"):
        change = ibnr / x["ibnr"]
    return ComparedOrigin(
        origin=str(row["origin"]),
        first_ultimate=_amount(x.get("ultimate")),
        second_ultimate=_amount(y.get("ultimate")),
        ultimate_difference=_signed_amount(ultimate),
        first_ibnr=_amount(x.get("ibnr")),
        second_ibnr=_amount(y.get("ibnr")),
        ibnr_difference=_signed_amount(ibnr),
        ibnr_change="" if change is None else f"{change:+.1%}",
    )


def _emergence(first: WorkflowRun, second: WorkflowRun):
    """Return the second run's emergence against the first run's expectation, formatted."""
    try:
        result = actual_vs_expected(
            second.output_summary,
            first.output_summary,
            prior_info={"run": str(first.pk), "name": first.name},
        )
    except ValueError as error:
        return [], None, [], str(error)
    rows = [
        {
            "origin": row.origin,
            "prior_age": _age(row.prior_age),
            "current_age": _age(row.current_age),
            "actual": _amount(row.actual),
            "expected": _amount(row.expected),
            "difference": _signed_amount(row.difference),
            "ratio": _percent(row.actual_to_expected),
            "note": row.note,
        }
        for row in result.origins
    ]
    total = {
        "actual": _amount(result.actual),
        "expected": _amount(result.expected),
        "difference": _signed_amount(result.difference),
        "ratio": _percent(result.actual_to_expected),
    }
    return rows, total, list(result.warnings), ""


def _difference(a, b) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    return b - a


def _amount(value) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:,.0f}"


def _signed_amount(value) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:+,.0f}" if round(value) != 0 else "0"


def _ratio(value) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.4f}"


def _signed_ratio(value) -> str:
    if not isinstance(value, int | float):
        return "—"
    return f"{value:+.4f}" if abs(value) >= 5e-5 else "0"


def _percent(value) -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.1%}"


def _age(value) -> str:
    if value is None:
        return "—"
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _choice(key: str, value: Any) -> str:
    """Return one run's choice as people read it: labels for codes, numbers formatted."""
    if key == "method" and value in METHOD_LABELS:
        return METHOD_LABELS[value]
    if key == "exclude" and isinstance(value, list):
        points = [f"{point[0]} at {point[1]}" for point in value if len(point) == 2]
        return ", ".join(points) or "—"
    if isinstance(value, str):
        return humanize_code(value)
    if isinstance(value, dict) and value:
        return "; ".join(
            f"{field_label(name)}: {_choice(name, item)}" for name, item in value.items()
        )
    return readable_value(value)
