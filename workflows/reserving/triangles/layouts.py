"""The two layouts of a triangle file, read into a grid of cells that remember where they were.

*Long*: one row per cell with origin, development and value columns, found by their
headers (aliases below, matched case-insensitively, camel case split into words), or
named by a column mapping (role → header) when the file's own headers are none of
them. *Wide*: the first column holds the origins and every other column is a
development age.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from workflows.reserving.triangles import rows as cells
from workflows.reserving.triangles.checks import CHECK_FILE, CHECK_NUMBERS, CHECK_UNIQUE, Run
from workflows.reserving.triangles.grain import OriginGrain, month_number, origin_grain
from workflows.reserving.triangles.messages import (
    MSG_BAD_AGE,
    MSG_DUPLICATE_AGE,
    MSG_DUPLICATE_CELL,
    MSG_DUPLICATE_ORIGIN,
    MSG_EMPTY_AGE,
    MSG_EMPTY_AGE_HEADER,
    MSG_EMPTY_ORIGIN,
    MSG_EMPTY_VALUE,
    MSG_EXTRA_CELL,
    MSG_LONG_COLUMNS_MISSING,
    MSG_MAPPED_COLUMN_MISSING,
    MSG_MAPPED_COLUMN_TWICE,
    MSG_MAPPING_NEEDS_LONG,
    MSG_NO_DATA_ROWS,
    MSG_NOT_A_NUMBER,
)

# Header aliases for the long layout, after lower-casing and turning spaces, hyphens and
# dots into underscores.
ORIGIN_ALIASES = (
    "origin",
    "origin_period",
    "origin_year",
    "origin_date",
    "accident_year",
    "accident_period",
    "accident_quarter",
    "accident_month",
    "ay",
    "underwriting_year",
    "uw_year",
    "uy",
    "policy_year",
    "report_year",
    "reporting_year",
    "year",
    "period",
)
DEVELOPMENT_ALIASES = (
    "development",
    "development_age",
    "development_period",
    "development_year",
    "development_month",
    "development_lag",
    "dev",
    "dev_age",
    "dev_period",
    "dev_year",
    "dev_lag",
    "dev_months",
    "development_months",
    "dev_month",
    "age",
    "lag",
    "months",
    "maturity",
)
VALUE_ALIASES = (
    "value",
    "values",
    "amount",
    "amounts",
    "claims",
    "losses",
    "loss",
    "paid",
    "incurred",
    "reported",
    "cumulative",
    "incremental",
    "paid_losses",
    "incurred_losses",
    "paid_loss",
    "incurred_loss",
    "paid_amount",
    "incurred_amount",
    "paid_claims",
    "incurred_claims",
    "cumulative_paid",
    "cumulative_incurred",
)


@dataclass
class Cell:
    value: float | None
    row: int
    column: str  # where the value is
    age_column: str  # where its development age is: the same column in the wide layout


@dataclass
class Grid:
    """Cells keyed by origin and age, with where each came from in the file."""

    layout: str
    origins: list[str]
    ages: list[int | float]
    cells: dict[str, dict[int | float, Cell]]
    origin_rows: dict[str, int]
    origin_column: str
    age_columns: dict[int | float, str]
    data_rows: tuple[int, int]
    extra_cells: list[str] = field(default_factory=list)
    grain: OriginGrain | None = None


ROLES = ("origin", "development", "value")


def choose_layout(
    rows, file_name: str, layout: str, measure: str, run: Run, mapping: dict | None = None
) -> tuple[str, dict[str, int]]:
    """Return the layout (the one given, or detected for auto) and the long-layout columns.

    With a ``mapping`` (role → header) the file is read in the long layout from the
    columns it names.
    """
    header_row, header = rows[0]
    if len(rows) < 2:
        run(CHECK_FILE, [MSG_NO_DATA_ROWS.format(row=header_row, file=file_name)])
    if mapping:
        if layout == "wide":
            run(CHECK_FILE, [MSG_MAPPING_NEEDS_LONG])
        columns, problems = mapped_columns(header, header_row, mapping)
        run(CHECK_FILE, problems)
        return "long", columns
    columns, missing = long_columns(header, measure)
    if layout == "auto":
        layout = "long" if not missing else "wide"
    if layout == "long" and missing:
        found = ", ".join(repr(cells.text(cell)) for cell in header if cell is not None)
        run(
            CHECK_FILE,
            [
                MSG_LONG_COLUMNS_MISSING.format(
                    row=header_row, missing=", ".join(missing), found=found or "none"
                )
            ],
        )
    run(CHECK_FILE, [])
    return layout, columns


def build_grid(rows, layout: str, columns: dict[str, int], run: Run) -> Grid:
    """Return the grid of cells of the file's rows in ``layout``, origins in time order."""
    (header_row, header), data_rows = rows[0], rows[1:]
    if layout == "long":
        grid = long_grid(header, data_rows, columns, run)
    else:
        grid = wide_grid(header_row, header, data_rows, run)
    grid.grain = origin_grain(grid.origins)
    grid.origins = sorted_origins(grid.origins, grid.grain)
    return grid


