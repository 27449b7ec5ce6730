"""Reserving workflows: triangle validation, age-to-age analysis, chain ladder with Mack.

Each reads a triangle artefact of the run's engagement (CSV or Excel, long or wide,
cumulative or incremental) and writes its results as artefacts linked to the run. The
numbers come from `workflows.reserving`, whose heavy libraries (chainladder, pandas,
matplotlib, openpyxl) load only when a step calls it.

input_params (all workflows): ``triangle_artefact`` (artefact id, required),
``cumulative`` (bool, required), ``measure`` (paid or incurred, required), ``layout``
(long, wide or auto; default auto), ``allow_negative_development`` (bool, default
false). Reserve calculation and IBNR estimation also take ``average`` (volume, simple
or regression; default volume) and ``tail_factor`` (a number ≥ 1, default none).
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import TYPE_CHECKING, Any

from artefacts.choices import ArtefactType
from artefacts.files import ArtefactFileUnavailable, open_verified
from artefacts.models import Artefact
from artefacts.services import artefact_open_for_download
from records.exceptions import InvalidInput
from workflows.reserving import (
    AVERAGES,
    LAYOUTS,
    MEASURES,
    TriangleError,
    read_triangle,
    validate_triangle,
)

from .base import (
    PARAM_REQUIRED,
    Step,
    WorkflowImplementation,
    boolean_param,
    choice_param,
    number_param,
    refuse_unknown,
    require_object,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from engagements.models import Engagement
    from workflows.reserving import TriangleData

TRIANGLE_PARAMS = (
    "triangle_artefact",
    "layout",
    "cumulative",
    "measure",
    "allow_negative_development",
)
RESERVE_PARAMS = (*TRIANGLE_PARAMS, "average", "tail_factor")
# Far above any real triangle (200 × 200 periods in the long layout is about 1.5 MB),
# low enough that checking one inside a web request stays quick.
MAX_TRIANGLE_FILE_SIZE = 20 * 1024 * 1024
# How a run's read of its triangle is named in the artefact_access audit event.
ACCESS_WORKFLOW_INPUT = "workflow input"
FACTOR_DECIMALS = 6

TRIANGLE_ARTEFACT_HELP = "the id of the triangle artefact (CSV or Excel) of this engagement"
CUMULATIVE_HELP = "true if the triangle's values are cumulative, false if incremental"
TRIANGLE_ID_INVALID = (
    "triangle_artefact must be the id (a UUID) of a triangle artefact, not {value!r}."
)
TRIANGLE_NOT_FOUND = (
    "triangle_artefact: engagement “{engagement}” has no artefact {value} "
    "(it does not exist, was deleted, or belongs to another engagement)."
)
TRIANGLE_TOO_LARGE = (
    "Triangle artefact “{artefact}” is {size:,} bytes, more than the {limit:,} bytes a "
    "triangle file may have."
)
TRIANGLE_UNREADABLE = "Triangle artefact “{artefact}” cannot be read: {problem}"
TRIANGLE_INVALID = (
    "Triangle artefact “{artefact}” ({file_name}) is not a usable triangle: {problem}"
)


# --- the triangle input, shared by every reserving workflow ------------------------------


def triangle_options(
    input_params: Any, *, accepted: tuple[str, ...] = TRIANGLE_PARAMS
) -> dict[str, Any]:
    """Return the triangle parameters checked, with defaults; the artefact is not looked up."""
    input_params = require_object(input_params)
    refuse_unknown(input_params, accepted)
    if input_params.get("triangle_artefact") in (None, ""):
        raise InvalidInput(
            PARAM_REQUIRED.format(name="triangle_artefact", help=TRIANGLE_ARTEFACT_HELP)
        )
    return {
        "triangle_artefact": input_params["triangle_artefact"],
        "layout": choice_param(input_params, "layout", LAYOUTS, default="auto"),
        "cumulative": boolean_param(input_params, "cumulative", default=None, help=CUMULATIVE_HELP),
        "measure": choice_param(input_params, "measure", MEASURES, default=None),
        "allow_negative_development": boolean_param(
            input_params, "allow_negative_development", default=False
        ),
    }


def triangle_artefact(value: Any, engagement: Engagement) -> Artefact:
    """Return the engagement's (not deleted) artefact whose id is `value`."""
    try:
        artefact_id = uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(TRIANGLE_ID_INVALID.format(value=value)) from None
    artefact = Artefact.objects.filter(pk=artefact_id, engagement=engagement).first()
    if artefact is None:
        raise InvalidInput(TRIANGLE_NOT_FOUND.format(engagement=engagement, value=artefact_id))
    return artefact


