"""The reserving engine: triangles, development selections, methods, uncertainty, outputs.

Plain Python, no Django: plain data in, plain data out, so it is tested on its own and
replayed exactly. Heavy libraries are imported inside the functions that need them,
never when this package is imported, so the web app and admin start fast: numpy by the
bootstrap and the charts, matplotlib by the charts, openpyxl by the workbook and the
Excel reader, chainladder and pandas only by ``library`` (the sample triangles).

- ``triangles``: read and check a triangle file (``read_triangle``,
  ``validate_triangle``) into ``TriangleData``;
- ``development``: link ratios, averages, exclusions and judgmental factors
  (``DevelopmentSelection`` → ``fit_development`` → ``Development``);
- ``tails``: constant, curve-fitted or Bondy tails (``TailSelection``);
- ``methods``: chain ladder with Mack, Bornhuetter-Ferguson, Benktander, Cape Cod;
- ``uncertainty``: Mack's standard errors and the ODP bootstrap;
- ``results``: the frozen ``ReserveResult`` every method returns, with ``to_dict()``;
- ``compare``: two results side by side, and actual against expected emergence;
- ``options``: the reserving ``input_params`` of the workflows, checked and canonical;
- ``exposures``: exposure (e.g. earned premium) by origin from a CSV or Excel file;
- ``outputs``: the CSV table, the Excel workbook and the PNG charts;
- ``analysis``: the age-to-age factor diagnostics; ``samples``: chainladder's triangles.
"""

from workflows.reserving.analysis import triangle_analysis
from workflows.reserving.compare import actual_vs_expected, compare_results
from workflows.reserving.development import (
    AVERAGES,
    Development,
    DevelopmentError,
    DevelopmentSelection,
    FactorOverride,
    fit_development,
    period_label,
)
from workflows.reserving.exposures import ExposureData, ExposureError, match_exposure, read_exposure
from workflows.reserving.library import to_chainladder
from workflows.reserving.methods import (
    METHODS,
    benktander,
    bornhuetter_ferguson,
    cape_cod,
    chain_ladder_mack,
)
from workflows.reserving.options import (
    RESERVING_PARAMS,
    ReservingInputError,
    ReservingOptions,
    check_against_triangle,
    parse_options,
)
from workflows.reserving.outputs import (
    age_to_age_csv,
    render_heatmap_png,
    render_histogram_png,
    render_reserve_chart_png,
    reserve_result_csv,
    reserve_result_xlsx,
    validation_report_markdown,
)
from workflows.reserving.results import (
    ActualVsExpected,
    BootstrapSummary,
    DevelopmentFactor,
    ExcludedPoint,
    OriginEmergence,
    OriginReserve,
    ReserveResult,
    ReserveTotals,
    TailResult,
)
from workflows.reserving.samples import (
    SAMPLE_TRIANGLES,
    sample_triangle_csv,
    sample_triangle_rows,
)
from workflows.reserving.tails import TAIL_METHODS, TailSelection, fit_tail
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
from workflows.reserving.uncertainty import MackEstimate, mack_standard_errors
from workflows.reserving.uncertainty.bootstrap import bootstrap_odp

__all__ = [
    "AVERAGES",
    "CHECKS",
    "LAYOUTS",
    "MEASURES",
    "METHODS",
    "RESERVING_PARAMS",
    "SAMPLE_TRIANGLES",
    "TAIL_METHODS",
    "ActualVsExpected",
    "BootstrapSummary",
    "Development",
    "DevelopmentError",
    "DevelopmentFactor",
    "DevelopmentSelection",
    "ExcludedPoint",
    "ExposureData",
    "ExposureError",
    "FactorOverride",
    "MackEstimate",
    "OriginEmergence",
    "OriginReserve",
    "ReserveResult",
    "ReserveTotals",
    "ReservingInputError",
    "ReservingOptions",
    "TailResult",
    "TailSelection",
    "TriangleData",
    "TriangleError",
    "TriangleIssue",
    "actual_vs_expected",
    "age_to_age_csv",
    "benktander",
    "bootstrap_odp",
    "bornhuetter_ferguson",
    "cape_cod",
    "chain_ladder_mack",
    "check_against_triangle",
    "compare_results",
    "fit_development",
    "fit_tail",
    "mack_standard_errors",
    "match_exposure",
    "parse_options",
    "period_label",
    "read_exposure",
    "read_triangle",
    "render_heatmap_png",
    "render_histogram_png",
    "render_reserve_chart_png",
    "reserve_result_csv",
    "reserve_result_xlsx",
    "sample_triangle_csv",
    "sample_triangle_rows",
    "to_chainladder",
    "triangle_analysis",
    "validate_triangle",
    "validation_report_markdown",
]
