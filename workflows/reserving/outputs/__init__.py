"""Result files of the reserving workflows: CSV tables, the Excel workbook, PNG charts.

Every writer is deterministic, because a replay compares output hashes: the same
result gives the same bytes (``files``). matplotlib and openpyxl are imported inside
the functions.
"""

from workflows.reserving.outputs.charts import (
    render_heatmap_png,
    render_histogram_png,
    render_reserve_chart_png,
)
from workflows.reserving.outputs.reports import age_to_age_csv, validation_report_markdown
from workflows.reserving.outputs.tables import (
    RESERVE_COLUMNS,
    TOTAL_LABEL,
    reserve_columns,
    reserve_result_csv,
)
from workflows.reserving.outputs.workbook import reserve_result_xlsx

__all__ = [
    "RESERVE_COLUMNS",
    "TOTAL_LABEL",
    "age_to_age_csv",
    "render_heatmap_png",
    "render_histogram_png",
    "render_reserve_chart_png",
    "reserve_columns",
    "reserve_result_csv",
    "reserve_result_xlsx",
    "validation_report_markdown",
]