def triangle_bytes(artefact: Artefact, *, actor: AbstractUser | None = None) -> bytes:
    """Return the artefact's bytes once they match its stored SHA-256.

    With an `actor` (a run reading its input) the read is recorded as an
    artefact_access event; the check at run creation (no actor) only reads.
    """
    if artefact.file_size > MAX_TRIANGLE_FILE_SIZE:
        raise InvalidInput(
            TRIANGLE_TOO_LARGE.format(
                artefact=artefact, size=artefact.file_size, limit=MAX_TRIANGLE_FILE_SIZE
            )
        )
    try:
        if actor is None:
            handle = open_verified(artefact)
        else:
            handle = artefact_open_for_download(
                artefact=artefact, actor=actor, purpose=ACCESS_WORKFLOW_INPUT
            )
    except ArtefactFileUnavailable as refusal:
        raise InvalidInput(
            TRIANGLE_UNREADABLE.format(artefact=artefact, problem=refusal.message)
        ) from None
    with handle:
        return handle.read()


def parse_triangle(data: bytes, artefact: Artefact, params: dict[str, Any]) -> TriangleData:
    """Return the triangle in `data`, or raise InvalidInput naming the row and column at fault."""
    try:
        return read_triangle(
            data,
            artefact.file_name,
            layout=params["layout"],
            cumulative=params["cumulative"],
            measure=params["measure"],
            allow_negative_development=params["allow_negative_development"],
        )
    except TriangleError as error:
        raise InvalidInput(
            TRIANGLE_INVALID.format(artefact=artefact, file_name=artefact.file_name, problem=error)
        ) from None


def source_summary(artefact: Artefact) -> dict[str, Any]:
    """Return which artefact (and exact bytes) a run read, for its output summary."""
    return {
        "artefact_id": str(artefact.pk),
        "name": artefact.name,
        "version": artefact.version,
        "file_name": artefact.file_name,
        "content_hash": artefact.content_hash,
    }


class TriangleWorkflow(WorkflowImplementation):
    """A workflow whose input is one triangle artefact; the first step reads it."""

    accepted_params: tuple[str, ...] = TRIANGLE_PARAMS
    artefact_params = ("triangle_artefact",)
    # Whether creating a run already requires a valid triangle (data validation reports
    # on invalid ones, so it only needs a readable file).
    requires_valid_triangle = True

    @classmethod
    def options(cls, input_params: Any) -> dict[str, Any]:
        """Return the checked parameters (without looking up the artefact)."""
        return triangle_options(input_params, accepted=cls.accepted_params)

    @classmethod
    def validate_params(cls, input_params: Any, engagement: Engagement) -> dict[str, Any]:
        """Check the parameters and the triangle artefact: it exists here and can be read."""
        params = cls.options(input_params)
        artefact = triangle_artefact(params["triangle_artefact"], engagement)
        params["triangle_artefact"] = str(artefact.pk)
        data = triangle_bytes(artefact)
        if cls.requires_valid_triangle:
            parse_triangle(data, artefact, params)
        return params

    def load_triangle(self) -> None:
        """Read the triangle artefact (hash-checked) and parse it."""
        self.source = triangle_artefact(self.params["triangle_artefact"], self.run.engagement)
        self.data = triangle_bytes(self.source, actor=self.actor)
        self.triangle = parse_triangle(self.data, self.source, self.params)

    def triangle_summary(self) -> dict[str, Any]:
        """Return the source artefact and the shape of the triangle read from it."""
        triangle = self.triangle
        return {
            **source_summary(self.source),
            "layout": triangle.input_layout,
            "input": "cumulative" if triangle.input_cumulative else "incremental",
            "origin_count": triangle.origin_count,
            "development_ages": list(triangle.development_ages),
            "warnings": list(triangle.warnings),
        }

    def artefact_name(self, what: str) -> str:
        """Return the display name of a result artefact: the run's name and what it holds."""
        return f"{self.run.name}: {what}"[:255]


# --- data validation ---------------------------------------------------------------------


