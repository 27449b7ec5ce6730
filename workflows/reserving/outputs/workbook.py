"""The reserves as an Excel working paper a firm can file: header, triangle, selections, results.

Sheets:

- "Reserves": a header block (client, engagement, valuation date, run, method, author,
  status DRAFT or APPROVED with the approver and date), then the results by origin with
  live formulas: the CDF read from the selections (when the triangle is given), ultimate
  = latest × CDF (chain ladder, bootstrap; Bornhuetter-Ferguson and Cape Cod: latest +
  (1 − 1/CDF) × expected ultimate; Benktander its iterated form), IBNR = ultimate −
  latest, and totals as SUMs;
- with the triangle: "Triangle" (cumulative values, and the incremental ones as
  formulas), "Link ratios" (formulas on the triangle, the points left out of the
  averages struck through and listed with why), "Averages and selections" (the
  candidate averages, the selected factors with their sources and reasons, and the
  CDFs as a running product of the selected factors);
- "Development factors" (each period's factor, source, reason, Mack's sigma),
  "Options" (every choice and warning), "Provenance" (when given: what the run read and
  ran with); when used: "Excluded points", "Actual vs expected", "Simulation".

The engine knows nothing of clients or approvals: the caller passes a
``WorkingPaperHeader``. The bytes are deterministic (fixed timestamps and zip dates)
for the same inputs. openpyxl is imported inside the functions.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from workflows.reserving.outputs.files import FIXED_TIMESTAMP, FixedDateZipFile
from workflows.reserving.results import ReserveResult, percentile_key
from workflows.reserving.triangles.data import TriangleData

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
TITLE = "Reserving working paper"
STATUS_DRAFT = "DRAFT"
STATUS_APPROVED = "APPROVED"
# The first row of the results table on "Reserves" (below the header block).
RESULTS_HEADER_ROW = 15
SELECTIONS = "Averages and selections"
# The rows of "Averages and selections": headings, candidates from row 2, then these.
SUMMED = ("latest", "ultimate", "ibnr", "exposure", "expected_ultimate")
LEFT_OUT_TEXT = {
    "exclude": "excluded by the actuary",
    "drop_high": "dropped as one of the highest",
    "drop_low": "dropped as one of the lowest",
    "medial_high": "the medial average's highest",
    "medial_low": "the medial average's lowest",
    "n_periods": "older than the latest n_periods origins",
}


@dataclass(frozen=True)
class WorkingPaperHeader:
    """Who and what the working paper is for: given by the caller (the engine has no users).

    ``status`` is DRAFT until the result is approved; ``provenance`` lists (what, value)
    pairs shown on their own sheet (the input's file and SHA-256, the parameters' hash,
    the code and library versions).
    """

    client: str = ""
    engagement: str = ""
    valuation_date: str = ""
    run_id: str = ""
    run_name: str = ""
    author: str = ""
    status: str = STATUS_DRAFT
    approver: str = ""
    approved_on: str = ""
    provenance: tuple[tuple[str, str], ...] = ()


def reserve_result_xlsx(
    result: ReserveResult,
    *,
    triangle: TriangleData | None = None,
    header: WorkingPaperHeader | None = None,
) -> bytes:
    """Return the result as an Excel working paper (deterministic bytes)."""
    return working_paper_xlsx(result.to_dict(), triangle=triangle, header=header)


def working_paper_xlsx(
    result: dict[str, Any],
    *,
    triangle: TriangleData | None = None,
    header: WorkingPaperHeader | None = None,
) -> bytes:
    """Return a result in its ``to_dict()`` shape as an Excel working paper."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.writer.excel import ExcelWriter

    header = header or WorkingPaperHeader()
    bold = Font(bold=True)
    workbook = Workbook()
    cdf_cells: dict[Any, str] = {}
    reserves = workbook.active
    reserves.title = "Reserves"
    if triangle is not None:
        from workflows.reserving.working_paper import working_paper

        paper = working_paper(triangle, result)
        _triangle(workbook.create_sheet("Triangle"), paper, bold)
        _link_ratios(workbook.create_sheet("Link ratios"), paper, bold)
        cdf_cells = _selections(workbook.create_sheet(SELECTIONS), paper, bold)
    _reserves(reserves, result, header, bold, cdf_cells)
    _factors(workbook.create_sheet("Development factors"), result, bold)
    _options(workbook.create_sheet("Options"), result, bold)
    if header.provenance:
        _table(workbook.create_sheet("Provenance"), ["What", "Value"], header.provenance, bold, {})
        workbook["Provenance"].column_dimensions["A"].width = 28
        workbook["Provenance"].column_dimensions["B"].width = 80
    if result.get("excluded_points"):
        _table(
            workbook.create_sheet("Excluded points"),
            ["Origin", "Period", "From age", "To age", "Link ratio", "Left out by"],
            [
                [p["origin"], p["period"], p["from_age"], p["to_age"], p["ratio"], p["reason"]]
                for p in result["excluded_points"]
            ],
            bold,
            {4: RATIO_FORMAT},
        )
    if result.get("actual_vs_expected"):
        _actual_vs_expected(workbook.create_sheet("Actual vs expected"), result, bold)
    if result.get("bootstrap"):
        _table(
            workbook.create_sheet("Simulation"),
            ["Setting", "Value"],
            [[key, _plain(value)] for key, value in result["bootstrap"].items()],
            bold,
            {},
        )
    workbook.calculation.fullCalcOnLoad = True
    workbook.properties.creator = "AI Actuary back office"
    workbook.properties.title = f"{TITLE}: {header.run_name}" if header.run_name else TITLE
    workbook.properties.created = FIXED_TIMESTAMP
    workbook.properties.modified = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter rather than Workbook.save: save() stamps the current time as "modified".
    ExcelWriter(workbook, FixedDateZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    return buffer.getvalue()


def result_columns(result: dict[str, Any]) -> tuple[str, ...]:
    """Return the columns of the results table of this result's method."""
    columns = ["origin", "development_age", "latest", "cdf", "ultimate", "ibnr", "mack_se", "cv"]
    totals = result.get("totals") or {}
    if totals.get("exposure") is not None:
        columns += ["exposure", "apriori_loss_ratio", "expected_ultimate"]
    bootstrap = result.get("bootstrap")
    if bootstrap:
        columns += ["ibnr_mean", "ibnr_std"]
        columns += [f"p{percentile_key(level)}" for level in bootstrap["percentile_levels"]]
    return tuple(columns)


def _reserves(sheet, result, header: WorkingPaperHeader, bold, cdf_cells) -> None:
    from openpyxl.styles import Font

    sheet["A1"] = TITLE
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["C1"] = header.status
    colour = "C00000" if header.status != STATUS_APPROVED else "00703C"
    sheet["C1"].font = Font(bold=True, size=14, color=colour)
    approved = header.status == STATUS_APPROVED
    facts = [
        ("Client", header.client),
        ("Engagement", header.engagement),
        ("Valuation date", header.valuation_date),
        ("Run", header.run_name),
        ("Run id", header.run_id),
        ("Method", _method_text(result)),
        ("Measure", result.get("measure") or ""),
        ("Author", header.author),
        ("Status", header.status),
        ("Approved by", header.approver if approved else "not yet approved"),
        ("Approved on", header.approved_on if approved else ""),
    ]
    for offset, (label, value) in enumerate(facts, start=3):
        sheet.cell(row=offset, column=1, value=label).font = bold
        sheet.cell(row=offset, column=2, value=value)

    columns = result_columns(result)
    letter = {column: _letter(index) for index, column in enumerate(columns)}
    top = RESULTS_HEADER_ROW
    for index, column in enumerate(columns):
        cell = sheet.cell(row=top, column=index + 1, value=_heading(column))
        cell.font = bold
    origins = result.get("origins") or []
    first, last = top + 1, top + len(origins)
    for number, origin in enumerate(origins):
        row = first + number
        values = _figures(columns, origin)
        values["cdf"] = (
            f"='{SELECTIONS}'!{cdf_cells[origin['development_age']]}"
            if (origin["development_age"] in cdf_cells)
            else origin["cdf"]
        )
        values["ultimate"] = _ultimate_formula(result, letter, row)
        values["ibnr"] = f"={letter['ultimate']}{row}-{letter['latest']}{row}"
        for index, column in enumerate(columns):
            sheet.cell(row=row, column=index + 1, value=values[column])
    total = last + 1
    totals = _figures(columns, {**(result.get("totals") or {}), "origin": "Total"})
    totals["development_age"] = None
    totals["apriori_loss_ratio"] = None
    for column in SUMMED:
        if column in letter and origins:
            totals[column] = f"=SUM({letter[column]}{first}:{letter[column]}{last})"
    if origins:
        totals["cdf"] = f"={letter['ultimate']}{total}/{letter['latest']}{total}"
    for index, column in enumerate(columns):
        cell = sheet.cell(row=total, column=index + 1, value=totals[column])
        cell.font = bold
    for row in sheet.iter_rows(min_row=first, max_row=total):
        for column, cell in zip(columns, row, strict=True):
            cell.number_format = _format(column)
    sheet.column_dimensions["A"].width = 18
    sheet.column_dimensions["B"].width = 40
    for index in range(2, len(columns)):
        sheet.column_dimensions[_letter(index)].width = 16
    sheet.freeze_panes = f"B{first}"


def _ultimate_formula(result, letter, row) -> str:
    """Return the ultimate of the method as a formula on the row's latest, CDF, expected."""
    latest, cdf = f"{letter['latest']}{row}", f"{letter['cdf']}{row}"
    method = result.get("method")
    if method in ("bornhuetter_ferguson", "cape_cod") and "expected_ultimate" in letter:
        return f"={latest}+(1-1/{cdf})*{letter['expected_ultimate']}{row}"
    if method == "benktander" and "expected_ultimate" in letter:
        n = int((result.get("options") or {}).get("n_iterations") or 2)
        unreported = f"(1-1/{cdf})"
        expected = f"{letter['expected_ultimate']}{row}"
        return f"={latest}*{cdf}*(1-{unreported}^{n})+{unreported}^{n}*{expected}"
    return f"={latest}*{cdf}"


def _triangle(sheet, paper, bold) -> None:
    ages = paper.development_ages
    sheet.append(["Cumulative", *ages])
    for origin, row in zip(paper.origins, paper.cumulative, strict=True):
        sheet.append([origin, *row])
    gap = len(paper.origins) + 3
    sheet.cell(row=gap, column=1, value="Incremental").font = bold
    for index, age in enumerate(ages):
        sheet.cell(row=gap, column=index + 2, value=age).font = bold
    for i, (origin, row) in enumerate(zip(paper.origins, paper.cumulative, strict=True)):
        target = gap + 1 + i
        sheet.cell(row=target, column=1, value=origin).font = bold
        for k, value in enumerate(row):
            if value is None:
                continue
            here = f"{_letter(k + 1)}{i + 2}"
            before = f"{_letter(k)}{i + 2}"
            formula = f"={here}" if k == 0 or row[k - 1] is None else f"={here}-{before}"
            cell = sheet.cell(row=target, column=k + 2, value=formula)
            cell.number_format = AMOUNT_FORMAT
    _grid_style(sheet, len(paper.origins), len(ages), bold, AMOUNT_FORMAT)


def _link_ratios(sheet, paper, bold) -> None:
    from openpyxl.styles import Font, PatternFill

    struck = Font(strike=True, color="C00000")
    fill = PatternFill("solid", fgColor="FDE2E2")
    sheet.append(["Link ratios", *paper.periods])
    left_out = []
    for i, (origin, cells) in enumerate(zip(paper.origins, paper.link_ratios, strict=True)):
        sheet.cell(row=i + 2, column=1, value=origin)
        for k, cell in enumerate(cells):
            if cell.value is None:
                continue
            formula = f"=Triangle!{_letter(k + 2)}{i + 2}/Triangle!{_letter(k + 1)}{i + 2}"
            target = sheet.cell(row=i + 2, column=k + 2, value=formula)
            if cell.left_out_by:
                target.font, target.fill = struck, fill
                left_out.append((origin, paper.periods[k], cell.value, cell.left_out_by))
    _grid_style(sheet, len(paper.origins), len(paper.periods), bold, RATIO_FORMAT)
    start = len(paper.origins) + 3
    sheet.cell(row=start, column=1, value="Left out of the averages (struck through above)")
    sheet.cell(row=start, column=1).font = bold
    headings = ("Origin", "Period", "Link ratio", "Why")
    for index, heading in enumerate(headings):
        sheet.cell(row=start + 1, column=index + 1, value=heading).font = bold
    for offset, (origin, period, value, why) in enumerate(left_out, start=start + 2):
        sheet.cell(row=offset, column=1, value=origin)
        sheet.cell(row=offset, column=2, value=period)
        sheet.cell(row=offset, column=3, value=value).number_format = RATIO_FORMAT
        sheet.cell(row=offset, column=4, value=LEFT_OUT_TEXT.get(why, why))
    if not left_out:
        sheet.cell(row=start + 2, column=1, value="none: every defined link ratio is used")


def _selections(sheet, paper, bold) -> dict[Any, str]:
    """Write the candidates, the selection and the CDFs; return the CDF cell of each age."""
    selected = list(paper.selected)
    labels = [factor["period"] for factor in selected]
    sheet.append(["Average", *labels])
    for candidate in paper.candidates:
        sheet.append([candidate.label, *candidate.values])
    selected_row = len(paper.candidates) + 3
    rows = {
        "Selected factor": [factor["ldf"] for factor in selected],
        "Source": [_source_text(factor) for factor in selected],
        "Reason": [factor.get("reason") or "" for factor in selected],
        "Average of the data": [factor.get("computed") for factor in selected],
        "Ratios used": [factor.get("n_ratios") for factor in selected],
    }
    for offset, (label, values) in enumerate(rows.items()):
        sheet.cell(row=selected_row + offset, column=1, value=label).font = bold
        for index, value in enumerate(values):
            sheet.cell(row=selected_row + offset, column=index + 2, value=value)
    cdf_row = selected_row + len(rows)
    sheet.cell(row=cdf_row, column=1, value="CDF to ultimate").font = bold
    cells: dict[Any, str] = {}
    last = len(selected) - 1
    for index, factor in enumerate(selected):
        here = _letter(index + 1)
        if index == last:
            formula = f"={here}{selected_row}"
        else:
            formula = f"={here}{selected_row}*{_letter(index + 2)}{cdf_row}"
        cell = sheet.cell(row=cdf_row, column=index + 2, value=formula)
        cell.number_format = RATIO_FORMAT
        cell.font = bold
        cells[factor["from_age"]] = f"{here}{cdf_row}"
    for row in sheet.iter_rows(min_row=2, max_row=selected_row, min_col=2):
        for cell in row:
            cell.number_format = RATIO_FORMAT
    for cell in sheet[selected_row]:
        cell.font = bold
    for cell in sheet[1]:
        cell.font = bold
    sheet.column_dimensions["A"].width = 24
    for index in range(len(selected)):
        sheet.column_dimensions[_letter(index + 1)].width = 13
    sheet.freeze_panes = "B2"
    return cells


def _grid_style(sheet, rows: int, columns: int, bold, number_format: str) -> None:
    for cell in sheet[1]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2, max_row=rows + 1, max_col=columns + 1):
        row[0].font = bold
        for cell in row[1:]:
            cell.number_format = number_format
    sheet.column_dimensions["A"].width = 14
    for index in range(columns):
        sheet.column_dimensions[_letter(index + 1)].width = 13
    sheet.freeze_panes = "B2"


