"""Read and validate claims development triangles uploaded as CSV or Excel.

Two layouts are accepted. *Long*: one row per cell with origin, development and value
columns (header aliases are matched case-insensitively). *Wide*: the first column holds
the origins and every other column is a development age. Input may be cumulative or
incremental; incremental input is accumulated along each origin.

Every problem is reported with the spreadsheet row (the header is row 1) and column
(letter and header), so a user can find it in the file they uploaded. Only the standard
library is used here; openpyxl is imported inside the Excel reader.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["long", "wide", "auto"]
Measure = Literal["paid", "incurred"]

LAYOUTS = ("long", "wide", "auto")
MEASURES = ("paid", "incurred")
MIN_ORIGINS = 3
MIN_DEVELOPMENT_AGES = 2
# The chainladder bridge maps origin i / age j to calendar years; this bound keeps the
# mapped dates inside the range pandas can represent.
MAX_PERIODS = 200

# Check names, in the order they run. A later check only runs when the earlier ones pass.
CHECK_FILE = "file_readable"
CHECK_NUMBERS = "numeric_values"
CHECK_UNIQUE = "unique_cells"
CHECK_SIZE = "minimum_size"
CHECK_SHAPE = "triangle_shape"
CHECK_NEGATIVE = "non_negative_development"
CHECKS = (CHECK_FILE, CHECK_NUMBERS, CHECK_UNIQUE, CHECK_SIZE, CHECK_SHAPE, CHECK_NEGATIVE)

CHECK_DESCRIPTIONS = {
    CHECK_FILE: "The file is a readable CSV or Excel workbook with a header row and data.",
    CHECK_NUMBERS: "Every origin is present and every development age and value is a number.",
    CHECK_UNIQUE: "Each (origin, development age) cell is given once.",
    CHECK_SIZE: f"At least {MIN_ORIGINS} origins and {MIN_DEVELOPMENT_AGES} development ages.",
    CHECK_SHAPE: "Each origin has values from the first age up to the latest diagonal, "
    "without gaps and without values beyond it.",
    CHECK_NEGATIVE: "Cumulative values never fall from one age to the next.",
}

# Messages: module constants so callers and tests can match them.
MSG_BAD_OPTION = "{name} must be one of {allowed}, not {value!r}"
MSG_EMPTY_FILE = "row 1, column A: the file {file!r} is empty"
MSG_NOT_TEXT = "{file!r} is neither a CSV text file nor an Excel (.xlsx) workbook"
MSG_UNREADABLE_EXCEL = "{file!r} is not a readable Excel (.xlsx) workbook: {error}"
MSG_OLD_EXCEL = "{file!r} is an old Excel (.xls) file; save it as .xlsx or CSV"
MSG_NO_DATA_ROWS = "row {row}, column A: the file {file!r} has a header row but no data rows"
MSG_LONG_COLUMNS_MISSING = (
    "row {row}: the long layout needs origin, development and value columns; "
    "missing {missing} (headers found: {found})"
)
MSG_EMPTY_ORIGIN = "row {row}, column {column}: the origin is empty"
MSG_EMPTY_VALUE = "row {row}, column {column}: the value is empty"
MSG_NOT_A_NUMBER = "row {row}, column {column}: {value!r} is not a number"
MSG_BAD_AGE = "row {row}, column {column}: development age {value!r} is not a number"
MSG_EMPTY_AGE = "row {row}, column {column}: the development age is empty"
MSG_EMPTY_AGE_HEADER = "row {row}, column {column}: the development age header is empty"
MSG_DUPLICATE_CELL = (
    "row {row}, column {column}: duplicate cell: origin {origin} at development age {age} "
    "was already given in row {first_row}"
)
MSG_DUPLICATE_ORIGIN = (
    "row {row}, column {column}: duplicate origin {origin} (already in row {first_row})"
)
MSG_DUPLICATE_AGE = (
    "row {row}, column {column}: duplicate development age {age} (already in column {first_column})"
)
MSG_TOO_FEW_ORIGINS = (
    "rows {first_row}-{last_row}, column {column}: only {count} origin(s) ({origins}); "
    f"at least {MIN_ORIGINS} are needed"
)
MSG_TOO_FEW_AGES = (
    "row {row}, column {column}: only {count} development age(s) ({ages}); "
    f"at least {MIN_DEVELOPMENT_AGES} are needed"
)
MSG_TOO_MANY_PERIODS = (
    "row {row}, column {column}: {count} {what} is more than the {limit} supported"
)
MSG_EXTRA_CELL = (
    "row {row}, column {column}: ragged row: value {value!r} lies beyond the last "
    "development age column"
)
MSG_EMPTY_AGE_COLUMN = (
    "row {row}, column {column}: development age {age} has no values in any origin"
)
MSG_ORIGIN_WITHOUT_VALUES = "row {row}, column {column}: origin {origin} has no values"
MSG_VALUE_AFTER_GAP = (
    "row {row}, column {column}: ragged row: origin {origin} has a value at development "
    "age {age} after an empty cell at age {gap_age} (column {gap_column})"
)
MSG_BEYOND_DIAGONAL = (
    "row {row}, column {column}: ragged row: origin {origin} has a value at development "
    "age {age}, beyond the latest diagonal (its last allowed age is {allowed})"
)
MSG_MISSING_DIAGONAL = (
    "row {row}, column {column}: origin {origin} has no value at development age {age}, "
    "which the latest diagonal requires"
)
MSG_MISSING_DIAGONAL_LONG = (
    "row {row}, column {column}: origin {origin} stops at development age {last_age}; "
    "the latest diagonal requires a value at age {age}"
)
MSG_NO_FUTURE_CELLS = (
    "row {row}, column {column}: every origin already has all {count} development ages; "
    "a triangle needs a latest diagonal to project from"
)
MSG_NEGATIVE_CUMULATIVE = (
    "row {row}, column {column}: negative development for origin {origin}: the cumulative "
    "value falls from {previous} at age {previous_age} to {value} at age {age}"
)
MSG_NEGATIVE_INCREMENT = (
    "row {row}, column {column}: negative development for origin {origin}: the incremental "
    "value {value} at age {age} is negative"
)
MSG_NEGATIVE_FIRST = (
    "row {row}, column {column}: negative development for origin {origin}: the first "
    "value {value} at age {age} is negative"
)
MSG_NEGATIVE_HINT = " (pass allow_negative_development=True to accept it)"
MSG_ZERO_VALUES = (
    "origin {origin} is zero at development age {age}: age-to-age factors from or to a "
    "zero are left out of the averages (chainladder reads zeros as missing)"
)
MSG_MORE_PROBLEMS = " (and {count} more problem(s); validate_triangle lists them all)"

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
    "cumulative_paid",
    "cumulative_incurred",
)

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_EMBEDDED_NUMBER = re.compile(r"^[^\d.+-]*([+-]?\d+(?:\.\d+)?)[^\d]*$")


class TriangleError(ValueError):
    """A triangle file that cannot be used; the message names the row and column."""

    def __init__(self, message: str, issues: tuple[TriangleIssue, ...] = ()):
        super().__init__(message)
        self.issues = issues


@dataclass(frozen=True)
class TriangleIssue:
    """One problem found in a triangle file, attributed to the check that found it."""

    check: str
    message: str


@dataclass(frozen=True)
class TriangleData:
    """A validated cumulative triangle in plain Python.

    ``values[i]`` holds the cumulative amounts of ``origins[i]`` at the first
    ``len(values[i])`` development ages: the observed part of the row, up to the latest
    diagonal.
    """

    origins: tuple[str, ...]
    development_ages: tuple[int | float, ...]
    values: tuple[tuple[float, ...], ...]
    measure: str
    input_layout: str
    input_cumulative: bool
    file_name: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def origin_count(self) -> int:
        return len(self.origins)

    @property
    def development_age_count(self) -> int:
        return len(self.development_ages)

    @property
    def cell_count(self) -> int:
        return sum(len(row) for row in self.values)

    def latest_diagonal(self) -> list[dict]:
        """Return the latest value of each origin with its development age."""
        return [
            {
                "origin": origin,
                "development_age": self.development_ages[len(row) - 1],
                "value": row[-1],
            }
            for origin, row in zip(self.origins, self.values, strict=True)
        ]

    def as_matrix(self) -> list[list[float | None]]:
        """Return the triangle as origin rows × development age columns, None when unknown."""
        width = len(self.development_ages)
        return [list(row) + [None] * (width - len(row)) for row in self.values]

    def to_dict(self) -> dict:
        """Return a JSON-serialisable description of the triangle."""
        return {
            "file_name": self.file_name,
            "measure": self.measure,
            "input_layout": self.input_layout,
            "input_cumulative": self.input_cumulative,
            "origins": list(self.origins),
            "development_ages": list(self.development_ages),
            "cumulative_values": self.as_matrix(),
            "warnings": list(self.warnings),
        }


def read_triangle(
    data: bytes,
    file_name: str,
    *,
    layout: Layout = "auto",
    cumulative: bool,
    measure: Measure,
    allow_negative_development: bool = False,
) -> TriangleData:
    """Return the triangle in ``data`` (CSV or .xlsx), or raise TriangleError.

    The error message is the first problem found, naming its row and column;
    ``error.issues`` holds every problem of the failing check.
    """
    outcome = _parse(
        data,
        file_name,
        layout=layout,
        cumulative=cumulative,
        measure=measure,
        allow_negative_development=allow_negative_development,
    )
    if outcome.triangle is None:
        first, *rest = outcome.issues
        message = first.message
        if rest:
            message += MSG_MORE_PROBLEMS.format(count=len(rest))
        raise TriangleError(message, tuple(outcome.issues))
    return outcome.triangle


def validate_triangle(
    data: bytes,
    file_name: str,
    *,
    layout: Layout = "auto",
    cumulative: bool,
    measure: Measure,
    allow_negative_development: bool = False,
) -> dict:
    """Return a JSON-serialisable validation report of a triangle file; never raise for bad data.

    The report lists every check with its status (passed, failed, or skipped because an
    earlier check failed) and problems, plus, for a valid file, the origins, development
    ages, counts and the latest diagonal.
    """
    outcome = _parse(
        data,
        file_name,
        layout=layout,
        cumulative=cumulative,
        measure=measure,
        allow_negative_development=allow_negative_development,
    )
    failed = {issue.check for issue in outcome.issues}
    checks = []
    for name in CHECKS:
        problems = [issue.message for issue in outcome.issues if issue.check == name]
        if name in failed:
            status = "failed"
        elif name in outcome.checks_run:
            status = "passed"
        else:
            status = "skipped"
        checks.append(
            {
                "name": name,
                "description": CHECK_DESCRIPTIONS[name],
                "status": status,
                "problems": problems,
            }
        )
    triangle = outcome.triangle
    report = {
        "valid": triangle is not None,
        "file_name": file_name,
        "layout": outcome.layout,
        "measure": measure,
        "input": "cumulative" if cumulative else "incremental",
        "allow_negative_development": allow_negative_development,
        "checks": checks,
        "errors": [issue.message for issue in outcome.issues],
        "warnings": list(triangle.warnings) if triangle else [],
        "origins": [],
        "development_ages": [],
        "origin_count": 0,
        "development_age_count": 0,
        "cell_count": 0,
        "latest_diagonal": [],
        "latest_total": None,
    }
    if triangle is not None:
        diagonal = triangle.latest_diagonal()
        report.update(
            origins=list(triangle.origins),
            development_ages=list(triangle.development_ages),
            origin_count=triangle.origin_count,
            development_age_count=triangle.development_age_count,
            cell_count=triangle.cell_count,
            latest_diagonal=diagonal,
            latest_total=math.fsum(item["value"] for item in diagonal),
        )
    return report


# --- parsing -------------------------------------------------------------------------


@dataclass
class _Cell:
    value: float | None
    row: int
    column: str  # where the value is
    age_column: str  # where its development age is: the same column in the wide layout


@dataclass
class _Outcome:
    triangle: TriangleData | None = None
    issues: list[TriangleIssue] = field(default_factory=list)
    checks_run: set[str] = field(default_factory=set)
    layout: str | None = None


@dataclass
class _Grid:
    """Cells keyed by origin and age, with where each came from in the file."""

    layout: str
    origins: list[str]
    ages: list[int | float]
    cells: dict[str, dict[int | float, _Cell]]
    origin_rows: dict[str, int]
    origin_column: str
    age_columns: dict[int | float, str]
    data_rows: tuple[int, int]
    extra_cells: list[str] = field(default_factory=list)


class _Failed(Exception):
    """Stop parsing after a check that found problems."""


def _parse(
    data: bytes,
    file_name: str,
    *,
    layout: str,
    cumulative: bool,
    measure: str,
    allow_negative_development: bool,
) -> _Outcome:
    _check_option("layout", layout, LAYOUTS)
    _check_option("measure", measure, MEASURES)
    outcome = _Outcome()

    def run(check: str, issues: list[str]) -> None:
        outcome.checks_run.add(check)
        outcome.issues.extend(TriangleIssue(check, message) for message in issues)
        if issues:
            raise _Failed

    try:
        rows = _read_rows(data, file_name, run)
        grid = _build_grid(rows, file_name, layout, measure, outcome, run)
        run(CHECK_SIZE, _size_problems(grid))
        counts = _shape(grid, run)
        values, warnings = _accumulate(grid, counts, cumulative, allow_negative_development, run)
    except _Failed:
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
    )
    return outcome


def _check_option(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(MSG_BAD_OPTION.format(name=name, allowed=", ".join(allowed), value=value))


def _read_rows(data: bytes, file_name: str, run) -> list[tuple[int, list[object]]]:
    """Return the non-empty rows as (row number, cells), trailing empty cells dropped."""
    if not data or not data.strip():
        run(CHECK_FILE, [MSG_EMPTY_FILE.format(file=file_name)])
    suffix = file_name.lower().rsplit(".", 1)[-1] if "." in file_name else ""
    if data[:4] == b"PK\x03\x04" or suffix in ("xlsx", "xlsm"):
        raw_rows = _excel_rows(data, file_name, run)
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or suffix == "xls":
        run(CHECK_FILE, [MSG_OLD_EXCEL.format(file=file_name)])
    else:
        raw_rows = _csv_rows(data, file_name, run)
    rows = []
    for number, cells in enumerate(raw_rows, start=1):
        cells = [_clean(cell) for cell in cells]
        while cells and cells[-1] is None:
            cells.pop()
        if cells:
            rows.append((number, cells))
    if not rows:
        run(CHECK_FILE, [MSG_EMPTY_FILE.format(file=file_name)])
    return rows


def _excel_rows(data: bytes, file_name: str, run) -> list[tuple]:
    import openpyxl  # Imported here: the web app never needs it at start-up.

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return [tuple(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]
        finally:
            workbook.close()
    except Exception as error:  # openpyxl raises many types for a damaged workbook
        run(
            CHECK_FILE,
            [MSG_UNREADABLE_EXCEL.format(file=file_name, error=str(error) or type(error).__name__)],
        )
    return []


def _csv_rows(data: bytes, file_name: str, run) -> list[list[str]]:
    if b"\x00" in data:
        run(CHECK_FILE, [MSG_NOT_TEXT.format(file=file_name)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _clean(cell: object) -> object:
    """Return None for an empty cell, a stripped string, or the cell's own value."""
    if cell is None:
        return None
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _column_ref(index: int, header: object) -> str:
    if header is None:
        return _column_letter(index)
    return f"{_column_letter(index)} ({_text(header)!r})"