class DataValidation(TriangleWorkflow):
    """Check a triangle file and write a validation report (Markdown).

    Completes whether or not the triangle is valid: the report is the result, and
    output_summary.valid says which. No sign-off: a check is not a result for a client.
    """

    label = "data validation"
    requires_valid_triangle = False
    steps = (
        Step("load_file", "Read the triangle file"),
        Step("check_triangle", "Check the triangle"),
        Step("write_report", "Write the validation report"),
    )

    def load_file(self) -> None:
        """Read the triangle artefact's bytes (hash-checked)."""
        self.source = triangle_artefact(self.params["triangle_artefact"], self.run.engagement)
        self.data = triangle_bytes(self.source, actor=self.actor)

    def check_triangle(self) -> None:
        """Run every triangle check and keep the report."""
        self.report = validate_triangle(
            self.data,
            self.source.file_name,
            layout=self.params["layout"],
            cumulative=self.params["cumulative"],
            measure=self.params["measure"],
            allow_negative_development=self.params["allow_negative_development"],
        )

    def write_report(self) -> None:
        """Store the report as a Markdown artefact."""
        self.store_artefact(
            validation_report_markdown(self.report, source=self.source).encode("utf-8"),
            file_name="triangle_validation_report.md",
            artefact_type=ArtefactType.REPORT,
            name=self.artefact_name("triangle validation report"),
            description=f"Checks of triangle artefact “{self.source}”.",
            metadata={"source_artefact": str(self.source.pk), "valid": self.report["valid"]},
        )

    def output_summary(self) -> dict[str, Any]:
        """Return whether the triangle is valid, the full report and the artefacts."""
        return {
            "valid": self.report["valid"],
            "triangle": source_summary(self.source),
            "report": self.report,
            "artefacts": list(self.artefacts),
        }


