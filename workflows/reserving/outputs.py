"""Result files of the reserving workflows: CSV, Excel and PNG charts.

Every writer is deterministic, because a replay compares output hashes: the same
result gives the same bytes. CSV numbers are written with fixed decimals (so noise in
the last binary digit cannot change the file); the Excel writer fixes the workbook
timestamps and the zip entry dates; PNGs carry no software or date metadata.
matplotlib and openpyxl are imported inside the functions.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import os
import zipfile

from workflows.reserving.mack import ReserveResult

RESERVE_COLUMNS = (
    "origin",
    "development_age",
    "latest",
    "cdf",
    "ultimate",
    "ibnr",
    "mack_se",
    "cv",
)
TOTAL_LABEL = "Total"
AMOUNT_DECIMALS = 2
RATIO_DECIMALS = 6
# Workbook timestamps and zip entry dates: fixed so the same result gives the same bytes.
FIXED_TIMESTAMP = dt.datetime(2000, 1, 1)
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
PNG_METADATA = {"Software": None}
CHART_DPI = 100
HEATMAP_COLOUR_CAP = math.log(3.0)


def reserve_result_csv(result: ReserveResult) -> bytes:
    """Return the per-origin results and a totals row as UTF-8 CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RESERVE_COLUMNS)
    for origin in result.origins:
        writer.writerow(
            [
                origin.origin,
                _age_text(origin.development_age),
                _fixed(origin.latest, AMOUNT_DECIMALS),
                _fixed(origin.cdf, RATIO_DECIMALS),
                _fixed(origin.ultimate, AMOUNT_DECIMALS),
                _fixed(origin.ibnr, AMOUNT_DECIMALS),
                _fixed(origin.mack_se, AMOUNT_DECIMALS),
                _fixed(origin.cv, RATIO_DECIMALS),
            ]
        )
    totals = result.totals
    writer.writerow(
        [
            TOTAL_LABEL,
            "",
            _fixed(totals.latest, AMOUNT_DECIMALS),
            _fixed(totals.ultimate / totals.latest if totals.latest else None, RATIO_DECIMALS),
            _fixed(totals.ultimate, AMOUNT_DECIMALS),
            _fixed(totals.ibnr, AMOUNT_DECIMALS),
            _fixed(totals.mack_se, AMOUNT_DECIMALS),
            _fixed(totals.cv, RATIO_DECIMALS),
        ]
    )
    return buffer.getvalue().encode("utf-8")