def _text(value: object) -> str:
    """Return a label for a cell value: 1981.0 → '1981', a date → ISO date."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _number(value: object) -> float:
    """Return a finite float, or raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.replace(" ", "").replace("\u00a0", "")
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        number = float(text)
    else:
        raise ValueError(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _age(value: object) -> int | float:
    """Return a development age from a number or a label such as '12', '12m' or 'Dev 12'."""
    try:
        number = _number(value)
    except ValueError:
        match = _EMBEDDED_NUMBER.match(value) if isinstance(value, str) else None
        if not match:
            raise
        number = float(match.group(1))
    return int(number) if number.is_integer() else number


def _normalise_header(value: object) -> str:
    return re.sub(r"[\s\-.]+", "_", _text(value).strip().lower()) if value is not None else ""


def _long_columns(header: list[object], measure: str) -> tuple[dict[str, int], list[str]]:
    """Return the long-layout column of each role and the roles not found.

    With both a paid and an incurred column, the one named after ``measure`` is the value.
    """
    names = [_normalise_header(cell) for cell in header]
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


def _build_grid(rows, file_name: str, layout: str, measure: str, outcome: _Outcome, run) -> _Grid:
    header_row, header = rows[0]
    data_rows = rows[1:]
    if not data_rows:
        run(CHECK_FILE, [MSG_NO_DATA_ROWS.format(row=header_row, file=file_name)])
    columns, missing = _long_columns(header, measure)
    if layout == "auto":
        layout = "long" if not missing else "wide"
    if layout == "long" and missing:
        found = ", ".join(repr(_text(cell)) for cell in header if cell is not None)
        run(
            CHECK_FILE,
            [
                MSG_LONG_COLUMNS_MISSING.format(
                    row=header_row, missing=", ".join(missing), found=found or "none"
                )
            ],
        )
    outcome.layout = layout
    run(CHECK_FILE, [])
    if layout == "long":
        return _long_grid(header, data_rows, columns, run)
    return _wide_grid(header_row, header, data_rows, run)


def _long_grid(header, data_rows, columns: dict[str, int], run) -> _Grid:
    origin_index, age_index, value_index = (
        columns["origin"],
        columns["development"],
        columns["value"],
    )
    origin_ref = _column_ref(origin_index, header[origin_index])
    age_ref = _column_ref(age_index, header[age_index])
    value_ref = _column_ref(value_index, header[value_index])
    problems: list[str] = []
    parsed: list[tuple[int, str, int | float, float]] = []
    for row, cells in data_rows:
        cells = cells + [None] * (max(columns.values()) + 1 - len(cells))
        raw_origin, raw_age, raw_value = cells[origin_index], cells[age_index], cells[value_index]
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
                age = _age(raw_age)
            except ValueError:
                problems.append(MSG_BAD_AGE.format(row=row, column=age_ref, value=_text(raw_age)))
                row_ok = False
        if raw_value is None:
            problems.append(MSG_EMPTY_VALUE.format(row=row, column=value_ref))
            row_ok = False
        else:
            try:
                value = _number(raw_value)
            except ValueError:
                problems.append(
                    MSG_NOT_A_NUMBER.format(row=row, column=value_ref, value=_text(raw_value))
                )
                row_ok = False
        if row_ok:
            parsed.append((row, _text(raw_origin), age, value))
    run(CHECK_NUMBERS, problems)

    cells_by_origin: dict[str, dict[int | float, _Cell]] = {}
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
                    age=_fmt(age),
                    first_row=row_cells[age].row,
                )
            )
            continue
        row_cells[age] = _Cell(value, row, value_ref, age_ref)
    run(CHECK_UNIQUE, problems)

    ages = sorted({age for row_cells in cells_by_origin.values() for age in row_cells})
    return _Grid(
        layout="long",
        origins=_sorted_origins(list(cells_by_origin)),
        ages=ages,
        cells=cells_by_origin,
        origin_rows=origin_rows,
        origin_column=origin_ref,
        age_columns=dict.fromkeys(ages, age_ref),
        data_rows=(data_rows[0][0], data_rows[-1][0]),
    )


