"""Standard triangles that ship with chainladder, exported as CSV for demo data and tests."""

from __future__ import annotations

import csv
import io

from workflows.reserving.library import load_sample

# Single-triangle samples of chainladder 0.10 with annual origins and 12-month ages: the
# ones the demo and the docs use. Every other sample is reachable by name too.
SAMPLE_TRIANGLES = {
    "raa": "RAA: general liability, Historical Loss Development Study 1991; "
    "Mack (1994). Has one negative development (1982, 72 to 84 months).",
    "genins": "GenIns: Taylor & Ashe (1983), the example of Mack (1993).",
    "abc": "ABC: workers' compensation, Barnett & Zehnwirth (2000).",
    "mw2008": "MW2008: Merz & Wüthrich (2008), claims development result example.",
    "mw2014": "MW2014: Merz & Wüthrich (2014), 17 × 17 example.",
    "ukmotor": "UKMotor: UK motor claims, Christofides (1990).",
}

MSG_BAD_SAMPLE_LAYOUT = "layout must be 'long' or 'wide', not {layout!r}"


def sample_triangle_rows(
    name: str, column: str | None = None, index: str | None = None
) -> tuple[list[str], list[int], list[list[float | None]]]:
    """Return the origins, development ages (months) and cumulative values of a sample.

    A value is None beyond the latest diagonal (and before an origin's first recorded
    age, in the few samples whose older origins start late).
    """
    sample = load_sample(name, column, index)
    return sample.origins, sample.ages, sample.values


def sample_triangle_csv(
    name: str,
    *,
    layout: str = "long",
    cumulative: bool = True,
    column: str | None = None,
    index: str | None = None,
) -> bytes:
    """Return a chainladder sample triangle as CSV bytes, long or wide, cumulative or not."""
    if layout not in ("long", "wide"):
        raise ValueError(MSG_BAD_SAMPLE_LAYOUT.format(layout=layout))
    origins, ages, values = sample_triangle_rows(name, column, index)
    if not cumulative:
        values = [_incremental(row) for row in values]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if layout == "long":
        writer.writerow(["origin", "development", "value"])
        for origin, row in zip(origins, values, strict=True):
            for age, value in zip(ages, row, strict=True):
                if value is not None:
                    writer.writerow([origin, age, _number_text(value)])
    else:
        writer.writerow(["origin", *ages])
        for origin, row in zip(origins, values, strict=True):
            writer.writerow(
                [origin, *("" if value is None else _number_text(value) for value in row)]
            )
    return buffer.getvalue().encode("utf-8")


def _incremental(row: list[float | None]) -> list[float | None]:
    result: list[float | None] = []
    previous = 0.0
    for value in row:
        if value is None:
            result.append(None)
            continue
        result.append(value - previous)
        previous = value
    return result


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
