"""The reserves as an Excel workbook: reserves, development factors, options, and more.

Sheets: "Reserves" (the table with its totals row), "Development factors" (each
period's selected factor, its source and reason, Mack's sigma), "Options" (every choice
and warning); when used: "Excluded points", "Actual vs expected", "Simulation".
The bytes are deterministic (fixed timestamps and zip dates). openpyxl is imported
inside the function.
"""

from __future__ import annotations

import io
import json
import zipfile

from workflows.reserving.outputs.files import FIXED_TIMESTAMP, FixedDateZipFile
from workflows.reserving.outputs.tables import RATIO_COLUMNS, reserve_columns, reserve_rows
from workflows.reserving.results import ReserveResult

HEADINGS = {
    "origin": "Origin",
    "development_age": "Development age",
    "latest": "Latest",
    "cdf": "CDF",
    "ultimate": "Ultimate",
    "ibnr": "IBNR",
    "mack_se": "Mack S.E.",
    "cv": "CV",
    "exposure": "Exposure",
    "apriori_loss_ratio": "A-priori loss ratio",
    "expected_ultimate": "Expected ultimate",
    "ibnr_mean": "IBNR mean",
    "ibnr_std": "IBNR std. dev.",
}
AMOUNT_FORMAT = "#,##0.00"
RATIO_FORMAT = "0.000000"
PERCENT_FORMAT = "0.00%"


def reserve_result_xlsx(result: ReserveResult) -> bytes:
    """Return the result as an Excel workbook (deterministic bytes)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.writer.excel import ExcelWriter

    bold = Font(bold=True)
    workbook = Workbook()
    _reserves(workbook.active, result, bold)
    _factors(workbook.create_sheet("Development factors"), result, bold)
    _options(workbook.create_sheet("Options"), result, bold)
    if result.excluded_points:
        _table(
            workbook.create_sheet("Excluded points"),
            ["Origin", "Period", "From age", "To age", "Link ratio", "Left out by"],
            [
                [p.origin, p.period, p.from_age, p.to_age, p.ratio, p.reason]
                for p in result.excluded_points
            ],
            bold,
            {4: RATIO_FORMAT},
        )
    if result.actual_vs_expected is not None:
        _actual_vs_expected(workbook.create_sheet("Actual vs expected"), result, bold)
    if result.bootstrap is not None:
        summary = result.bootstrap.to_dict()
        _table(
            workbook.create_sheet("Simulation"),
            ["Setting", "Value"],
            [[key, _plain(value)] for key, value in summary.items()],
            bold,
            {},
        )
    workbook.properties.creator = "AI Actuary back office"
    workbook.properties.created = FIXED_TIMESTAMP
    workbook.properties.modified = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter rather than Workbook.save: save() stamps the current time as "modified".
    ExcelWriter(workbook, FixedDateZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    return buffer.getvalue()


def _reserves(sheet, result: ReserveResult, bold) -> None:
    sheet.title = "Reserves"
    columns = reserve_columns(result)
    sheet.append([HEADINGS.get(column, column) for column in columns])
    for row in reserve_rows(result):
        sheet.append([row[column] for column in columns])
    for cell in sheet[1] + sheet[sheet.max_row]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for column, cell in zip(columns, row, strict=True):
            if column in ("origin", "development_age"):
                continue
            if column == "cv":
                cell.number_format = PERCENT_FORMAT
            elif column in RATIO_COLUMNS:
                cell.number_format = RATIO_FORMAT
            else:
                cell.number_format = AMOUNT_FORMAT
    for index in range(len(columns)):
        sheet.column_dimensions[_letter(index)].width = 12 if index == 0 else 16
    sheet.freeze_panes = "A2"


def _factors(sheet, result: ReserveResult, bold) -> None:
    headings = [
        "Period",
        "From age",
        "To age",
        "LDF",
        "CDF",
        "Source",
        "Average",
        "Reason",
        "Ratios used",
        "Computed average",
        "Sigma",
        "Std. error",
    ]
    rows = [
        [
            f.period,
            f.from_age,
            f.to_age if f.to_age is not None else "Ult",
            f.ldf,
            f.cdf,
            f.source,
            f.average,
            f.reason,
            f.n_ratios,
            f.computed,
            f.sigma,
            f.std_err,
        ]
        for f in result.development_factors
    ]
    _table(sheet, headings, rows, bold, {3: RATIO_FORMAT, 4: RATIO_FORMAT, 9: RATIO_FORMAT})
    sheet.column_dimensions["H"].width = 40


def _options(sheet, result: ReserveResult, bold) -> None:
    rows = [["method", result.method], ["measure", result.measure]]
    rows += [[f"grain.{key}", _plain(value)] for key, value in result.grain.items()]
    rows += [[key, _plain(value)] for key, value in result.options.items()]
    rows += [["warning", warning] for warning in result.warnings]
    _table(sheet, ["Option", "Value"], rows, bold, {})
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 60


def _actual_vs_expected(sheet, result: ReserveResult, bold) -> None:
    comparison = result.actual_vs_expected
    rows = [
        [
            o.origin,
            o.prior_age,
            o.current_age,
            o.prior_latest,
            o.current_latest,
            o.actual,
            o.expected,
            o.difference,
            o.actual_to_expected,
            o.note,
        ]
        for o in comparison.origins
    ]
    rows.append(
        [
            "Total",
            None,
            None,
            None,
            None,
            comparison.actual,
            comparison.expected,
            comparison.difference,
            comparison.actual_to_expected,
            "",
        ]
    )
    headings = [
        "Origin",
        "Prior age",
        "Current age",
        "Prior latest",
        "Current latest",
        "Actual emergence",
        "Expected emergence",
        "Actual − expected",
        "Actual / expected",
        "Note",
    ]
    formats = {3: AMOUNT_FORMAT, 4: AMOUNT_FORMAT, 5: AMOUNT_FORMAT, 6: AMOUNT_FORMAT}
    formats.update({7: AMOUNT_FORMAT, 8: PERCENT_FORMAT})
    _table(sheet, headings, rows, bold, formats)
    for cell in sheet[sheet.max_row]:
        cell.font = bold


def _table(sheet, headings, rows, bold, formats: dict[int, str]) -> None:
    sheet.append(headings)
    for row in rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for index, number_format in formats.items():
            if index < len(row):
                row[index].number_format = number_format


def _plain(value) -> object:
    """Return an option as a cell value: none, a number, text, or JSON for lists and dicts."""
    if value is None:
        return "none"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return value


def _letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