def _wide_grid(header_row: int, header, data_rows, run) -> _Grid:
    problems: list[str] = []
    origin_ref = _column_ref(0, header[0])
    header_ages: list[tuple[int, int | float]] = []
    for index, raw in enumerate(header[1:], start=1):
        ref = _column_ref(index, raw)
        if raw is None:
            problems.append(
                MSG_EMPTY_AGE_HEADER.format(row=header_row, column=_column_letter(index))
            )
            continue
        try:
            header_ages.append((index, _age(raw)))
        except ValueError:
            problems.append(MSG_BAD_AGE.format(row=header_row, column=ref, value=_text(raw)))
    width = len(header)
    extra_cells: list[str] = []
    parsed_rows: list[tuple[int, str, dict[int, float | None]]] = []
    for row, cells in data_rows:
        if cells[0] is None:
            problems.append(MSG_EMPTY_ORIGIN.format(row=row, column=origin_ref))
            continue
        values: dict[int, float | None] = {}
        for index, raw in enumerate(cells[1:], start=1):
            if index >= width:
                if raw is not None:
                    extra_cells.append(
                        MSG_EXTRA_CELL.format(
                            row=row, column=_column_letter(index), value=_text(raw)
                        )
                    )
                continue
            if raw is None:
                continue
            try:
                values[index] = _number(raw)
            except ValueError:
                ref = _column_ref(index, header[index])
                problems.append(MSG_NOT_A_NUMBER.format(row=row, column=ref, value=_text(raw)))
        parsed_rows.append((row, _text(cells[0]), values))
    run(CHECK_NUMBERS, problems)

    first_column: dict[int | float, int] = {}
    for index, age in header_ages:
        if age in first_column:
            problems.append(
                MSG_DUPLICATE_AGE.format(
                    row=header_row,
                    column=_column_ref(index, header[index]),
                    age=_fmt(age),
                    first_column=_column_letter(first_column[age]),
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

    age_columns = {age: _column_ref(index, header[index]) for age, index in first_column.items()}
    cells_by_origin = {
        origin: {
            age: _Cell(values.get(index), row, age_columns[age], age_columns[age])
            for age, index in first_column.items()
        }
        for row, origin, values in parsed_rows
    }
    return _Grid(
        layout="wide",
        origins=_sorted_origins(list(cells_by_origin)),
        ages=sorted(first_column),
        cells=cells_by_origin,
        origin_rows=origin_rows,
        origin_column=origin_ref,
        age_columns=age_columns,
        data_rows=(data_rows[0][0], data_rows[-1][0]),
        extra_cells=extra_cells,
    )


def _sorted_origins(origins: list[str]) -> list[str]:
    """Sort numeric or ISO-date origins chronologically; keep file order otherwise."""
    try:
        return sorted(origins, key=float)
    except ValueError:
        pass
    try:
        return sorted(origins, key=dt.date.fromisoformat)
    except ValueError:
        return origins


def _size_problems(grid: _Grid) -> list[str]:
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
                ages=", ".join(_fmt(age) for age in grid.ages),
            )
        )
    for what, count, column in (
        ("origins", len(grid.origins), grid.origin_column),
        ("development ages", len(grid.ages), next(iter(grid.age_columns.values()), "B")),
    ):
        if count > MAX_PERIODS:
            problems.append(
                MSG_TOO_MANY_PERIODS.format(
                    row=first_row, column=column, count=count, what=what, limit=MAX_PERIODS
                )
            )
    return problems


