"""Results side by side, and what emerged since a prior valuation against what it expected.

Both work on results in their stable JSON shape (``ReserveResult.to_dict()``, what a
reserving run keeps as its output summary), so a run of last year's valuation can be
compared with today's without re-running it.

Actual vs expected: for each origin in both, the actual emergence is the latest value
now minus the latest value then; the expected emergence is what the prior run's
selections expected between its age then and the age now,

    prior IBNR × (1/CDF(now) − 1/CDF(then)) / (1 − 1/CDF(then)),

with the prior run's CDFs. For a chain ladder prior that is latest(then) × (LDF(then →
now) − 1); for a Bornhuetter-Ferguson prior, expected ultimate × the change in the
percentage developed. An age the prior pattern does not reach (beyond its last age
with a tail) has no expectation.
"""

from __future__ import annotations

import math
from typing import Any

from workflows.reserving.results import ActualVsExpected, OriginEmergence, ratio
from workflows.reserving.triangles.data import TriangleData

NOTE_NEW_ORIGIN = "new since the prior valuation"
NOTE_OFF_GRID = "the prior run's development pattern has no CDF at age {age}"
NOTE_EARLIER = "the current age is before the prior one"
MSG_DROPPED_ORIGINS = "origin(s) {origins} of the prior run are not in this triangle"
MSG_RESTATED = (
    "origin {origin}: the value at age {age} is {now:,.2f} in this triangle but {then:,.2f} "
    "in the prior run (restated data; the actual emergence is measured from the prior run's "
    "figure)"
)
MSG_MEASURE = "the prior run reserved {prior} values, this one {current}: compare like with like"


def actual_vs_expected(
    current: dict[str, Any],
    prior: dict[str, Any],
    *,
    prior_info: dict[str, Any] | None = None,
    triangle: TriangleData | None = None,
) -> ActualVsExpected:
    """Return the emergence since the prior valuation against the prior run's expectation.

    ``current`` and ``prior`` are results in their ``to_dict()`` shape; ``prior_info``
    says which run the prior is (shown with the comparison); ``triangle`` (this run's)
    lets restated values be named in the warnings. Raise ValueError if the measures
    differ.
    """
    if prior.get("measure") != current.get("measure"):
        raise ValueError(
            MSG_MEASURE.format(prior=prior.get("measure"), current=current.get("measure"))
        )
    prior_rows = {row["origin"]: row for row in prior.get("origins") or []}
    cdf_at = {
        factor["from_age"]: factor["cdf"] for factor in prior.get("development_factors") or []
    }
    last_age = max(cdf_at) if cdf_at else None
    warnings: list[str] = []
    values_now = (
        {
            o: dict(zip(triangle.development_ages, row, strict=False))
            for o, row in zip(triangle.origins, triangle.values, strict=True)
        }
        if triangle is not None
        else {}
    )
    rows = []
    for row in current.get("origins") or []:
        origin, age_now, latest_now = row["origin"], row["development_age"], row["latest"]
        before = prior_rows.get(origin)
        if before is None:
            rows.append(_row(origin, None, age_now, None, latest_now, note=NOTE_NEW_ORIGIN))
            continue
        age_then, latest_then = before["development_age"], before["latest"]
        actual = latest_now - latest_then
        restated = values_now.get(origin, {}).get(age_then)
        if restated is not None and not math.isclose(restated, latest_then, rel_tol=1e-9):
            warnings.append(
                MSG_RESTATED.format(origin=origin, age=age_then, now=restated, then=latest_then)
            )
        if age_now < age_then:
            rows.append(
                _row(origin, age_then, age_now, latest_then, latest_now, actual, note=NOTE_EARLIER)
            )
            continue
        cdf_then = before["cdf"]
        cdf_now = cdf_at.get(age_now)
        if cdf_now is None and last_age is not None and age_now > last_age:
            cdf_now = 1.0 if cdf_at[last_age] == 1.0 else None
        if cdf_now is None:
            rows.append(
                _row(
                    origin,
                    age_then,
                    age_now,
                    latest_then,
                    latest_now,
                    actual,
                    note=NOTE_OFF_GRID.format(age=age_now),
                )
            )
            continue
        share_then = 1.0 - 1.0 / cdf_then
        expected = 0.0
        if share_then != 0:
            expected = before["ibnr"] * (1.0 / cdf_now - 1.0 / cdf_then) / share_then
        rows.append(_row(origin, age_then, age_now, latest_then, latest_now, actual, expected))
    dropped = [origin for origin in prior_rows if origin not in {r.origin for r in rows}]
    if dropped:
        warnings.append(MSG_DROPPED_ORIGINS.format(origins=", ".join(dropped)))
    compared = [row for row in rows if row.expected is not None]
    actual_total = math.fsum(row.actual for row in compared)
    expected_total = math.fsum(row.expected for row in compared)
    return ActualVsExpected(
        prior=dict(prior_info or {}),
        origins=tuple(rows),
        actual=actual_total,
        expected=expected_total,
        difference=actual_total - expected_total,
        actual_to_expected=ratio(actual_total, expected_total),
        warnings=tuple(warnings),
    )


def compare_results(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Return two results side by side: by origin and in total, with the differences.

    Each origin row has ``first`` and ``second`` (ultimate, IBNR, and the method's
    spread: Mack s.e. or the simulated standard deviation) and ``ibnr_difference``
    (second − first); ``options`` lists the choices that differ.
    """
    second_rows = {row["origin"]: row for row in second.get("origins") or []}
    first_rows = {row["origin"]: row for row in first.get("origins") or []}
    origins = list(first_rows) + [origin for origin in second_rows if origin not in first_rows]
    rows = []
    for origin in origins:
        a, b = first_rows.get(origin), second_rows.get(origin)
        rows.append(
            {
                "origin": origin,
                "first": _figures(a),
                "second": _figures(b),
                "ibnr_difference": (b["ibnr"] - a["ibnr"]) if a and b else None,
            }
        )
    first_options, second_options = first.get("options") or {}, second.get("options") or {}
    changed = {
        key: {"first": first_options.get(key), "second": second_options.get(key)}
        for key in sorted(set(first_options) | set(second_options))
        if first_options.get(key) != second_options.get(key)
    }
    return {
        "methods": [first.get("method"), second.get("method")],
        "origins": rows,
        "totals": {
            "first": _figures(first.get("totals")),
            "second": _figures(second.get("totals")),
            "ibnr_difference": second["totals"]["ibnr"] - first["totals"]["ibnr"],
        },
        "options": changed,
    }


def _figures(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "ultimate": row.get("ultimate"),
        "ibnr": row.get("ibnr"),
        "mack_se": row.get("mack_se"),
        "ibnr_std": row.get("ibnr_std"),
    }


def _row(origin, age_then, age_now, latest_then, latest_now, actual=None, expected=None, note=""):
    return OriginEmergence(
        origin=origin,
        prior_age=age_then,
        current_age=age_now,
        prior_latest=latest_then,
        current_latest=latest_now,
        actual=actual,
        expected=expected,
        difference=(actual - expected) if actual is not None and expected is not None else None,
        actual_to_expected=ratio(actual, expected),
        note=note,
    )
