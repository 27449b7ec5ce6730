"""A validation report of a triangle file: every check with its status and problems.

Unlike ``read_triangle``, which raises at the first failing check, the report never
raises for bad data: it is what the data validation workflow stores for its user.
"""

from __future__ import annotations

import math

from workflows.reserving.triangles.checks import (
    CHECK_FILE,
    CHECK_NEGATIVE,
    CHECK_NUMBERS,
    CHECK_SHAPE,
    CHECK_SIZE,
    CHECK_UNIQUE,
    CHECKS,
)
from workflows.reserving.triangles.limits import MIN_DEVELOPMENT_AGES, MIN_ORIGINS
from workflows.reserving.triangles.read import parse_triangle

CHECK_DESCRIPTIONS = {
    CHECK_FILE: "The file is a readable CSV or Excel workbook with a header row and data.",
    CHECK_NUMBERS: "Every origin is present and every development age and value is a number.",
    CHECK_UNIQUE: "Each (origin, development age) cell is given once.",
    CHECK_SIZE: f"At least {MIN_ORIGINS} origins and {MIN_DEVELOPMENT_AGES} development ages.",
    CHECK_SHAPE: "Each origin has values from the first age up to the latest diagonal, "
    "without gaps and without values beyond it; origin periods are consecutive and no "
    "finer than the development periods.",
    CHECK_NEGATIVE: "Cumulative values never fall from one age to the next.",
}


def validate_triangle(
    data: bytes,
    file_name: str,
    *,
    layout: str = "auto",
    cumulative: bool,
    measure: str,
    allow_negative_development: bool = False,
    columns: dict[str, str] | None = None,
) -> dict:
    """Return a JSON-serialisable validation report of a triangle file; never raise for bad data.

    The report lists every check with its status (passed, failed, or skipped because an
    earlier check failed) and problems, plus, for a valid file, the origins, development
    ages, grain, counts and the latest diagonal.
    """
    outcome = parse_triangle(
        data,
        file_name,
        layout=layout,
        cumulative=cumulative,
        measure=measure,
        allow_negative_development=allow_negative_development,
        columns=columns,
    )
    failed = {issue.check for issue in outcome.issues}
    checks = []
    for name in CHECKS:
        problems = [issue.message for issue in outcome.issues if issue.check == name]
        if name in failed:
            status = "failed"
        elif name in outcome.checks_run:
            status = "passed"
        else:
            status = "skipped"
        checks.append(
            {
                "name": name,
                "description": CHECK_DESCRIPTIONS[name],
                "status": status,
                "problems": problems,
            }
        )
    triangle = outcome.triangle
    report = {
        "valid": triangle is not None,
        "file_name": file_name,
        "layout": outcome.layout,
        "measure": measure,
        "input": "cumulative" if cumulative else "incremental",
        "allow_negative_development": allow_negative_development,
        "checks": checks,
        "errors": [issue.message for issue in outcome.issues],
        "warnings": list(triangle.warnings) if triangle else [],
        "origins": [],
        "development_ages": [],
        "grain": None,
        "origin_count": 0,
        "development_age_count": 0,
        "cell_count": 0,
        "latest_diagonal": [],
        "latest_total": None,
    }
    if triangle is not None:
        diagonal = triangle.latest_diagonal()
        report.update(
            origins=list(triangle.origins),
            development_ages=list(triangle.development_ages),
            grain=triangle.grain(),
            origin_count=triangle.origin_count,
            development_age_count=triangle.development_age_count,
            cell_count=triangle.cell_count,
            latest_diagonal=diagonal,
            latest_total=math.fsum(item["value"] for item in diagonal),
        )
    return report