def mapped_columns(
    header: list[object], header_row: int, mapping: dict
) -> tuple[dict[str, int], list[str]]:
    """Return the column of each role the mapping names (by header, any case), and problems."""
    names = [cells.normalise_header(cell) for cell in header]
    found_text = ", ".join(repr(cells.text(cell)) for cell in header if cell is not None)
    columns: dict[str, int] = {}
    problems: list[str] = []
    for role in ROLES:
        name = str(mapping.get(role) or "")
        wanted = cells.normalise_header(name)
        index = names.index(wanted) if wanted and wanted in names else None
        if index is None:
            problems.append(
                MSG_MAPPED_COLUMN_MISSING.format(
                    row=header_row, role=role, name=name, found=found_text or "none"
                )
            )
            continue
        other = next((r for r, i in columns.items() if i == index), None)
        if other is not None:
            problems.append(
                MSG_MAPPED_COLUMN_TWICE.format(row=header_row, role=role, name=name, other=other)
            )
            continue
        columns[role] = index
    return columns, problems


def long_columns(header: list[object], measure: str) -> tuple[dict[str, int], list[str]]:
    """Return the long-layout column of each role and the roles not found.

    With both a paid and an incurred column, the one named after ``measure`` is the value.
    """
    names = [cells.normalise_header(cell) for cell in header]
    value_aliases = sorted(VALUE_ALIASES, key=lambda alias: measure not in alias)
    found: dict[str, int] = {}
    for role, aliases in (
        ("origin", ORIGIN_ALIASES),
        ("development", DEVELOPMENT_ALIASES),
        ("value", value_aliases),
    ):
        for alias in aliases:
            candidates = [
                i for i, name in enumerate(names) if name == alias and i not in found.values()
            ]
            if candidates:
                found[role] = candidates[0]
                break
    missing = [role for role in ("origin", "development", "value") if role not in found]
    return found, missing


def long_grid(header, data_rows, columns: dict[str, int], run) -> Grid:
    origin_index, age_index, value_index = (
        columns["origin"],
        columns["development"],
        columns["value"],
    )
    origin_ref = cells.column_ref(origin_index, header[origin_index])
    age_ref = cells.column_ref(age_index, header[age_index])
    value_ref = cells.column_ref(value_index, header[value_index])
    problems: list[str] = []
    parsed: list[tuple[int, str, int | float, float]] = []
    for row, row_cells in data_rows:
        row_cells = row_cells + [None] * (max(columns.values()) + 1 - len(row_cells))
        raw_origin = row_cells[origin_index]
        raw_age = row_cells[age_index]
        raw_value = row_cells[value_index]
        if raw_origin is None and raw_age is None and raw_value is None:
            continue  # a row holding only other columns (notes, line of business)
        row_ok = True
        if raw_origin is None:
            problems.append(MSG_EMPTY_ORIGIN.format(row=row, column=origin_ref))
            row_ok = False
        if raw_age is None:
            problems.append(MSG_EMPTY_AGE.format(row=row, column=age_ref))
            row_ok = False
        else:
            try:
                age = cells.age(raw_age)
            except ValueError:
                problems.append(
                    MSG_BAD_AGE.format(row=row, column=age_ref, value=cells.text(raw_age))
                )
                row_ok = False
        if raw_value is None:
            problems.append(MSG_EMPTY_VALUE.format(row=row, column=value_ref))
            row_ok = False
        else:
            try:
                value = cells.number(raw_value)
            except ValueError:
                problems.append(
                    MSG_NOT_A_NUMBER.format(row=row, column=value_ref, value=cells.text(raw_value))
                )
                row_ok = False
        if row_ok:
            parsed.append((row, cells.text(raw_origin), age, value))
    run(CHECK_NUMBERS, problems)

    cells_by_origin: dict[str, dict[int | float, Cell]] = {}
    origin_rows: dict[str, int] = {}
    for row, origin, age, value in parsed:
        row_cells = cells_by_origin.setdefault(origin, {})
        origin_rows.setdefault(origin, row)
        if age in row_cells:
            problems.append(
                MSG_DUPLICATE_CELL.format(
                    row=row,
                    column=age_ref,
                    origin=origin,
                    age=cells.fmt(age),
                    first_row=row_cells[age].row,
                )
            )
            continue
        row_cells[age] = Cell(value, row, value_ref, age_ref)
    run(CHECK_UNIQUE, problems)

    ages = sorted({age for row_cells in cells_by_origin.values() for age in row_cells})
    return Grid(
        layout="long",
        origins=list(cells_by_origin),
        ages=ages,
        cells=cells_by_origin,
        origin_rows=origin_rows,
        origin_column=origin_ref,
        age_columns=dict.fromkeys(ages, age_ref),
        data_rows=(data_rows[0][0], data_rows[-1][0]),
    )


