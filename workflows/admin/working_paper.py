"""The working paper on a reserving run's page: its triangle and each step to the reserves.

The triangle is read again from the run's input artefact (through the verified,
audited download, at most ``WORKING_PAPER_MAX_BYTES``), parsed with the run's own
parameters, and put beside the result the run stored: the engine
(`workflows.reserving.working_paper`) derives the grids, the candidate averages, the
completed triangle and the ranges; this module formats them for the page (thousands
separators, marks for the points left out) and draws the two charts as inline SVG.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from artefacts.models import Artefact
from artefacts.services import ACCESS_PREVIEW, artefact_open_for_download
from engagements.selectors import scope_to_user
from records.exceptions import DomainError, InvalidInput
from workflows.implementations.reserving_inputs import parse_triangle
from workflows.reserving.development import (
    LEFT_OUT_EXCLUDED,
    LEFT_OUT_HIGH,
    LEFT_OUT_LOW,
    LEFT_OUT_MEDIAL_HIGH,
    LEFT_OUT_MEDIAL_LOW,
    LEFT_OUT_OLDER,
)
from workflows.reserving.outputs.svg import development_pattern_svg, reserve_ranges_svg
from workflows.reserving.triangles.data import TriangleData
from workflows.reserving.working_paper import WorkingPaper, working_paper

# Far above a 200 × 200 triangle in the long layout (about 1.5 MB): the page reads no more.
WORKING_PAPER_MAX_BYTES = 4 * 1024 * 1024

TRIANGLE_GONE = (
    "The working paper cannot be shown: the run's triangle artefact is deleted or not "
    "visible to you."
)
TRIANGLE_TOO_LARGE = (
    "The working paper is not shown: the triangle file is {size:,} bytes, more than the "
    "{limit:,} this page reads. The Excel working paper holds it."
)
TRIANGLE_UNREADABLE = "The working paper cannot be shown: {error}"
TRIANGLE_CHANGED = (
    "The triangle artefact no longer holds the bytes the run read (SHA-256 {now} instead "
    "of {then}): the working paper is not shown."
)

LEFT_OUT_TEXT = {
    LEFT_OUT_EXCLUDED: "excluded",
    LEFT_OUT_HIGH: "dropped as one of the highest",
    LEFT_OUT_LOW: "dropped as one of the lowest",
    LEFT_OUT_MEDIAL_HIGH: "the medial average's highest",
    LEFT_OUT_MEDIAL_LOW: "the medial average's lowest",
    LEFT_OUT_OLDER: "older than the latest n_periods origins",
}
SOURCE_TEXT = {
    "average": "{average} average",
    "override": "override",
    "no_data": "no data (1.000)",
    "tail": "tail",
}


@dataclass
class Cell:
    """A shown value and how it is marked (a left-out link ratio, a projected value)."""

    text: str
    css: str = ""
    title: str = ""


@dataclass
class GridRow:
    """One origin's row of a grid: its label, its cells, and any closing cells."""

    origin: str
    cells: list[Cell]
    extra: list[Cell] = field(default_factory=list)


@dataclass
class WorkingPaperView:
    """The working paper, formatted for the run page."""

    ages: list[str]
    periods: list[str]
    cumulative: list[GridRow]
    incremental: list[GridRow]
    link_ratios: list[GridRow]
    candidates: list[GridRow]
    selected: list[dict[str, str]]
    selected_row: GridRow
    cdf_row: GridRow
    projected: list[GridRow]
    excluded_count: int
    percentile_levels: list[str]
    percentile_rows: list[GridRow]
    range_source: str | None
    pattern_svg: SafeString
    ranges_svg: SafeString
    tail: dict[str, Any] | None


def working_paper_for(run, summary: dict[str, Any], request) -> tuple[WorkingPaperView | None, str]:
    """Return the run's working paper, or None and why it cannot be shown."""
    triangle, problem = read_run_triangle(run, summary, request)
    if triangle is None:
        return None, problem
    return format_working_paper(working_paper(triangle, summary)), ""


def read_run_triangle(run, summary: dict[str, Any], request) -> tuple[TriangleData | None, str]:
    """Return the triangle the run read (the same bytes, read by the user), or why not."""
    params = run.input_params if isinstance(run.input_params, dict) else {}
    try:
        artefact_id = uuid.UUID(str(params.get("triangle_artefact")))
    except ValueError:
        return None, TRIANGLE_GONE
    artefact = scope_to_user(Artefact.objects.filter(pk=artefact_id), request.user).first()
    if artefact is None:
        return None, TRIANGLE_GONE
    recorded = (summary.get("triangle") or {}).get("content_hash")
    if recorded and recorded != artefact.content_hash:
        return None, TRIANGLE_CHANGED.format(now=artefact.content_hash, then=recorded)
    if artefact.file_size > WORKING_PAPER_MAX_BYTES:
        return None, TRIANGLE_TOO_LARGE.format(
            size=artefact.file_size, limit=WORKING_PAPER_MAX_BYTES
        )
    try:
        handle = artefact_open_for_download(
            artefact=artefact, actor=request.user, purpose=ACCESS_PREVIEW
        )
        with handle:
            data = handle.read(WORKING_PAPER_MAX_BYTES + 1)
        return parse_triangle(data, artefact, _triangle_params(params)), ""
    except (DomainError, InvalidInput) as error:
        return None, TRIANGLE_UNREADABLE.format(error=error.message)


