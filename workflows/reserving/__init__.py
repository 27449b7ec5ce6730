"""Numerical core of the reserving workflows: triangles, chain ladder and Mack, result files.

Plain Python, no Django models. Heavy libraries (chainladder, pandas, numpy, matplotlib,
openpyxl) are imported inside the functions that need them, never when this package is
imported, so the web app and admin start fast.
"""

from workflows.reserving.analysis import period_label, triangle_analysis
from workflows.reserving.mack import (
    AVERAGES,
    DevelopmentFactor,
    OriginReserve,
    ReserveResult,
    ReserveTotals,
    chain_ladder_mack,
    to_chainladder,
)
from workflows.reserving.outputs import (
    render_heatmap_png,
    render_reserve_chart_png,
    reserve_result_csv,
    reserve_result_xlsx,
)
from workflows.reserving.samples import (
    SAMPLE_TRIANGLES,
    sample_triangle_csv,
    sample_triangle_rows,
)
from workflows.reserving.triangles import (
    CHECKS,
    LAYOUTS,
    MEASURES,
    TriangleData,
    TriangleError,
    TriangleIssue,
    read_triangle,
    validate_triangle,
)

__all__ = [
    "AVERAGES",
    "CHECKS",
    "LAYOUTS",
    "MEASURES",
    "SAMPLE_TRIANGLES",
    "DevelopmentFactor",
    "OriginReserve",
    "ReserveResult",
    "ReserveTotals",
    "TriangleData",
    "TriangleError",
    "TriangleIssue",
    "chain_ladder_mack",
    "period_label",
    "read_triangle",
    "render_heatmap_png",
    "render_reserve_chart_png",
    "reserve_result_csv",
    "reserve_result_xlsx",
    "sample_triangle_csv",
    "sample_triangle_rows",
    "to_chainladder",
    "triangle_analysis",
    "validate_triangle",
]
