"""The one module that imports chainladder and pandas: sample triangles and the bridge to them.

The reserving engine computes in plain Python (``development``, ``methods``,
``uncertainty``); chainladder-python is used for what it ships (the standard triangles of
the literature, see ``samples``) and, in the tests, as one more reference to compare
with. Both libraries are imported inside the functions, so importing this module (and
the web app) stays fast.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

from workflows.reserving.triangles.data import GRAIN_MONTHS, MONTHS_GRAIN, TriangleData
from workflows.reserving.triangles.grain import origin_grain

# Origins without a calendar grain are placed in consecutive years from here.
BASE_YEAR = 1900
# Samples that are databases of hundreds of company triangles, not single triangles.
DATABASES = ("clrd", "clrd2025", "prism")
# chainladder's grain letters.
GRAIN_LETTERS = {"Y": "annual", "S": "semi-annual", "Q": "quarterly", "M": "monthly"}

MSG_UNKNOWN_SAMPLE = "unknown sample triangle {name!r}; choose one of {names}"
MSG_UNKNOWN_COLUMN = "sample {name!r} has no column {column!r}; it has {columns}"
MSG_UNKNOWN_INDEX = "sample {name!r} has no index {index!r}; it has {indexes}"
MSG_NO_DATES = (
    "triangle {file!r} cannot be given to chainladder: its origins carry no calendar grain "
    "and {step} development periods per origin do not divide a year"
)


@dataclass(frozen=True)
class SampleTriangle:
    """One triangle of a chainladder sample, cumulative, as plain lists.

    ``values[i][j]`` is None where origin i was not observed at age j (beyond the latest
    diagonal, or before its first recorded age).
    """

    name: str
    column: str
    index: str | None
    origins: list[str]
    ages: list[int]
    values: list[list[float | None]]
    origin_grain: str


def sample_names() -> list[str]:
    """Return the names of chainladder's samples, databases of many triangles left out."""
    from chainladder.utils.data._manifest import SAMPLES

    return sorted(name for name in SAMPLES if name not in DATABASES)


def sample_columns(name: str) -> tuple[list[str], list[str | None]]:
    """Return a sample's columns and its index labels (``[None]`` for a single index)."""
    triangle = _load(name)
    labels = _index_labels(triangle)
    return [str(column) for column in triangle.columns], labels


def load_sample(name: str, column: str | None = None, index: str | None = None) -> SampleTriangle:
    """Return one cumulative triangle of a chainladder sample.

    ``column`` defaults to the first; ``index`` (e.g. ``"GeneralLiab"`` of ``liab``)
    to the first index. Incremental samples are accumulated, their empty cells inside the
    observed region being zero increments; a cumulative sample's empty cells before an
    origin's first value are left empty (not recorded), and an origin without any value
    is zero throughout (chainladder stores zeros as missing).
    """
    import numpy as np

    triangle = _load(name)
    columns = [str(item) for item in triangle.columns]
    column = column if column is not None else columns[0]
    if column not in columns:
        raise ValueError(
            MSG_UNKNOWN_COLUMN.format(name=name, column=column, columns=", ".join(columns))
        )
    labels = _index_labels(triangle)
    position = 0
    if index is not None:
        if index not in labels:
            raise ValueError(
                MSG_UNKNOWN_INDEX.format(
                    name=name, index=index, indexes=", ".join(map(str, labels))
                )
            )
        position = labels.index(index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single = triangle.iloc[position][column]
        region = np.nan_to_num(single.nan_triangle) == 1
        matrix = np.array(single.values[0, 0], dtype=float)
        if not single.is_cumulative:
            matrix = np.cumsum(np.where(region, np.nan_to_num(matrix), 0.0), axis=1)
        grain = GRAIN_LETTERS[single.origin_grain]
        origins = [_origin_label(period, grain) for period in single.origin]
        ages = [int(age) for age in single.development]
    # A row with no value at all is zero throughout (no claims), unless the whole
    # triangle is empty (a column the sample does not have for this index).
    any_value = bool((region & ~np.isnan(matrix)).any())
    values: list[list[float | None]] = []
    for i in range(matrix.shape[0]):
        row: list[float | None] = []
        started = any_value and bool(np.isnan(matrix[i][region[i]]).all())
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            if not region[i, j]:
                row.append(None)
            elif np.isnan(value):
                # chainladder stores zeros as missing: inside the region, after the first
                # value (or in an incremental sample) a missing cumulative value is zero.
                row.append(0.0 if started else None)
            else:
                started = True
                row.append(float(value))
        values.append(row)
    return SampleTriangle(
        name=name,
        column=column,
        index=None if labels == [None] else str(labels[position]),
        origins=origins,
        ages=ages,
        values=values,
        origin_grain=grain,
    )


def to_chainladder(triangle: TriangleData):
    """Return the triangle as a cumulative chainladder.Triangle (for comparisons).

    Origins with a calendar grain keep their dates; others are placed in consecutive
    years from ``BASE_YEAR``, with ``periods_per_origin`` development periods a year.
    """
    import chainladder as cl
    import pandas as pd

    grain = origin_grain(list(triangle.origins))
    if grain is not None:
        starts = [grain.starts[origin] for origin in triangle.origins]
        origin_months = grain.months
    else:
        starts = [(BASE_YEAR + i, 1) for i in range(triangle.origin_count)]
        origin_months = GRAIN_MONTHS["annual"]
    step, remainder = divmod(origin_months, triangle.periods_per_origin)
    if remainder or step not in MONTHS_GRAIN:
        raise ValueError(
            MSG_NO_DATES.format(file=triangle.file_name, step=triangle.periods_per_origin)
        )
    records = []
    for (year, month), row in zip(starts, triangle.values, strict=True):
        origin_date = pd.Timestamp(year, month, 1)
        for j, value in enumerate(row):
            if value is None:
                continue
            valuation = origin_date + pd.DateOffset(months=(j + 1) * step) - pd.Timedelta(days=1)
            records.append((origin_date, valuation, value))
    frame = pd.DataFrame(records, columns=["origin", "valuation", "value"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl.Triangle(
            frame, origin="origin", development="valuation", columns=["value"], cumulative=True
        )


def _load(name: str):
    import chainladder as cl

    names = sample_names()
    if name not in names:
        raise ValueError(MSG_UNKNOWN_SAMPLE.format(name=name, names=", ".join(names)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cl.load_sample(name)


def _index_labels(triangle) -> list[str | None]:
    if triangle.key_labels == ["Total"]:
        return [None]
    return [" / ".join(str(part) for part in key) for key in triangle.kdims]


def _origin_label(period, grain: str) -> str:
    start: dt.datetime = period.to_timestamp()
    year, month = start.year, start.month
    if grain == "annual":
        return str(year)
    if grain == "quarterly":
        return f"{year}Q{(month - 1) // 3 + 1}"
    if grain == "semi-annual":
        return f"{year}H{(month - 1) // 6 + 1}"
    return f"{year}-{month:02d}"