def reserve_result_xlsx(result: ReserveResult) -> bytes:
    """Return an Excel workbook: reserves with a totals row, development factors, options."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.writer.excel import ExcelWriter

    bold = Font(bold=True)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Reserves"
    sheet.append(
        ["Origin", "Development age", "Latest", "CDF", "Ultimate", "IBNR", "Mack S.E.", "CV"]
    )
    for origin in result.origins:
        sheet.append(
            [
                origin.origin,
                origin.development_age,
                origin.latest,
                origin.cdf,
                origin.ultimate,
                origin.ibnr,
                origin.mack_se,
                origin.cv,
            ]
        )
    totals = result.totals
    sheet.append(
        [
            TOTAL_LABEL,
            None,
            totals.latest,
            totals.ultimate / totals.latest if totals.latest else None,
            totals.ultimate,
            totals.ibnr,
            totals.mack_se,
            totals.cv,
        ]
    )
    for cell in sheet[1] + sheet[sheet.max_row]:
        cell.font = bold
    for row in sheet.iter_rows(min_row=2):
        for cell in (row[2], row[4], row[5], row[6]):
            cell.number_format = "#,##0.00"
        row[3].number_format = "0.000000"
        row[7].number_format = "0.00%"
    for letter, width in zip("ABCDEFGH", (12, 16, 16, 12, 16, 16, 16, 10), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"

    factors = workbook.create_sheet("Development factors")
    factors.append(["Period", "From age", "To age", "LDF", "CDF"])
    for factor in result.development_factors:
        to_age = factor.to_age if factor.to_age is not None else "Ult"
        factors.append([factor.period, factor.from_age, to_age, factor.ldf, factor.cdf])
    for cell in factors[1]:
        cell.font = bold
    for row in factors.iter_rows(min_row=2):
        row[3].number_format = row[4].number_format = "0.000000"

    options = workbook.create_sheet("Options")
    options.append(["Option", "Value"])
    options.append(["method", result.method])
    options.append(["measure", result.measure])
    for key, value in result.options.items():
        options.append([key, "none" if value is None else value])
    for warning in result.warnings:
        options.append(["warning", warning])
    for cell in options[1]:
        cell.font = bold
    options.column_dimensions["A"].width = 22
    options.column_dimensions["B"].width = 40

    workbook.properties.creator = "AI Actuary back office"
    workbook.properties.created = FIXED_TIMESTAMP
    workbook.properties.modified = FIXED_TIMESTAMP
    buffer = io.BytesIO()
    # ExcelWriter rather than Workbook.save: save() stamps the current time as "modified".
    ExcelWriter(workbook, _FixedDateZipFile(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    return buffer.getvalue()


def render_heatmap_png(analysis: dict, *, title: str | None = None) -> bytes:
    """Return a PNG heat map of the age-to-age factors of ``triangle_analysis``.

    Each cell is coloured by its factor relative to the period's volume-weighted average,
    so outliers stand out in every period alike; the two averages are the bottom rows.
    """
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    origins = analysis["origins"]
    periods = [period["label"] for period in analysis["periods"]]
    volume = analysis["averages"]["volume"]
    simple = analysis["averages"]["simple"]
    rows = [entry["factors"] for entry in analysis["age_to_age"]]
    labels = [*origins, "Simple avg", "Volume avg"]
    shown = [*rows, simple, volume]

    relative = np.full((len(labels), len(periods)), np.nan)
    for i, factors in enumerate(rows):
        for j, factor in enumerate(factors):
            if factor is not None and volume[j] and factor > 0 and volume[j] > 0:
                relative[i, j] = math.log(factor / volume[j])
    # A single wild factor (RAA 1982: 40.4) must not wash out the rest: cap the scale at ×3.
    largest = float(np.nanmax(np.abs(relative))) if np.isfinite(relative).any() else 0.0
    spread = min(max(largest, 0.01), HEATMAP_COLOUR_CAP)

    width = max(6.0, 0.75 * len(periods) + 2.5)
    height = max(4.0, 0.32 * len(labels) + 1.8)
    figure = Figure(figsize=(width, height), dpi=CHART_DPI)
    axes = figure.add_subplot()
    axes.set_facecolor("#f0f0f0")
    image = axes.imshow(
        np.ma.masked_invalid(relative),
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-spread, vmax=spread),
        aspect="auto",
        interpolation="nearest",
    )
    for i, factors in enumerate(shown):
        for j, factor in enumerate(factors):
            if factor is not None:
                weight = "bold" if i >= len(rows) else "normal"
                dark = math.isfinite(relative[i, j]) and abs(relative[i, j]) > 0.6 * spread
                axes.text(
                    j,
                    i,
                    f"{factor:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    fontweight=weight,
                    color="white" if dark else "black",
                )
    axes.axhline(len(rows) - 0.5, color="black", linewidth=1)
    axes.set_xticks(range(len(periods)), labels=periods, rotation=45, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    axes.set_xlabel("Development period", fontsize=9)
    axes.set_ylabel("Origin", fontsize=9)
    axes.set_title(title or f"Age-to-age factors ({analysis['measure']})", fontsize=10)
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("log(factor / volume-weighted average)", fontsize=8)
    colorbar.ax.tick_params(labelsize=7)
    figure.tight_layout()
    return _png(figure)


def render_reserve_chart_png(result: ReserveResult, *, title: str | None = None) -> bytes:
    """Return a PNG bar chart of latest and ultimate by origin, ultimate with ±1 Mack S.E."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    origins = [origin.origin for origin in result.origins]
    positions = np.arange(len(origins))
    latest = [origin.latest for origin in result.origins]
    ultimate = [origin.ultimate for origin in result.origins]
    errors = [origin.mack_se or 0.0 for origin in result.origins]

    figure = Figure(figsize=(max(6.0, 0.6 * len(origins) + 2.0), 4.5), dpi=CHART_DPI)
    axes = figure.add_subplot()
    bar_width = 0.4
    axes.bar(positions - bar_width / 2, latest, bar_width, label="Latest", color="#7f9fbf")
    axes.bar(
        positions + bar_width / 2,
        ultimate,
        bar_width,
        yerr=errors,
        capsize=3,
        label="Ultimate ± 1 Mack S.E.",
        color="#1f4e79",
        error_kw={"ecolor": "#c00000", "elinewidth": 1},
    )
    axes.set_xticks(positions, labels=origins, rotation=45, ha="right", fontsize=8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.tick_params(axis="y", labelsize=8)
    axes.set_xlabel("Origin", fontsize=9)
    axes.set_ylabel(result.measure.capitalize(), fontsize=9)
    totals = result.totals
    se_text = f"{totals.mack_se:,.0f}" if totals.mack_se is not None else "n/a"
    axes.set_title(
        title or f"Chain ladder (Mack): IBNR {totals.ibnr:,.0f}, Mack S.E. {se_text}",
        fontsize=10,
    )
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(axis="y", linewidth=0.3)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return _png(figure)


class _FixedDateZipFile(zipfile.ZipFile):
    """A ZipFile whose entries all carry the same date, so the archive bytes are repeatable."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=_ZIP_DATE_TIME)
            zinfo_or_arcname.compress_type = self.compression
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl streams worksheets through temporary files, whose mtime would leak in.
        with open(filename, "rb") as handle:
            data = handle.read()
        self.writestr(arcname or os.path.basename(filename), data, compress_type, compresslevel)


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI, metadata=PNG_METADATA)
    return buffer.getvalue()


def _fixed(value: float | None, decimals: int) -> str:
    """Format with fixed decimals; '' for None; never '-0.00'."""
    if value is None:
        return ""
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def _age_text(age: int | float) -> str:
    if isinstance(age, float) and age.is_integer():
        return str(int(age))
    return str(age)
