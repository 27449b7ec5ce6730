"""Read a claims development triangle uploaded as CSV or Excel.

Two layouts are accepted (``layouts``); input may be cumulative or incremental
(incremental input is accumulated along each origin). Origins may carry a calendar
grain (years, half-years, quarters, months; see ``grain``) and be developed at the same
grain or a finer one: annual origins with quarterly or monthly development ages give a
staircase in which each older origin has 4 or 12 more ages than the next. Origins finer
than their development (quarterly origins with annual ages) are refused, as
chainladder's ``grain`` refuses them: such a file cannot hold the latest diagonal, so
any triangle made of it would be wrong.

Every problem is reported with the spreadsheet row and column. The checks (``checks``)
run in order, and a later check runs only when the earlier ones pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workflows.reserving.triangles import rows as cells
from workflows.reserving.triangles.checks import (
    CHECK_FILE,
    CHECK_NEGATIVE,
    CHECK_SIZE,
    Failed,
)
from workflows.reserving.triangles.data import (
    LAYOUTS,
    MEASURES,
    TriangleData,
    TriangleError,
    TriangleIssue,
)
from workflows.reserving.triangles.layouts import (
    ROLES,
    Grid,
    build_grid,
    choose_layout,
    long_columns,
)
from workflows.reserving.triangles.messages import (
    MSG_BAD_OPTION,
    MSG_LEADING_GAP,
    MSG_MORE_PROBLEMS,
    MSG_NEGATIVE_CUMULATIVE,
    MSG_NEGATIVE_FIRST,
    MSG_NEGATIVE_HINT,
    MSG_NEGATIVE_INCREMENT,
    MSG_ZERO_VALUES,
)
from workflows.reserving.triangles.shape import shape, size_problems


def read_triangle(
    data: bytes,
    file_name: str,
    *,
    layout: str = "auto",
    cumulative: bool,
    measure: str,
    allow_negative_development: bool = False,
    columns: dict[str, str] | None = None,
) -> TriangleData:
    """Return the triangle in ``data`` (CSV or .xlsx), or raise TriangleError.

    ``columns`` maps the long layout's roles (origin, development, value) to the
    file's own headers. The error message is the first problem found, naming its row
    and column; ``error.issues`` holds every problem of the failing check.
    """
    outcome = parse_triangle(
        data,
        file_name,
        layout=layout,
        cumulative=cumulative,
        measure=measure,
        allow_negative_development=allow_negative_development,
        columns=columns,
    )
    if outcome.triangle is None:
        first, *rest = outcome.issues
        message = first.message
        if rest:
            message += MSG_MORE_PROBLEMS.format(count=len(rest))
        raise TriangleError(message, tuple(outcome.issues))
    return outcome.triangle


def file_headers(data: bytes, file_name: str, measure: str = "paid") -> FileHeaders:
    """Return the header row of a triangle file and the long-layout columns found in it.

    Reading is bounded as for ``read_triangle``; an unreadable file raises TriangleError.
    """
    issues: list[TriangleIssue] = []

    def report(problems: list[str]) -> None:
        if problems:
            issues.extend(TriangleIssue(CHECK_FILE, message) for message in problems)
            raise Failed

    try:
        rows = cells.read_rows(data, file_name, report)
    except Failed:
        raise TriangleError(issues[0].message, tuple(issues)) from None
    header = rows[0][1]
    columns, missing = long_columns(header, measure)
    names = tuple("" if cell is None else cells.text(cell) for cell in header)
    found = {role: names[columns[role]] for role in ROLES} if not missing else None
    return FileHeaders(names=names, long_columns=found, data_rows=len(rows) - 1)


@dataclass(frozen=True)
class FileHeaders:
    """A file's header row, and its origin, development and value headers when recognised."""

    names: tuple[str, ...]
    long_columns: dict[str, str] | None
    data_rows: int