def _triangle_params(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "layout": params.get("layout") or "auto",
        "cumulative": params.get("cumulative", True),
        "measure": params.get("measure") or "paid",
        "allow_negative_development": params.get("allow_negative_development", True),
    }


def format_working_paper(paper: WorkingPaper) -> WorkingPaperView:
    """Return the working paper's numbers as the page shows them."""
    selected = [_selected(factor) for factor in paper.selected]
    in_grid = selected[: len(paper.periods)]
    tail = next((f for f in paper.selected if f.get("source") == "tail"), None)
    percentile_levels = _levels(paper)
    return WorkingPaperView(
        ages=[_age(age) for age in paper.development_ages],
        periods=list(paper.periods),
        cumulative=_grid(paper.origins, paper.cumulative),
        incremental=_grid(paper.origins, paper.incremental),
        link_ratios=[
            GridRow(
                origin,
                [
                    Cell(
                        _ratio(cell.value),
                        "left-out" if cell.left_out_by else "",
                        LEFT_OUT_TEXT.get(cell.left_out_by, cell.left_out_by or ""),
                    )
                    for cell in cells
                ],
            )
            for origin, cells in zip(paper.origins, paper.link_ratios, strict=True)
        ],
        candidates=[
            GridRow(candidate.label, [Cell(_ratio(value)) for value in candidate.values])
            for candidate in paper.candidates
        ],
        selected=selected,
        selected_row=GridRow(
            "Selected",
            [
                Cell(item["ldf"], f"source-{item['source']}", item["source_text"])
                for item in in_grid
            ],
        ),
        cdf_row=GridRow("CDF to ultimate", [Cell(item["cdf"]) for item in in_grid]),
        projected=[
            GridRow(
                origin,
                [
                    Cell(_amount(value), "projected" if projected else "")
                    for value, projected in row
                ],
                [Cell(_amount(ultimate))],
            )
            for origin, row, ultimate in zip(
                paper.origins, paper.projected, paper.projected_ultimates, strict=True
            )
        ],
        excluded_count=sum(1 for row in paper.link_ratios for cell in row if cell.left_out_by),
        percentile_levels=percentile_levels,
        percentile_rows=[
            GridRow(
                item.label,
                [Cell(_amount(item.best_estimate))]
                + [Cell(_amount(value)) for _, value in item.percentiles],
            )
            for item in paper.ranges
        ],
        range_source=paper.range_source,
        # Built by workflows.reserving.outputs.svg, which escapes every text it writes.
        pattern_svg=mark_safe(development_pattern_svg(paper.pattern)),
        ranges_svg=mark_safe(reserve_ranges_svg(paper.ranges)),
        tail=_selected(tail) if tail else None,
    )


def _levels(paper: WorkingPaper) -> list[str]:
    if not paper.ranges:
        return []
    return [f"P{_level(level)}" for level, _ in paper.ranges[-1].percentiles]


def _selected(factor: dict[str, Any]) -> dict[str, str]:
    source = factor.get("source") or "average"
    text = SOURCE_TEXT.get(source, source).format(average=factor.get("average") or "")
    return {
        "period": str(factor.get("period", "")),
        "ldf": _ratio(factor.get("ldf")),
        "cdf": _ratio(factor.get("cdf")),
        "source": source,
        "source_text": text,
        "reason": factor.get("reason") or "",
        "computed": _ratio(factor.get("computed")),
        "n_ratios": "" if factor.get("n_ratios") is None else str(factor["n_ratios"]),
    }


def _grid(origins, rows) -> list[GridRow]:
    return [
        GridRow(origin, [Cell(_amount(value)) for value in row])
        for origin, row in zip(origins, rows, strict=True)
    ]


def _amount(value) -> str:
    return "" if value is None else f"{value:,.0f}"


def _ratio(value) -> str:
    return "" if not isinstance(value, int | float) else f"{value:.4f}"


def _age(age) -> str:
    return str(int(age)) if isinstance(age, float) and age.is_integer() else str(age)


def _level(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else f"{level:g}"
