"""The reserves as a table: one row per origin and a totals row, columns by method.

Every method has the chain ladder's columns (origin, development_age, latest, cdf,
ultimate, ibnr, mack_se, cv); the expected-loss methods add exposure,
apriori_loss_ratio and expected_ultimate; the bootstrap adds the simulated IBNR's mean,
standard deviation and one column per percentile (``p50``, ``p99.5``, …).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from workflows.reserving.outputs.files import AMOUNT_DECIMALS, RATIO_DECIMALS, age_text, fixed
from workflows.reserving.results import ReserveResult, percentile_key

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
EXPOSURE_COLUMNS = ("exposure", "apriori_loss_ratio", "expected_ultimate")
DISTRIBUTION_COLUMNS = ("ibnr_mean", "ibnr_std")
RATIO_COLUMNS = frozenset({"cdf", "cv", "apriori_loss_ratio"})
TOTAL_LABEL = "Total"


def reserve_columns(result: ReserveResult) -> tuple[str, ...]:
    """Return the columns of the reserves table of this result's method."""
    columns = list(RESERVE_COLUMNS)
    if result.totals.exposure is not None:
        columns += EXPOSURE_COLUMNS
    if result.bootstrap is not None:
        columns += DISTRIBUTION_COLUMNS
        columns += [f"p{percentile_key(level)}" for level in result.bootstrap.percentile_levels]
    return tuple(columns)


def reserve_rows(result: ReserveResult) -> list[dict[str, Any]]:
    """Return the table's rows as {column: number or text}, the totals row last."""
    columns = reserve_columns(result)
    rows = []
    for origin in result.origins:
        rows.append(_row(columns, origin.to_dict()))
    totals = result.totals.to_dict()
    totals["origin"] = TOTAL_LABEL
    totals["development_age"] = None
    latest = result.totals.latest
    totals["cdf"] = result.totals.ultimate / latest if latest else None
    totals["apriori_loss_ratio"] = None
    rows.append(_row(columns, totals))
    return rows


def reserve_result_csv(result: ReserveResult) -> bytes:
    """Return the per-origin results and a totals row as UTF-8 CSV (fixed decimals)."""
    columns = reserve_columns(result)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in reserve_rows(result):
        writer.writerow([_cell(column, row[column]) for column in columns])
    return buffer.getvalue().encode("utf-8")


def _row(columns: tuple[str, ...], figures: dict[str, Any]) -> dict[str, Any]:
    percentiles = figures.get("percentiles") or {}
    row = {}
    for column in columns:
        if column.startswith("p") and column[1:] in percentiles:
            row[column] = percentiles[column[1:]]
        else:
            row[column] = figures.get(column)
    return row


def _cell(column: str, value: Any) -> str:
    if column == "origin":
        return str(value)
    if column == "development_age":
        return age_text(value)
    return fixed(value, RATIO_DECIMALS if column in RATIO_COLUMNS else AMOUNT_DECIMALS)