def wide_grid(header_row: int, header, data_rows, run) -> Grid:
    problems: list[str] = []
    origin_ref = cells.column_ref(0, header[0])
    header_ages: list[tuple[int, int | float]] = []
    for index, raw in enumerate(header[1:], start=1):
        ref = cells.column_ref(index, raw)
        if raw is None:
            problems.append(
                MSG_EMPTY_AGE_HEADER.format(row=header_row, column=cells.column_letter(index))
            )
            continue
        try:
            header_ages.append((index, cells.age(raw)))
        except ValueError:
            problems.append(MSG_BAD_AGE.format(row=header_row, column=ref, value=cells.text(raw)))
    width = len(header)
    extra_cells: list[str] = []
    parsed_rows: list[tuple[int, str, dict[int, float | None]]] = []
    for row, row_cells in data_rows:
        if row_cells[0] is None:
            problems.append(MSG_EMPTY_ORIGIN.format(row=row, column=origin_ref))
            continue
        values: dict[int, float | None] = {}
        for index, raw in enumerate(row_cells[1:], start=1):
            if index >= width:
                if raw is not None:
                    extra_cells.append(
                        MSG_EXTRA_CELL.format(
                            row=row, column=cells.column_letter(index), value=cells.text(raw)
                        )
                    )
                continue
            if raw is None:
                continue
            try:
                values[index] = cells.number(raw)
            except ValueError:
                ref = cells.column_ref(index, header[index])
                problems.append(MSG_NOT_A_NUMBER.format(row=row, column=ref, value=cells.text(raw)))
        parsed_rows.append((row, cells.text(row_cells[0]), values))
    run(CHECK_NUMBERS, problems)

    first_column: dict[int | float, int] = {}
    for index, age in header_ages:
        if age in first_column:
            problems.append(
                MSG_DUPLICATE_AGE.format(
                    row=header_row,
                    column=cells.column_ref(index, header[index]),
                    age=cells.fmt(age),
                    first_column=cells.column_letter(first_column[age]),
                )
            )
        else:
            first_column[age] = index
    origin_rows: dict[str, int] = {}
    for row, origin, _values in parsed_rows:
        if origin in origin_rows:
            problems.append(
                MSG_DUPLICATE_ORIGIN.format(
                    row=row, column=origin_ref, origin=origin, first_row=origin_rows[origin]
                )
            )
        else:
            origin_rows[origin] = row
    run(CHECK_UNIQUE, problems)

    age_columns = {
        age: cells.column_ref(index, header[index]) for age, index in first_column.items()
    }
    cells_by_origin = {
        origin: {
            age: Cell(values.get(index), row, age_columns[age], age_columns[age])
            for age, index in first_column.items()
        }
        for row, origin, values in parsed_rows
    }
    return Grid(
        layout="wide",
        origins=list(cells_by_origin),
        ages=sorted(first_column),
        cells=cells_by_origin,
        origin_rows=origin_rows,
        origin_column=origin_ref,
        age_columns=age_columns,
        data_rows=(data_rows[0][0], data_rows[-1][0]),
        extra_cells=extra_cells,
    )


def sorted_origins(origins: list[str], grain: OriginGrain | None) -> list[str]:
    """Sort origins chronologically (by grain, number or ISO date); keep file order otherwise."""
    if grain is not None:
        return sorted(origins, key=lambda origin: month_number(grain.starts[origin]))
    try:
        return sorted(origins, key=float)
    except ValueError:
        pass
    try:
        return sorted(origins, key=dt.date.fromisoformat)
    except ValueError:
        return origins