def _shape(grid: _Grid, run) -> list[int]:
    """Check the triangle shape; return the number of observed ages of each origin."""
    problems: list[str] = list(grid.extra_cells)
    ages = grid.ages
    if grid.layout == "wide":
        for age in ages:
            if all(grid.cells[origin][age].value is None for origin in grid.origins):
                problems.append(
                    MSG_EMPTY_AGE_COLUMN.format(row=1, column=grid.age_columns[age], age=_fmt(age))
                )
    counts: list[int | None] = []
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
            continue
        count = len(present)
        if present != ages[:count]:
            gap = next(age for age in ages if age not in present)
            after = next(age for age in present if age > gap)
            cell = row_cells[after]
            problems.append(
                MSG_VALUE_AFTER_GAP.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=_fmt(after),
                    gap_age=_fmt(gap),
                    gap_column=grid.age_columns[gap].split(" ")[0],
                )
            )
            counts.append(None)
            continue
        counts.append(count)
    if problems:
        run(CHECK_SHAPE, problems)

    n_ages = len(ages)
    diagonals = [count + i for i, count in enumerate(counts) if count < n_ages]
    if not diagonals:
        last = grid.origins[-1]
        run(
            CHECK_SHAPE,
            [
                MSG_NO_FUTURE_CELLS.format(
                    row=grid.origin_rows[last], column=grid.origin_column, count=n_ages
                )
            ],
        )
    # The latest diagonal is the one most origins agree on; ties go to the later origin so
    # a single malformed recent row does not shift every expectation.
    frequency = Counter(diagonals)
    best = max(frequency.values())
    diagonal = next(d for d in reversed(diagonals) if frequency[d] == best)
    for i, (origin, count) in enumerate(zip(grid.origins, counts, strict=True)):
        expected = min(n_ages, diagonal - i)
        row_cells = grid.cells[origin]
        if count > expected:
            age = ages[max(expected, 0)]
            cell = row_cells[age]
            allowed = _fmt(ages[expected - 1]) if expected >= 1 else "none"
            problems.append(
                MSG_BEYOND_DIAGONAL.format(
                    row=cell.row,
                    column=cell.age_column,
                    origin=origin,
                    age=_fmt(age),
                    allowed=allowed,
                )
            )
        elif count < expected:
            age = ages[count]
            if grid.layout == "wide":
                cell = row_cells[age]
                problems.append(
                    MSG_MISSING_DIAGONAL.format(
                        row=cell.row, column=cell.age_column, origin=origin, age=_fmt(age)
                    )
                )
            else:
                last_cell = row_cells[ages[count - 1]]
                problems.append(
                    MSG_MISSING_DIAGONAL_LONG.format(
                        row=last_cell.row,
                        column=grid.age_columns[age],
                        origin=origin,
                        last_age=_fmt(ages[count - 1]),
                        age=_fmt(age),
                    )
                )
    run(CHECK_SHAPE, problems)
    return counts


