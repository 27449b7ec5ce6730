"""Exposure by origin (earned premium, payroll, vehicle years …) read from CSV or Excel.

The file has a header row with an origin column and an exposure column, found by their
headers (aliases below); a file of just two columns is read as origin, exposure. Every
problem names its row and column, as the triangle reader does.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflows.reserving.triangles import rows as cells
from workflows.reserving.triangles.data import TriangleData
from workflows.reserving.triangles.grain import origin_grain
from workflows.reserving.triangles.layouts import ORIGIN_ALIASES

EXPOSURE_ALIASES = (
    "exposure",
    "exposures",
    "earned_premium",
    "net_earned_premium",
    "gross_earned_premium",
    "premium",
    "premiums",
    "ep",
    "written_premium",
    "payroll",
    "vehicle_years",
    "policies",
    "policy_count",
    "value",
    "amount",
)

MSG_EXPOSURE_FILE = "exposure file {file!r}: {problem}"
MSG_EXPOSURE_COLUMNS = (
    "row {row}: an exposure file needs an origin column and an exposure column (e.g. "
    "'origin' and 'earned_premium'); headers found: {found}"
)
MSG_EXPOSURE_EMPTY = "row {row}, column {column}: the {what} is empty"
MSG_EXPOSURE_NUMBER = "row {row}, column {column}: {value!r} is not a number"
MSG_EXPOSURE_NEGATIVE = "row {row}, column {column}: the exposure {value} is negative"
MSG_EXPOSURE_DUPLICATE = (
    "row {row}, column {column}: origin {origin} is given twice (first in row {first_row})"
)
MSG_EXPOSURE_NO_ROWS = "the exposure file {file!r} has no data rows"
MSG_EXPOSURE_UNKNOWN = (
    "the exposure has origin(s) {origins} that are not in the triangle (its origins: "
    "{triangle_origins})"
)
MSG_EXPOSURE_MISSING = "the exposure has no value for the triangle's origin(s) {origins}"


class ExposureError(ValueError):
    """An exposure file that cannot be used; the message names the row and column."""


@dataclass(frozen=True)
class ExposureData:
    """Exposure by origin label, in file order."""

    origins: tuple[str, ...]
    values: tuple[float, ...]
    file_name: str = ""
    column: str = ""

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.origins, self.values, strict=True))


def read_exposure(data: bytes, file_name: str) -> ExposureData:
    """Return the exposure in ``data`` (CSV or .xlsx), or raise ExposureError."""
    problems: list[str] = []

    def report(issues: list[str]) -> None:
        if issues:
            raise ExposureError(MSG_EXPOSURE_FILE.format(file=file_name, problem=issues[0]))

    rows = cells.read_rows(data, file_name, report)
    (header_row, header), data_rows = rows[0], rows[1:]
    names = [cells.normalise_header(cell) for cell in header]
    origin_index = next((names.index(a) for a in ORIGIN_ALIASES if a in names), None)
    exposure_index = next((names.index(a) for a in EXPOSURE_ALIASES if a in names), None)
    if (origin_index is None or exposure_index is None) and len(header) == 2:
        origin_index, exposure_index = 0, 1
    if origin_index is None or exposure_index is None or origin_index == exposure_index:
        found = ", ".join(repr(cells.text(cell)) for cell in header if cell is not None)
        raise ExposureError(MSG_EXPOSURE_COLUMNS.format(row=header_row, found=found or "none"))
    if not data_rows:
        raise ExposureError(MSG_EXPOSURE_NO_ROWS.format(file=file_name))
    origin_ref = cells.column_ref(origin_index, header[origin_index])
    exposure_ref = cells.column_ref(exposure_index, header[exposure_index])
    origins: list[str] = []
    values: list[float] = []
    first_rows: dict[str, int] = {}
    for row, row_cells in data_rows:
        row_cells = row_cells + [None] * (max(origin_index, exposure_index) + 1 - len(row_cells))
        raw_origin, raw_value = row_cells[origin_index], row_cells[exposure_index]
        if raw_origin is None and raw_value is None:
            continue
        if raw_origin is None:
            problems.append(MSG_EXPOSURE_EMPTY.format(row=row, column=origin_ref, what="origin"))
            continue
        if raw_value is None:
            problems.append(
                MSG_EXPOSURE_EMPTY.format(row=row, column=exposure_ref, what="exposure")
            )
            continue
        try:
            value = cells.number(raw_value)
        except ValueError:
            problems.append(
                MSG_EXPOSURE_NUMBER.format(
                    row=row, column=exposure_ref, value=cells.text(raw_value)
                )
            )
            continue
        if value < 0:
            problems.append(
                MSG_EXPOSURE_NEGATIVE.format(row=row, column=exposure_ref, value=cells.fmt(value))
            )
            continue
        origin = cells.text(raw_origin)
        if origin in first_rows:
            problems.append(
                MSG_EXPOSURE_DUPLICATE.format(
                    row=row, column=origin_ref, origin=origin, first_row=first_rows[origin]
                )
            )
            continue
        first_rows[origin] = row
        origins.append(origin)
        values.append(value)
    if problems:
        report(problems)
    return ExposureData(
        origins=tuple(origins),
        values=tuple(values),
        file_name=file_name,
        column=cells.text(header[exposure_index]),
    )


def match_exposure(exposure: ExposureData, triangle: TriangleData) -> dict[str, float]:
    """Return the exposure of each of the triangle's origins, or raise naming the mismatch.

    Labels match as written, or, when both carry a calendar grain, by the period they
    start ("2019Q1" and "2019-Q1" are one quarter).
    """
    given = exposure.as_dict()
    if set(given) != set(triangle.origins):
        ours, theirs = origin_grain(list(triangle.origins)), origin_grain(list(given))
        if ours and theirs and ours.grain == theirs.grain:
            by_start = {theirs.starts[label]: value for label, value in given.items()}
            renamed = {
                origin: by_start[ours.starts[origin]]
                for origin in triangle.origins
                if ours.starts[origin] in by_start
            }
            if len(renamed) == len(given) == triangle.origin_count:
                return renamed
    unknown = [origin for origin in given if origin not in triangle.origins]
    if unknown:
        raise ExposureError(
            MSG_EXPOSURE_UNKNOWN.format(
                origins=", ".join(unknown), triangle_origins=", ".join(triangle.origins)
            )
        )
    missing = [origin for origin in triangle.origins if origin not in given]
    if missing:
        raise ExposureError(MSG_EXPOSURE_MISSING.format(origins=", ".join(missing)))
    return {origin: given[origin] for origin in triangle.origins}
