"""Text outputs: the triangle validation report (Markdown) and the age-to-age factor table (CSV)."""

from __future__ import annotations

import csv
import io
from typing import Any

FACTOR_DECIMALS = 6


def validation_report_markdown(report: dict[str, Any], *, source: dict[str, Any]) -> str:
    """Return a triangle validation report as Markdown: verdict, checks, problems, shape.

    ``source`` names the file checked: ``name``, ``version``, ``file_name`` and
    ``content_hash``.
    """
    lines = [
        "# Triangle validation report",
        "",
        f"- Artefact: {source['name']} (version {source['version']}, file `{source['file_name']}`)",
        f"- SHA-256: `{source['content_hash']}`",
        f"- Layout: {report['layout'] or 'not determined'}; input: {report['input']}; "
        f"measure: {report['measure']}",
        f"- Negative development allowed: {_yes_no(report['allow_negative_development'])}",
        "",
        f"**Result: {'valid' if report['valid'] else 'not valid'}.**",
        "",
        "## Checks",
        "",
        "| Check | Status | Description |",
        "|---|---|---|",
    ]
    lines += [
        f"| {check['name']} | {check['status']} | {check['description']} |"
        for check in report["checks"]
    ]
    if report["errors"]:
        lines += ["", "## Problems", ""] + [f"- {error}" for error in report["errors"]]
    if report["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {warning}" for warning in report["warnings"]]
    if report["valid"]:
        ages = ", ".join(str(age) for age in report["development_ages"])
        grain = report.get("grain") or {}
        lines += [
            "",
            "## Triangle",
            "",
            f"- Origins: {report['origin_count']} ({report['origins'][0]} to "
            f"{report['origins'][-1]}); grain: {grain.get('origin') or 'not given by the labels'}",
            f"- Development ages: {report['development_age_count']} ({ages}); "
            f"{grain.get('periods_per_origin', 1)} development period(s) per origin period",
            f"- Cells: {report['cell_count']}",
            f"- Latest diagonal total: {report['latest_total']:,.2f}",
            "",
            "| Origin | Development age | Latest value |",
            "|---|---|---|",
        ]
        lines += [
            f"| {item['origin']} | {item['development_age']} | {item['value']:,.2f} |"
            for item in report["latest_diagonal"]
        ]
    return "\n".join(lines) + "\n"


def age_to_age_csv(analysis: dict[str, Any]) -> bytes:
    """Return the factors per origin, then the averages, counts and cumulative factors, as CSV.

    Fixed decimals, so the same triangle always gives the same bytes.
    """
    periods = analysis["periods"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["origin", *(period["label"] for period in periods)])
    for row in analysis["age_to_age"]:
        writer.writerow([row["origin"], *(_fixed(factor) for factor in row["factors"])])
    writer.writerow(["Simple average", *map(_fixed, analysis["averages"]["simple"])])
    writer.writerow(["Volume-weighted average", *map(_fixed, analysis["averages"]["volume"])])
    writer.writerow(["Factors averaged", *analysis["factor_counts"]])
    cumulative = analysis["cumulative_factors"]
    # One cumulative factor per starting age; the last age's (1.0) has no period column.
    writer.writerow(["CDF (simple)", *map(_fixed, cumulative["simple"][: len(periods)])])
    writer.writerow(["CDF (volume-weighted)", *map(_fixed, cumulative["volume"][: len(periods)])])
    return buffer.getvalue().encode("utf-8")


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _fixed(value: float | None) -> str:
    return "" if value is None else f"{round(value, FACTOR_DECIMALS) + 0.0:.{FACTOR_DECIMALS}f}"