def _accumulate(
    grid: _Grid, counts: list[int], cumulative: bool, allow_negative: bool, run
) -> tuple[tuple[tuple[float, ...], ...], list[str]]:
    """Return cumulative rows; check (or, when allowed, note) negative development."""
    problems: list[str] = []
    warnings: list[str] = []
    rows: list[tuple[float, ...]] = []
    for origin, count in zip(grid.origins, counts, strict=True):
        cells = [grid.cells[origin][age] for age in grid.ages[:count]]
        running = 0.0
        values: list[float] = []
        for j, cell in enumerate(cells):
            previous = running
            running = cell.value if cumulative else running + cell.value
            values.append(running)
            if running == 0:
                warnings.append(MSG_ZERO_VALUES.format(origin=origin, age=_fmt(grid.ages[j])))
            args = {
                "row": cell.row,
                "column": cell.column,
                "origin": origin,
                "age": _fmt(grid.ages[j]),
                "value": _fmt(cell.value),
            }
            if j == 0 and running < 0:
                message = MSG_NEGATIVE_FIRST.format(**args)
            elif j > 0 and running < previous:
                if cumulative:
                    message = MSG_NEGATIVE_CUMULATIVE.format(
                        previous=_fmt(previous), previous_age=_fmt(grid.ages[j - 1]), **args
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


def _fmt(number: float | int) -> str:
    """Format a number for a message: integral values without a decimal point."""
    if isinstance(number, float) and number.is_integer():
        return str(int(number))
    return str(number)
