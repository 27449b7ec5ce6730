"""The size and shape of a triangle: enough origins and ages, a staircase up to one diagonal.

Each origin's values must run from the first age without gaps up to the latest
diagonal. Origins may be developed at their own grain or a finer one (annual origins
with quarterly ages: each older origin has 4 more ages than the next); origins finer
than their development periods are refused, naming the grain combination.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

from workflows.reserving.triangles import rows as cells
from workflows.reserving.triangles.checks import CHECK_SHAPE, Run
from workflows.reserving.triangles.grain import month_number, period_label
from workflows.reserving.triangles.layouts import Grid
from workflows.reserving.triangles.limits import MAX_PERIODS, MIN_DEVELOPMENT_AGES, MIN_ORIGINS
from workflows.reserving.triangles.messages import (
    MSG_BEYOND_DIAGONAL,
    MSG_EMPTY_AGE_COLUMN,
    MSG_GRAIN_NOT_SUPPORTED,
    MSG_LEADING_GAP_INCREMENTAL,
    MSG_MISSING_DIAGONAL,
    MSG_MISSING_DIAGONAL_LONG,
    MSG_NO_FUTURE_CELLS,
    MSG_ORIGIN_GAP,
    MSG_ORIGIN_WITHOUT_VALUES,
    MSG_TOO_FEW_AGES,
    MSG_TOO_FEW_ORIGINS,
    MSG_TOO_MANY_PERIODS,
    MSG_VALUE_AFTER_GAP,
)


def size_problems(grid: Grid) -> list[str]:
    """Return what is too small or too large about the grid."""
    problems = []
    first_row, last_row = grid.data_rows
    if len(grid.origins) < MIN_ORIGINS:
        problems.append(
            MSG_TOO_FEW_ORIGINS.format(
                first_row=first_row,
                last_row=last_row,
                column=grid.origin_column,
                count=len(grid.origins),
                origins=", ".join(grid.origins),
            )
        )
    if len(grid.ages) < MIN_DEVELOPMENT_AGES:
        problems.append(
            MSG_TOO_FEW_AGES.format(
                row=1 if grid.layout == "wide" else first_row,
                column=next(iter(grid.age_columns.values()), "B"),
                count=len(grid.ages),
                ages=", ".join(cells.fmt(age) for age in grid.ages),
            )
        )
    for what, count, column in (
        ("origins", len(grid.origins), grid.origin_column),
        ("development ages", len(grid.ages), next(iter(grid.age_columns.values()), "B")),
    ):
        if count > MAX_PERIODS:
            problems.append(
                MSG_TOO_MANY_PERIODS.format(row=first_row, column=column, count=count, what=what)
            )
    return problems


def shape(grid: Grid, run: Run, *, cumulative: bool) -> tuple[list[int], list[int], int]:
    """Check the triangle shape; return each origin's first and end age index, and the step.

    An origin's values run from its first age up to the latest diagonal without gaps.
    An older origin may start later than the first age (its early development was not
    recorded) when the values are cumulative; with incremental values its cumulative
    amounts would be unknown, so that is refused. The step (development periods per
    origin period) is 1 when origins and development share a grain and e.g. 4 for
    annual origins developed quarterly: each older origin then has 4 more ages than the
    next one.
    """
    if _origins_finer_than_ages(grid):
        run(CHECK_SHAPE, [_grain_message(grid)])
    problems: list[str] = list(grid.extra_cells) + _origin_gaps(grid)
    ages = grid.ages
    if grid.layout == "wide":
        for age in ages:
            if all(grid.cells[origin][age].value is None for origin in grid.origins):
                problems.append(
                    MSG_EMPTY_AGE_COLUMN.format(
                        row=1, column=grid.age_columns[age], age=cells.fmt(age)
                    )
                )
    counts: list[int | None] = []
    firsts: list[int] = []
    for origin in grid.origins:
        row_cells = grid.cells[origin]
        present = [age for age in ages if age in row_cells and row_cells[age].value is not None]
        if not present:
            problems.append(
                MSG_ORIGIN_WITHOUT_VALUES.format(
                    row=grid.origin_rows[origin], column=grid.origin_column, origin=origin
                )
            )
            counts.append(None)
            firsts.append(0)
            continue
        first = ages.index(present[0])
        count = first + len(present)
        firsts.append(first)
        if first and not cumulative:
            cell = row_cells[present[0]]
            problems.append(
                MSG_LEADING_GAP_INCREMENTAL.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=cells.fmt(present[0]),
                )
            )
        if present != ages[first:count]:
            gap = next(age for age in ages[first:] if age not in present)
            after = next(age for age in present if age > gap)
            cell = row_cells[after]
            problems.append(
                MSG_VALUE_AFTER_GAP.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=cells.fmt(after),
                    gap_age=cells.fmt(gap),
                    gap_column=grid.age_columns[gap].split(" ")[0],
                )
            )
            counts.append(None)
            continue
        counts.append(count)
    if problems:
        run(CHECK_SHAPE, problems)

    n_ages = len(ages)
    if all(count >= n_ages for count in counts):
        last = grid.origins[-1]
        run(
            CHECK_SHAPE,
            [
                MSG_NO_FUTURE_CELLS.format(
                    row=grid.origin_rows[last], column=grid.origin_column, count=n_ages
                )
            ],
        )
    step = _periods_per_origin(grid, counts, run)
    run(CHECK_SHAPE, _leading_gap_problems(grid, firsts, step))
    diagonals = [count + step * i for i, count in enumerate(counts) if count < n_ages]
    # The latest diagonal is the one most origins agree on; ties go to the later origin so
    # a single malformed recent row does not shift every expectation.
    frequency = Counter(diagonals)
    best = max(frequency.values())
    diagonal = next(d for d in reversed(diagonals) if frequency[d] == best)
    for i, (origin, count) in enumerate(zip(grid.origins, counts, strict=True)):
        expected = min(n_ages, diagonal - step * i)
        row_cells = grid.cells[origin]
        if count > expected:
            age = ages[max(expected, 0)]
            cell = row_cells[age]
            allowed = cells.fmt(ages[expected - 1]) if expected >= 1 else "none"
            problems.append(
                MSG_BEYOND_DIAGONAL.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=cells.fmt(age),
                    allowed=allowed,
                )
            )
        elif count < expected:
            age = ages[count]
            if grid.layout == "wide":
                cell = row_cells[age]
                problems.append(
                    MSG_MISSING_DIAGONAL.format(
                        row=cell.row, column=cell.age_column, origin=origin, age=cells.fmt(age)
                    )
                )
            else:
                last_cell = row_cells[ages[count - 1]]
                problems.append(
                    MSG_MISSING_DIAGONAL_LONG.format(
                        row=last_cell.row,
                        column=grid.age_columns[age],
                        origin=origin,
                        last_age=cells.fmt(ages[count - 1]),
                        age=cells.fmt(age),
                    )
                )
    run(CHECK_SHAPE, problems)
    return firsts, counts, step


def _origin_gaps(grid: Grid) -> list[str]:
    """Name each origin period missing between two present ones (labels with a grain)."""
    grain = grid.grain
    if grain is None:
        return []
    problems = []
    starts = [grain.starts[origin] for origin in grid.origins]
    for before, after, start, next_start in zip(
        grid.origins, grid.origins[1:], starts, starts[1:], strict=False
    ):
        if month_number(next_start) - month_number(start) > grain.months:
            following = month_number(start) + grain.months
            missing = period_label((following // 12, following % 12 + 1), grain.grain)
            problems.append(
                MSG_ORIGIN_GAP.format(
                    row=grid.origin_rows[after],
                    column=grid.origin_column,
                    grain=grain.grain,
                    before=before,
                    after=after,
                    missing=missing,
                )
            )
    return problems


def _leading_gap_problems(grid: Grid, firsts: list[int], step: int) -> list[str]:
    """Name the origins whose values start late, unless a calendar cutoff explains it.

    Older origins may lack their early ages when recording began on a date: the missing
    cells are then exactly those before one calendar period (first age index + step ×
    origin index is the same for each such origin, and no other origin has a value
    before it). Any other late start is a gap in the data.
    """
    late = [(i, first) for i, first in enumerate(firsts) if first]
    if not late:
        return []
    cutoffs = Counter(first + step * i for i, first in late)
    cutoff = max(cutoffs, key=lambda value: (cutoffs[value], value))
    consistent = all(first + step * i == cutoff for i, first in late) and all(
        step * i >= cutoff for i, first in enumerate(firsts) if not first
    )
    if consistent:
        return []
    problems = []
    for i, first in late:
        origin = grid.origins[i]
        age = grid.ages[first]
        cell = grid.cells[origin][age]
        problems.append(
            MSG_VALUE_AFTER_GAP.format(
                row=cell.row,
                column=cell.age_column,
                origin=origin,
                age=cells.fmt(age),
                gap_age=cells.fmt(grid.ages[0]),
                gap_column=grid.age_columns[grid.ages[0]].split(" ")[0],
            )
        )
    return problems


def _periods_per_origin(grid: Grid, counts: list[int], run) -> int:
    """Return how many development periods one origin period spans, from the shape.

    The step is the one under which most immature origins end on one diagonal (ties go
    to the smaller step, so a malformed row in a small triangle is reported as such).
    When consecutive origins mostly share their count of ages, the origins are finer
    than the development periods: refused, naming the grain combination.
    """
    n_ages = len(grid.ages)
    immature = [(i, count) for i, count in enumerate(counts) if count < n_ages]
    differences = [
        first - second for (i, first), (j, second) in itertools.pairwise(immature) if j == i + 1
    ]
    if _runs_of_equal_counts(differences):
        run(CHECK_SHAPE, [_grain_message(grid)])
    if len(immature) == 1 and grid.grain is not None:
        # A single immature origin: the labels' grain and the ages in months decide.
        age_step = _age_step(grid.ages)
        if age_step and grid.grain.months % age_step == 0:
            return grid.grain.months // age_step
        return 1
    best_step, best_score = 1, 0
    for step in range(1, max([1, *differences]) + 1):
        score = max(Counter(count + step * i for i, count in immature).values())
        if score > best_score:
            best_step, best_score = step, score
    return best_step


def _runs_of_equal_counts(differences: list[int]) -> bool:
    """Return whether most consecutive immature origins have the same number of ages."""
    zeros = differences.count(0)
    return zeros >= 2 and zeros > len(differences) - zeros


def _origins_finer_than_ages(grid: Grid) -> bool:
    """Return whether the origin labels' grain is finer than the ages' step, in months.

    Quarterly origins with ages 12, 24, … (or monthly origins with ages 3, 6, …): each
    development period spans several origin periods.
    """
    if grid.grain is None or not all(isinstance(age, int) and age > 0 for age in grid.ages):
        return False
    return math.gcd(*grid.ages) > grid.grain.months


def _grain_message(grid: Grid) -> str:
    return MSG_GRAIN_NOT_SUPPORTED.format(
        row=grid.data_rows[0],
        column=grid.origin_column,
        origins=grid.grain.grain if grid.grain else "the",
        ages=", ".join(cells.fmt(age) for age in grid.ages[:4])
        + (", …" if len(grid.ages) > 4 else ""),
    )


def _age_step(ages: list[int | float]) -> int | None:
    """Return the common step of integral ages (e.g. 3 for 3, 6, 9), or None."""
    if not all(isinstance(age, int) for age in ages) or len(ages) < 2:
        return None
    steps = {b - a for a, b in itertools.pairwise(ages)}
    if len(steps) == 1 and ages[0] == next(iter(steps)):
        return next(iter(steps))
    return None