@dataclass
class Outcome:
    """What reading a file gave: the triangle, or the problems of the check that failed."""

    triangle: TriangleData | None = None
    issues: list[TriangleIssue] = field(default_factory=list)
    checks_run: set[str] = field(default_factory=set)
    layout: str | None = None


def parse_triangle(
    data: bytes,
    file_name: str,
    *,
    layout: str,
    cumulative: bool,
    measure: str,
    allow_negative_development: bool,
    columns: dict[str, str] | None = None,
) -> Outcome:
    """Run the checks in order; return the triangle or the problems of the failing check."""
    _check_option("layout", layout, LAYOUTS)
    _check_option("measure", measure, MEASURES)
    outcome = Outcome()

    def run(check: str, issues: list[str]) -> None:
        outcome.checks_run.add(check)
        outcome.issues.extend(TriangleIssue(check, message) for message in issues)
        if issues:
            raise Failed

    try:
        rows = cells.read_rows(data, file_name, lambda issues: run(CHECK_FILE, issues))
        outcome.layout, found = choose_layout(rows, file_name, layout, measure, run, columns)
        grid = build_grid(rows, outcome.layout, found, run)
        run(CHECK_SIZE, size_problems(grid))
        firsts, counts, periods_per_origin = shape(grid, run, cumulative=cumulative)
        values, warnings = _accumulate(
            grid, firsts, counts, cumulative, allow_negative_development, run
        )
    except Failed:
        return outcome
    outcome.triangle = TriangleData(
        origins=tuple(grid.origins),
        development_ages=tuple(grid.ages),
        values=values,
        measure=measure,
        input_layout=grid.layout,
        input_cumulative=cumulative,
        file_name=file_name,
        warnings=tuple(warnings),
        origin_grain=grid.grain.grain if grid.grain else None,
        periods_per_origin=periods_per_origin,
    )
    return outcome


def _check_option(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(MSG_BAD_OPTION.format(name=name, allowed=", ".join(allowed), value=value))


def _accumulate(
    grid: Grid,
    firsts: list[int],
    counts: list[int],
    cumulative: bool,
    allow_negative: bool,
    run,
) -> tuple[tuple[tuple[float | None, ...], ...], list[str]]:
    """Return cumulative rows; check (or, when allowed, note) negative development.

    Ages an origin did not record before its first value are None (cumulative input
    only; ``shape`` refused them for incremental input) and noted as a warning.
    """
    problems: list[str] = []
    warnings: list[str] = []
    rows: list[tuple[float | None, ...]] = []
    for origin, first, count in zip(grid.origins, firsts, counts, strict=True):
        row_cells = [grid.cells[origin][age] for age in grid.ages[first:count]]
        if first:
            cell = row_cells[0]
            warnings.append(
                MSG_LEADING_GAP.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=cells.fmt(grid.ages[first]),
                )
            )
        running = 0.0
        values: list[float | None] = [None] * first
        for offset, cell in enumerate(row_cells):
            j = first + offset
            previous = running
            running = cell.value if cumulative else running + cell.value
            values.append(running)
            if running == 0:
                warnings.append(MSG_ZERO_VALUES.format(origin=origin, age=cells.fmt(grid.ages[j])))
            args = {
                "row": cell.row,
                "column": cell.column,
                "origin": origin,
                "age": cells.fmt(grid.ages[j]),
                "value": cells.fmt(cell.value),
            }
            if offset == 0 and running < 0:
                message = MSG_NEGATIVE_FIRST.format(**args)
            elif offset > 0 and running < previous:
                if cumulative:
                    message = MSG_NEGATIVE_CUMULATIVE.format(
                        previous=cells.fmt(previous),
                        previous_age=cells.fmt(grid.ages[j - 1]),
                        **args,
                    )
                else:
                    message = MSG_NEGATIVE_INCREMENT.format(**args)
            else:
                continue
            if allow_negative:
                warnings.append(message)
            else:
                problems.append(message + MSG_NEGATIVE_HINT)
        rows.append(tuple(values))
    run(CHECK_NEGATIVE, problems)
    return tuple(rows), warnings
