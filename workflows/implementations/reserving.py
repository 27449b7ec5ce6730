"""Reserving workflows: triangle validation, age-to-age analysis, reserves by five methods.

Each reads a triangle artefact of the run's engagement (CSV or Excel, long or wide,
cumulative or incremental) and writes its results as artefacts linked to the run. The
numbers come from `workflows.reserving`, whose heavy libraries (numpy, matplotlib,
openpyxl) load only when a step calls it; `reserving_inputs` checks the input_params
and looks up what they name (the triangle, the exposure, the prior run).

input_params (all workflows): ``triangle_artefact`` (artefact id, required),
``cumulative`` (bool, required), ``measure`` (paid or incurred, required), ``layout``
(long, wide or auto; default auto), ``columns`` (the long layout's origin,
development and value columns by the file's own headers; optional),
``allow_negative_development`` (bool; default true for the reserving computations,
which then warn naming the cell; false for data validation, which reports it as a
failed check). Reserve calculation and IBNR estimation also take the reserving
choices of `workflows.reserving.RESERVING_PARAMS` (method, averages, exclusions,
selected factors, tail, exposure, a-priori loss ratio, bootstrap settings, prior
run): see docs/reserving-methods.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from artefacts.choices import ArtefactType
from records.exceptions import InvalidInput
from workflows.reserving import ReservingInputError, check_against_triangle, validate_triangle
from workflows.working_papers import working_paper_header

from .base import Step, WorkflowImplementation
from .reserving_inputs import (
    RESERVE_PARAMS,
    TRIANGLE_PARAMS,
    artefact_bytes,
    exposure_of,
    named,
    parse_triangle,
    prior_run_of,
    prior_run_summary,
    reserving_options,
    source_summary,
    triangle_artefact,
    triangle_options,
)

if TYPE_CHECKING:
    from engagements.models import Engagement


class TriangleWorkflow(WorkflowImplementation):
    """A workflow whose input is one triangle artefact; the first step reads it."""

    accepted_params: tuple[str, ...] = TRIANGLE_PARAMS
    artefact_params = ("triangle_artefact",)
    # Whether creating a run already requires a valid triangle (data validation reports
    # on invalid ones, so it only needs a readable file).
    requires_valid_triangle = True
    # Negative development: accepted with a warning naming the cell, unless refused.
    allow_negative_default = True

    @classmethod
    def options(cls, input_params: Any) -> dict[str, Any]:
        """Return the checked parameters (without looking up the artefact)."""
        return triangle_options(
            input_params,
            accepted=cls.accepted_params,
            allow_negative_default=cls.allow_negative_default,
        )

    @classmethod
    def validate_params(cls, input_params: Any, engagement: Engagement) -> dict[str, Any]:
        """Check the parameters and the triangle artefact: it exists here and can be read."""
        params = cls.options(input_params)
        artefact = triangle_artefact(params["triangle_artefact"], engagement)
        params["triangle_artefact"] = str(artefact.pk)
        data = artefact_bytes(artefact)
        if cls.requires_valid_triangle:
            parse_triangle(data, artefact, params)
        return params

    def load_triangle(self) -> None:
        """Read the triangle artefact (hash-checked) and parse it."""
        self.source = triangle_artefact(self.params["triangle_artefact"], self.run.engagement)
        self.data = artefact_bytes(self.source, actor=self.actor)
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
            "grain": triangle.grain(),
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
    Negative development fails its check unless allowed: finding it is the point.
    """

    label = "data validation"
    requires_valid_triangle = False
    allow_negative_default = False
    steps = (
        Step("load_file", "Read the triangle file"),
        Step("check_triangle", "Check the triangle"),
        Step("write_report", "Write the validation report"),
    )

    def load_file(self) -> None:
        """Read the triangle artefact's bytes (hash-checked)."""
        self.source = triangle_artefact(self.params["triangle_artefact"], self.run.engagement)
        self.data = artefact_bytes(self.source, actor=self.actor)

    def check_triangle(self) -> None:
        """Run every triangle check and keep the report."""
        self.report = validate_triangle(
            self.data,
            self.source.file_name,
            layout=self.params["layout"],
            cumulative=self.params["cumulative"],
            measure=self.params["measure"],
            allow_negative_development=self.params["allow_negative_development"],
            columns=self.params.get("columns"),
        )

    def write_report(self) -> None:
        """Store the report as a Markdown artefact."""
        from workflows.reserving import validation_report_markdown

        self.store_artefact(
            validation_report_markdown(self.report, source=source_summary(self.source)).encode(
                "utf-8"
            ),
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
        from workflows.reserving import age_to_age_csv

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


# --- reserve calculation and IBNR estimation ---------------------------------------------

METHOD_NAMES = {
    "chain_ladder": "Chain ladder (Mack)",
    "bornhuetter_ferguson": "Bornhuetter-Ferguson",
    "benktander": "Benktander",
    "cape_cod": "Cape Cod",
    "bootstrap_odp": "ODP bootstrap",
}
# How the result artefacts of each method are named ("<run>: chain ladder reserves (CSV)").
ARTEFACT_NAMES = {
    "chain_ladder": "chain ladder",
    "bornhuetter_ferguson": "Bornhuetter-Ferguson",
    "benktander": "Benktander",
    "cape_cod": "Cape Cod",
    "bootstrap_odp": "ODP bootstrap",
}


class ReserveCalculation(TriangleWorkflow):
    """Reserves by the chosen method with its spread: CSV, Excel and charts; then sign-off.

    Chain ladder with Mack's standard errors (default), Bornhuetter-Ferguson,
    Benktander, Cape Cod, or the ODP bootstrap, on factors the actuary selects. The run
    waits for a workflow approval: reserves are a result someone independent must review
    before they are used.
    """

    label = "reserve calculation"
    needs_approval = True
    accepted_params = RESERVE_PARAMS
    artefact_params = ("triangle_artefact", "exposure_artefact")
    steps = (
        Step("load_triangle", "Read and check the triangle"),
        Step("fit_chain_ladder", "Fit chain ladder with Mack standard errors"),
        Step("write_tables", "Write the results (CSV and Excel)"),
        Step("draw_chart", "Draw latest and ultimate by origin (PNG)"),
    )

    @classmethod
    def options(cls, input_params: Any) -> dict[str, Any]:
        """Return the triangle parameters and the reserving choices, canonical."""
        params = super().options(input_params)
        params.update(reserving_options(input_params).to_params())
        return params

    @classmethod
    def validate_params(cls, input_params: Any, engagement: Engagement) -> dict[str, Any]:
        """Check every parameter and what it names: triangle, exposure, prior run.

        The development and the tail are fitted once on the triangle, so that choices
        that cannot work on it are refused now, naming the parameter.
        """
        params = cls.options(input_params)
        artefact = triangle_artefact(params["triangle_artefact"], engagement)
        params["triangle_artefact"] = str(artefact.pk)
        triangle = parse_triangle(artefact_bytes(artefact), artefact, params)
        options = reserving_options(params)
        try:
            check_against_triangle(options, triangle)
        except ReservingInputError as error:
            raise InvalidInput(named(error)) from None
        if options.exposure_artefact is not None:
            exposure, _values, _column = exposure_of(options, triangle, engagement)
            params["exposure_artefact"] = str(exposure.pk)
        if options.prior_run is not None:
            params["prior_run"] = str(prior_run_of(options, engagement, triangle.measure).pk)
        return params

    def load_triangle(self) -> None:
        """Read the triangle (hash-checked), and the exposure and prior run if named."""
        super().load_triangle()
        self.choices = reserving_options(self.params)
        self.exposure_source = None
        self.exposure: dict[str, float] | None = None
        if self.choices.exposure_artefact is not None:
            self.exposure_source, self.exposure, self.exposure_column = exposure_of(
                self.choices, self.triangle, self.run.engagement, actor=self.actor
            )
        self.prior = None
        if self.choices.prior_run is not None:
            self.prior = prior_run_of(self.choices, self.run.engagement, self.triangle.measure)

    def fit_chain_ladder(self) -> None:
        """Select the factors and the tail, and estimate the reserves by the chosen method.

        Every method starts from the chain ladder's selected development; the chain
        ladder adds Mack's standard errors, the bootstrap its simulated distribution.
        """
        from dataclasses import replace

        from workflows import reserving

        choices, triangle = self.choices, self.triangle
        common = {"selection": choices.selection, "tail": choices.tail}
        if choices.method == "chain_ladder":
            result = reserving.chain_ladder_mack(triangle, **common)
        elif choices.method == "bornhuetter_ferguson":
            result = reserving.bornhuetter_ferguson(
                triangle,
                exposure=self.exposure,
                apriori_loss_ratio=choices.apriori_loss_ratio,
                **common,
            )
        elif choices.method == "benktander":
            result = reserving.benktander(
                triangle,
                exposure=self.exposure,
                apriori_loss_ratio=choices.apriori_loss_ratio,
                n_iterations=choices.n_iterations,
                **common,
            )
        elif choices.method == "cape_cod":
            result = reserving.cape_cod(
                triangle, exposure=self.exposure, trend=choices.trend, decay=choices.decay, **common
            )
        else:
            result = reserving.bootstrap_odp(
                triangle,
                random_seed=choices.random_seed,
                n_sims=choices.n_sims,
                percentiles=choices.percentiles,
                **common,
            )
        if self.prior is not None:
            comparison = reserving.actual_vs_expected(
                result.to_dict(),
                self.prior.output_summary,
                prior_info=prior_run_summary(self.prior),
                triangle=triangle,
            )
            result = replace(result, actual_vs_expected=comparison)
        self.result = result

    @property
    def file_stem(self) -> str:
        return self.result.method

    def write_tables(self) -> None:
        """Store the per-origin results as a CSV and an Excel workbook."""
        from workflows.reserving import reserve_result_csv, reserve_result_xlsx

        name = ARTEFACT_NAMES[self.result.method]
        self.store_artefact(
            reserve_result_csv(self.result),
            file_name=f"{self.file_stem}_reserves.csv",
            artefact_type=ArtefactType.CSV,
            name=self.artefact_name(f"{name} reserves (CSV)"),
            description="Latest, CDF, ultimate and IBNR by origin, with the method's spread "
            "and totals.",
            metadata=self.input_metadata(),
        )
        # A draft: the approval comes after; the run page's download says APPROVED once given.
        self.store_artefact(
            reserve_result_xlsx(
                self.result, triangle=self.triangle, header=working_paper_header(self.run)
            ),
            file_name=f"{self.file_stem}_reserves.xlsx",
            artefact_type=ArtefactType.EXCEL,
            name=self.artefact_name(f"{name} reserves (Excel)"),
            description="The working paper: a header (client, valuation date, run, author, "
            "DRAFT), the triangle, link ratios with the points left out, averages and "
            "selections with reasons, reserves with live formulas, options and provenance.",
            metadata=self.input_metadata(),
        )

    def draw_chart(self) -> None:
        """Store the latest-vs-ultimate chart, and for the bootstrap the IBNR histogram."""
        from workflows.reserving import render_histogram_png, render_reserve_chart_png

        self.store_artefact(
            render_reserve_chart_png(
                self.result,
                title=f"{METHOD_NAMES[self.result.method]}: {self.source.name} "
                f"({self.result.measure})",
            ),
            file_name=f"{self.file_stem}_chart.png",
            artefact_type=ArtefactType.CHART,
            name=self.artefact_name("latest and ultimate by origin"),
            description="Latest and ultimate by origin; error bars are ±1 Mack standard error "
            "(chain ladder) or ±1 standard deviation of the simulated IBNR (bootstrap).",
            metadata=self.input_metadata(),
        )
        if self.result.bootstrap is not None:
            self.store_artefact(
                render_histogram_png(self.result),
                file_name=f"{self.file_stem}_histogram.png",
                artefact_type=ArtefactType.CHART,
                name=self.artefact_name("simulated total IBNR (histogram)"),
                description="The bootstrap's simulated total IBNR, with its percentiles.",
                metadata=self.input_metadata(),
            )

    def input_metadata(self) -> dict[str, Any]:
        metadata = {"source_artefact": str(self.source.pk)}
        if self.exposure_source is not None:
            metadata["exposure_artefact"] = str(self.exposure_source.pk)
        return metadata

    def output_summary(self) -> dict[str, Any]:
        """Return the whole result (docs/reserving-methods.md), its inputs and its artefacts."""
        exposure = None
        if self.exposure_source is not None:
            exposure = {**source_summary(self.exposure_source), "column": self.exposure_column}
        return {
            **self.result.output_summary(),
            "triangle": self.triangle_summary(),
            "exposure": exposure,
            "prior_run": prior_run_summary(self.prior) if self.prior is not None else None,
            "artefacts": list(self.artefacts),
        }

    def approval_notes(self) -> str:
        """Say what the reviewer is asked to sign off."""
        result, totals = self.result, self.result.totals
        if totals.mack_se is not None:
            spread = f", Mack S.E. {totals.mack_se:,.0f}"
        elif totals.ibnr_std is not None:
            spread = (
                f", simulated mean {totals.ibnr_mean:,.0f} and std. dev. {totals.ibnr_std:,.0f} "
                f"({result.bootstrap.n_sims:,} simulations, seed {result.bootstrap.random_seed})"
            )
        elif result.method == "chain_ladder":
            spread = ", Mack S.E. n/a"
        else:
            spread = ""
        overrides = sum(1 for f in result.development_factors if f.source == "override")
        judgments = []
        if overrides:
            judgments.append(f"{overrides} selected factor(s)")
        if result.excluded_points:
            judgments.append(f"{len(result.excluded_points)} excluded link ratio(s)")
        if result.tail is not None:
            judgments.append(f"a {result.tail.method} tail of {result.tail.factor:.4f}")
        judged = f" Judgments: {', '.join(judgments)}." if judgments else ""
        return (
            f"{METHOD_NAMES[result.method]} ({result.options['average']} average) on triangle "
            f"“{self.source.name}”: total IBNR {totals.ibnr:,.0f}, ultimate "
            f"{totals.ultimate:,.0f}{spread}.{judged} "
            f"Review the {len(self.artefacts)} result artefacts of the run."
        )


class IBNREstimation(ReserveCalculation):
    """IBNR by the reserve calculation's methods (chain ladder with Mack by default)."""

    label = "IBNR estimation"