def _factors(sheet, result, bold) -> None:
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
            f["period"],
            f["from_age"],
            f["to_age"] if f["to_age"] is not None else "Ult",
            f["ldf"],
            f["cdf"],
            f["source"],
            f["average"],
            f["reason"],
            f["n_ratios"],
            f["computed"],
            f["sigma"],
            f["std_err"],
        ]
        for f in result.get("development_factors") or ()
    ]
    _table(sheet, headings, rows, bold, {3: RATIO_FORMAT, 4: RATIO_FORMAT, 9: RATIO_FORMAT})
    sheet.column_dimensions["H"].width = 40


def _options(sheet, result, bold) -> None:
    rows = [["method", result.get("method")], ["measure", result.get("measure")]]
    rows += [[f"grain.{key}", _plain(value)] for key, value in (result.get("grain") or {}).items()]
    rows += [[key, _plain(value)] for key, value in (result.get("options") or {}).items()]
    rows += [["warning", warning] for warning in result.get("warnings") or ()]
    _table(sheet, ["Option", "Value"], rows, bold, {})
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 60


def _actual_vs_expected(sheet, result, bold) -> None:
    comparison = result["actual_vs_expected"]
    keys = (
        "origin",
        "prior_age",
        "current_age",
        "prior_latest",
        "current_latest",
        "actual",
        "expected",
        "difference",
        "actual_to_expected",
        "note",
    )
    rows = [[row[key] for key in keys] for row in comparison["origins"]]
    totals = comparison["totals"]
    rows.append(
        [
            "Total",
            None,
            None,
            None,
            None,
            totals["actual"],
            totals["expected"],
            totals["difference"],
            totals["actual_to_expected"],
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
    sheet.append(list(headings))
    for row in rows:
        sheet.append(list(row))
    for cell in sheet[1]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for index, number_format in formats.items():
            if index < len(row):
                row[index].number_format = number_format


def _figures(columns, figures: dict[str, Any]) -> dict[str, Any]:
    percentiles = figures.get("percentiles") or {}
    row = {}
    for column in columns:
        if column.startswith("p") and column[1:] in percentiles:
            row[column] = percentiles[column[1:]]
        else:
            row[column] = figures.get(column)
    return row


def _heading(column: str) -> str:
    if column in HEADINGS:
        return HEADINGS[column]
    return f"IBNR P{column[1:]}" if column.startswith("p") else column


def _format(column: str) -> str:
    if column in ("origin", "development_age"):
        return "General"
    if column in ("cv", "apriori_loss_ratio"):
        return PERCENT_FORMAT
    if column == "cdf":
        return RATIO_FORMAT
    return AMOUNT_FORMAT


def _method_text(result: dict[str, Any]) -> str:
    options = result.get("options") or {}
    average = options.get("average")
    method = str(result.get("method") or "")
    return f"{method} ({average} average)" if average else method


def _source_text(factor: dict[str, Any]) -> str:
    source = factor.get("source") or ""
    if source == "average":
        return f"{factor.get('average')} average"
    return source


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