def validation_report_markdown(report: dict[str, Any], *, source: Artefact) -> str:
    """Return a triangle validation report as Markdown: verdict, checks, problems, shape."""
    lines = [
        "# Triangle validation report",
        "",
        f"- Artefact: {source.name} (version {source.version}, file `{source.file_name}`)",
        f"- SHA-256: `{source.content_hash}`",
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
        lines += [
            "",
            "## Triangle",
            "",
            f"- Origins: {report['origin_count']} ({report['origins'][0]} to "
            f"{report['origins'][-1]})",
            f"- Development ages: {report['development_age_count']} ({ages})",
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


# --- triangle analysis -------------------------------------------------------------------


class TriangleAnalysis(TriangleWorkflow):
    """Age-to-age factors with simple and volume-weighted averages: a CSV and a heat map.

    Completes without sign-off: the factors are a diagnostic; the reserves built on
    them go through reserve_calculation, which waits for approval.
    """

    label = "triangle analysis"
    steps = (
        Step("load_triangle", "Read and check the triangle"),
        Step("compute_factors", "Compute age-to-age factors and their averages"),
        Step("write_factors", "Write the factors table (CSV)"),
        Step("draw_heatmap", "Draw the factor heat map (PNG)"),
    )

    def compute_factors(self) -> None:
        """Compute the factors per origin and their averages per development period."""
        from workflows.reserving import triangle_analysis

        self.analysis = triangle_analysis(self.triangle)

    def write_factors(self) -> None:
        """Store the factors and averages as a CSV artefact."""
        self.store_artefact(
            age_to_age_csv(self.analysis),
            file_name="age_to_age_factors.csv",
            artefact_type=ArtefactType.CSV,
            name=self.artefact_name("age-to-age factors"),
            description=f"Age-to-age factors of triangle artefact “{self.source}”.",
            metadata={"source_artefact": str(self.source.pk)},
        )

    def draw_heatmap(self) -> None:
        """Store the heat map of the factors as a PNG chart artefact."""
        from workflows.reserving import render_heatmap_png

        self.store_artefact(
            render_heatmap_png(
                self.analysis,
                title=f"Age-to-age factors: {self.source.name} ({self.triangle.measure})",
            ),
            file_name="age_to_age_heatmap.png",
            artefact_type=ArtefactType.CHART,
            name=self.artefact_name("age-to-age factor heat map"),
            description="Each factor coloured against its period's volume-weighted average.",
            metadata={"source_artefact": str(self.source.pk)},
        )

    def output_summary(self) -> dict[str, Any]:
        """Return the averages per period (the per-origin factors are in the CSV)."""
        analysis = self.analysis
        return {
            "measure": analysis["measure"],
            "triangle": self.triangle_summary(),
            "periods": [period["label"] for period in analysis["periods"]],
            "factor_counts": analysis["factor_counts"],
            "averages": analysis["averages"],
            "cumulative_factors": analysis["cumulative_factors"],
            "artefacts": list(self.artefacts),
        }


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


# --- reserve calculation and IBNR estimation ---------------------------------------------


class ReserveCalculation(TriangleWorkflow):
    """Chain ladder with Mack's standard errors: CSV, Excel and chart artefacts; then sign-off.

    The run waits for a workflow approval: reserves are a result someone independent
    must review before they are used.
    """

    label = "reserve calculation"
    needs_approval = True
    accepted_params = RESERVE_PARAMS
    steps = (
        Step("load_triangle", "Read and check the triangle"),
        Step("fit_chain_ladder", "Fit chain ladder with Mack standard errors"),
        Step("write_tables", "Write the results (CSV and Excel)"),
        Step("draw_chart", "Draw latest and ultimate by origin (PNG)"),
    )

    @classmethod
    def options(cls, input_params: Any) -> dict[str, Any]:
        """Return the triangle parameters plus the averaging method and tail factor."""
        params = super().options(input_params)
        params["average"] = choice_param(input_params, "average", AVERAGES, default="volume")
        params["tail_factor"] = number_param(
            input_params, "tail_factor", minimum=1.0, rule="of at least 1 (or null for no tail)"
        )
        return params

    def fit_chain_ladder(self) -> None:
        """Fit chain ladder and Mack's model with the chosen average and tail."""
        from workflows.reserving import chain_ladder_mack

        self.result = chain_ladder_mack(
            self.triangle, average=self.params["average"], tail_factor=self.params["tail_factor"]
        )

    def write_tables(self) -> None:
        """Store the per-origin results as a CSV and an Excel workbook."""
        from workflows.reserving import reserve_result_csv, reserve_result_xlsx

        metadata = {"source_artefact": str(self.source.pk)}
        self.store_artefact(
            reserve_result_csv(self.result),
            file_name="chain_ladder_reserves.csv",
            artefact_type=ArtefactType.CSV,
            name=self.artefact_name("chain ladder reserves (CSV)"),
            description="Latest, CDF, ultimate, IBNR, Mack S.E. and CV by origin, with totals.",
            metadata=metadata,
        )
        self.store_artefact(
            reserve_result_xlsx(self.result),
            file_name="chain_ladder_reserves.xlsx",
            artefact_type=ArtefactType.EXCEL,
            name=self.artefact_name("chain ladder reserves (Excel)"),
            description="Reserves by origin, development factors and the options used.",
            metadata=metadata,
        )

    def draw_chart(self) -> None:
        """Store the latest-vs-ultimate chart (ultimate with ±1 Mack S.E.) as a PNG."""
        from workflows.reserving import render_reserve_chart_png

        self.store_artefact(
            render_reserve_chart_png(
                self.result, title=f"Chain ladder: {self.source.name} ({self.result.measure})"
            ),
            file_name="chain_ladder_chart.png",
            artefact_type=ArtefactType.CHART,
            name=self.artefact_name("latest and ultimate by origin"),
            description="Latest and ultimate by origin; error bars are ±1 Mack standard error.",
            metadata={"source_artefact": str(self.source.pk)},
        )

    def output_summary(self) -> dict[str, Any]:
        """Return the totals, LDFs and options of the result, its source and its artefacts."""
        return {
            **self.result.output_summary(),
            "triangle": self.triangle_summary(),
            "artefacts": list(self.artefacts),
        }

    def approval_notes(self) -> str:
        """Say what the reviewer is asked to sign off."""
        totals = self.result.totals
        standard_error = "n/a" if totals.mack_se is None else f"{totals.mack_se:,.0f}"
        return (
            f"Chain ladder ({self.result.options['average']} average) on triangle "
            f"“{self.source.name}”: total IBNR {totals.ibnr:,.0f}, ultimate "
            f"{totals.ultimate:,.0f}, Mack S.E. {standard_error}. "
            f"Review the {len(self.artefacts)} result artefacts of the run."
        )


class IBNREstimation(ReserveCalculation):
    """IBNR by chain ladder with Mack's standard errors (the reserve calculation's method)."""

    label = "IBNR estimation"
