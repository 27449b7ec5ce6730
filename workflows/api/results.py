"""The schema of what a workflow run records: its results, metrics, provenance and failure.

`WorkflowRun.output_summary` is written by the implementation of the run's type
(`workflows.implementations`), or, for work done elsewhere, sent by whoever reports
it (`POST …/complete/`, `…/progress/`). A reserving run's summary is the engine's
`ReserveResult.to_dict()` (`workflows.reserving.results`), whose shapes are derived
here from the engine's frozen dataclasses (`records.api.shapes.dataclass_shape`): one
shape for every method, the figures a method does not produce being null (each
field's description says which methods fill it). The keys `to_dict()` writes
differently from the dataclass fields (percentiles, the bootstrap's histogram, the
actual-vs-expected totals) are declared beside it. tests/test_api_result_schemas.py
checks the results of every method, and of the other runner types, against them.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from records.api.shapes import OpenShape, Shape, dataclass_shape
from workflows.reserving.options import METHODS
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

CHAIN_LADDER = "chain_ladder only (Mack); null for the other methods or when not estimable."
EXPOSURE_BASED = "bornhuetter_ferguson, benktander and cape_cod; null for the other methods."
BOOTSTRAP = "bootstrap_odp only (the simulated IBNR); null for the other methods."
PERCENTILES = (
    "bootstrap_odp only: the simulated IBNR at each percentile level, keyed by the level "
    '({"50": …, "75": …, "99.5": …}); null for the other methods.'
)


def _percentiles() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.FloatField(), allow_null=True, help_text=PERCENTILES
    )


# --- the reserving engine's result (workflows.reserving.results) -----------------------------

_FIGURES = {
    "latest": "The latest diagonal's value.",
    "ultimate": "The estimated ultimate.",
    "ibnr": "Ultimate minus latest.",
    "mack_se": "Mack's standard error of the IBNR: " + CHAIN_LADDER,
    "cv": "Coefficient of variation: mack_se / IBNR (chain_ladder), or the simulated IBNR's "
    "standard deviation / mean (bootstrap_odp); null for the other methods or when not "
    "estimable.",
    "exposure": "The exposure (e.g. earned premium): " + EXPOSURE_BASED,
    "expected_ultimate": "The a-priori expected ultimate: " + EXPOSURE_BASED,
    "ibnr_mean": "Mean of the simulated IBNR: " + BOOTSTRAP,
    "ibnr_std": "Standard deviation of the simulated IBNR: " + BOOTSTRAP,
}

OriginReserveShape = dataclass_shape(
    OriginReserve,
    fields={"percentiles": _percentiles()},
    help_texts={
        **_FIGURES,
        "origin": "The origin period's label.",
        "development_age": "Its latest development age.",
        "cdf": "The cumulative development factor from that age to ultimate.",
        "apriori_loss_ratio": "The a-priori loss ratio used: " + EXPOSURE_BASED,
    },
)
ReserveTotalsShape = dataclass_shape(
    ReserveTotals,
    fields={"percentiles": _percentiles()},
    help_texts={
        **_FIGURES,
        "method": "The method (as in the result).",
        "mack_se": "Mack's standard error of the total IBNR, with the correlation between "
        "origins: " + CHAIN_LADDER,
    },
)
DevelopmentFactorShape = dataclass_shape(
    DevelopmentFactor,
    help_texts={
        "period": 'The development period ("12-24"; the tail last, "120-Ult").',
        "source": "average, override (a selected factor: see reason), no_data, or tail.",
        "average": "The average the factor came from (source average).",
        "reason": "Why the factor was selected (source override).",
        "computed": "The average the data gave, for a selected factor.",
    },
)
ExcludedPointShape = dataclass_shape(
    ExcludedPoint,
    help_texts={
        "reason": "exclude, drop_high, drop_low, medial_high or medial_low.",
    },
)
TailResultShape = dataclass_shape(TailResult)


class BootstrapHistogramShape(Shape):
    """The histogram of the simulated total IBNR: bin edges and the count in each bin."""

    of = serializers.CharField(help_text='What is counted: "total IBNR".')
    edges = serializers.ListField(child=serializers.FloatField())
    counts = serializers.ListField(child=serializers.IntegerField())


BootstrapSummaryShape = dataclass_shape(
    BootstrapSummary,
    exclude=("histogram_edges", "histogram_counts"),
    fields={
        "process_distribution": serializers.CharField(help_text='"gamma".'),
        "residual_adjustment": serializers.CharField(help_text='"hat matrix".'),
        "histogram": BootstrapHistogramShape(),
    },
    help_texts={"scale": "The fitted over-dispersion φ."},
)
OriginEmergenceShape = dataclass_shape(OriginEmergence)


class EmergenceTotalsShape(Shape):
    """Actual against expected emergence over all origins."""

    actual = serializers.FloatField()
    expected = serializers.FloatField()
    difference = serializers.FloatField()
    actual_to_expected = serializers.FloatField(allow_null=True)


class PriorRunShape(Shape):
    """The earlier reserving run a result is compared with (its prior_run input)."""

    run_id = serializers.UUIDField()
    name = serializers.CharField()
    period = serializers.CharField()
    engagement_id = serializers.UUIDField()
    engagement = serializers.CharField(help_text="The engagement's name.")
    method = serializers.CharField()
    completed_at = serializers.DateTimeField(allow_null=True)
    output_sha256 = serializers.CharField(
        help_text="SHA-256 of the prior run's output_summary (canonical JSON) compared with."
    )


ActualVsExpectedShape = dataclass_shape(
    ActualVsExpected,
    exclude=("actual", "expected", "difference", "actual_to_expected"),
    fields={"prior": PriorRunShape(), "totals": EmergenceTotalsShape()},
)


NUMBER = {"type": "number", "format": "double"}


@extend_schema_field({"anyOf": [NUMBER, {"type": "object", "additionalProperties": NUMBER}]})
class LossRatioField(serializers.JSONField):
    """An a-priori loss ratio: one number, or one per origin ({origin: ratio})."""


@extend_schema_field({"anyOf": [{"type": "string"}, NUMBER]})
class OriginOrAgeField(serializers.JSONField):
    """An origin's label or a development age."""


class TailChoiceShape(Shape):
    """The tail chosen: constant (factor, reason), a curve fitted from an age, or Bondy."""

    method = serializers.CharField(help_text="constant, exponential, inverse_power or bondy.")
    factor = serializers.FloatField(required=False, help_text="constant only.")
    reason = serializers.CharField(required=False, help_text="constant only.")
    fit_from_age = serializers.FloatField(
        required=False, help_text="The curves, when fitted from a given age."
    )


class SelectedFactorShape(Shape):
    """A development factor the actuary selected, with the reason."""

    factor = serializers.FloatField()
    reason = serializers.CharField()


class ReservingOptionsShape(Shape):
    """Every choice a reserving result was made with: the run's parameters, with defaults.

    The method's own parameters are there for that method only.
    """

    method = serializers.ChoiceField(choices=METHODS)
    average = serializers.CharField(help_text="The average of the link ratios (volume, …).")
    averages = serializers.DictField(
        child=serializers.CharField(), help_text="Another average per development age."
    )
    n_periods = serializers.IntegerField(
        allow_null=True, help_text="The latest calendar periods averaged (null: all)."
    )
    drop_high = serializers.IntegerField()
    drop_low = serializers.IntegerField()
    exclude = serializers.ListField(
        child=serializers.ListField(child=OriginOrAgeField(), min_length=2, max_length=2),
        help_text="The link ratios left out, as [origin, from age] pairs.",
    )
    selected_factors = serializers.DictField(
        child=SelectedFactorShape(), help_text="Selected factors by development age."
    )
    tail = TailChoiceShape(allow_null=True, help_text="The tail chosen; null without a tail.")
    tail_factor = serializers.FloatField(allow_null=True, help_text="The tail's factor.")
    sigma_interpolation = serializers.CharField()
    engine = serializers.CharField()
    apriori_loss_ratio = LossRatioField(
        required=False,
        help_text="bornhuetter_ferguson, benktander: a number, or one per origin.",
    )
    n_iterations = serializers.IntegerField(required=False, help_text="benktander.")
    trend = serializers.FloatField(required=False, help_text="cape_cod.")
    decay = serializers.FloatField(required=False, help_text="cape_cod.")
    n_sims = serializers.IntegerField(required=False, help_text="bootstrap_odp.")
    random_seed = serializers.IntegerField(required=False, help_text="bootstrap_odp.")
    percentiles = serializers.ListField(
        child=serializers.FloatField(), required=False, help_text="bootstrap_odp."
    )


class TriangleGrainShape(Shape):
    """The grain of a triangle's origins and development."""

    origin = serializers.CharField(
        allow_null=True,
        help_text="annual, semi-annual, quarterly or monthly; null when the labels carry none.",
    )
    periods_per_origin = serializers.IntegerField()
    development_months = serializers.IntegerField(allow_null=True)


ReserveResultShape = dataclass_shape(
    ReserveResult,
    fields={
        "method": serializers.ChoiceField(choices=METHODS),
        "grain": TriangleGrainShape(),
        "options": ReservingOptionsShape(),
    },
    help_texts={
        "measure": "paid or incurred.",
        "tail": "The tail from the last age to ultimate; null without a tail.",
        "bootstrap": "How the ODP bootstrap simulated: bootstrap_odp only, else null.",
        "actual_vs_expected": "Emergence since the prior run against its expectation; "
        "null without prior_run.",
        "warnings": "Plain-language notes about the data and the estimates.",
    },
)


# --- what a run read and wrote -------------------------------------------------------------


class SourceArtefactShape(Shape):
    """An artefact a run read: which one, and the exact bytes (SHA-256)."""

    artefact_id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    file_name = serializers.CharField()
    content_hash = serializers.CharField()


class TriangleReadShape(SourceArtefactShape):
    """The triangle artefact a run read, and the triangle found in it."""

    layout = serializers.CharField(help_text="long or wide.")
    input = serializers.CharField(help_text="cumulative or incremental.")
    origin_count = serializers.IntegerField()
    development_ages = serializers.ListField(child=serializers.FloatField())
    grain = TriangleGrainShape()
    warnings = serializers.ListField(child=serializers.CharField())


class ExposureReadShape(SourceArtefactShape):
    """The exposure artefact a run read, and the column used."""

    column = serializers.CharField()


class RunArtefactShape(Shape):
    """An artefact a run wrote (a draft linked to the run)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    artefact_type = serializers.CharField()
    file_name = serializers.CharField()
    content_hash = serializers.CharField()


class ReservingRunSummaryShape(ReserveResultShape):
    """The result of a reserve_calculation or ibnr_estimation run, whatever the method.

    The reserving engine's result (docs/actuaries/reserving-methods.md, Results) with
    what the run read (triangle, exposure, prior run) and wrote (artefacts).
    """

    triangle = TriangleReadShape()
    exposure = ExposureReadShape(
        allow_null=True, help_text="bornhuetter_ferguson, benktander, cape_cod; else null."
    )
    prior_run = PriorRunShape(allow_null=True, help_text="Null without prior_run.")
    artefacts = RunArtefactShape(many=True)


class FactorAveragesShape(Shape):
    """A value per development period, by average (null where no factor is defined)."""

    simple = serializers.ListField(child=serializers.FloatField(allow_null=True))
    volume = serializers.ListField(child=serializers.FloatField(allow_null=True))


class TriangleAnalysisSummaryShape(Shape):
    """The result of a triangle_analysis run: age-to-age factor averages per period.

    The factors per origin are in the run's CSV artefact.
    """

    measure = serializers.CharField()
    triangle = TriangleReadShape()
    periods = serializers.ListField(child=serializers.CharField())
    factor_counts = serializers.ListField(child=serializers.IntegerField())
    averages = FactorAveragesShape()
    cumulative_factors = FactorAveragesShape(
        help_text="From each age to the last observed age (no tail)."
    )
    artefacts = RunArtefactShape(many=True)


class TriangleCheckShape(Shape):
    """One check of a triangle file and what it found."""

    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.ChoiceField(choices=("passed", "failed", "skipped"))
    problems = serializers.ListField(child=serializers.CharField())


class LatestValueShape(Shape):
    """An origin's latest value and its development age."""

    origin = serializers.CharField()
    development_age = serializers.FloatField()
    value = serializers.FloatField()


class TriangleValidationReportShape(Shape):
    """Every check of a triangle file; for a valid one, what it holds."""

    valid = serializers.BooleanField()
    file_name = serializers.CharField()
    layout = serializers.CharField(allow_null=True, help_text="Null if it could not be told.")
    measure = serializers.CharField()
    input = serializers.CharField()
    allow_negative_development = serializers.BooleanField()
    checks = TriangleCheckShape(many=True)
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    origins = serializers.ListField(child=serializers.CharField())
    development_ages = serializers.ListField(child=serializers.FloatField())
    grain = TriangleGrainShape(allow_null=True)
    origin_count = serializers.IntegerField()
    development_age_count = serializers.IntegerField()
    cell_count = serializers.IntegerField()
    latest_diagonal = LatestValueShape(many=True)
    latest_total = serializers.FloatField(allow_null=True)


class DataValidationSummaryShape(Shape):
    """The result of a data_validation run: whether the triangle is valid, and the report."""

    valid = serializers.BooleanField()
    triangle = SourceArtefactShape()
    report = TriangleValidationReportShape()
    artefacts = RunArtefactShape(many=True)


class ReportedOutputSummaryShape(OpenShape):
    """Results reported for work done elsewhere (POST …/complete/ or …/progress/), as sent.

    Also the results of a reserving run made by an earlier version, which kept fewer keys.
    """


class RunResultHeadlineShape(Shape):
    """A reserving run's headline figures, from its output summary: method and totals."""

    method = serializers.CharField(
        allow_null=True, help_text="The reserving method (chain_ladder, bornhuetter_ferguson, …)."
    )
    measure = serializers.CharField(allow_null=True, help_text="paid or incurred.")
    latest = serializers.FloatField(help_text="Total of the latest diagonal.")
    ultimate = serializers.FloatField(help_text="Total estimated ultimate.")
    ibnr = serializers.FloatField(help_text="Total IBNR: ultimate minus latest.")


# The runner's types first: a client tries them in order, the open object last.
OUTPUT_SUMMARY_SHAPES = (
    ReservingRunSummaryShape,
    TriangleAnalysisSummaryShape,
    DataValidationSummaryShape,
    ReportedOutputSummaryShape,
)


# --- metrics, provenance, failure ------------------------------------------------------------


class StepMetricShape(Shape):
    """How long one step of a run took."""

    name = serializers.CharField()
    label = serializers.CharField()
    seconds = serializers.FloatField()
    failed = serializers.BooleanField(required=False, help_text="Present (true) if it failed.")


class WorkflowRunMetricsShape(Shape):
    """What the runner measured (every key once a step ran), merged with reported metrics.

    Empty until the first step ends; metrics reported through …/progress/ are merged in
    under their own keys.
    """

    additional_properties = {}

    steps = StepMetricShape(many=True, required=False)
    step_seconds = serializers.DictField(
        child=serializers.FloatField(), required=False, help_text="Seconds per step name."
    )
    total_seconds = serializers.FloatField(required=False)
    queued_by = serializers.CharField(required=False, help_text="Who the runner acted as.")


class ProvenanceInputShape(Shape):
    """An input artefact of a run, as it was when the run started."""

    param = serializers.CharField(help_text="The input parameter naming it.")
    artefact_id = serializers.UUIDField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    file_name = serializers.CharField()
    file_size = serializers.IntegerField()
    content_hash = serializers.CharField()


class ProvenanceParametersShape(Shape):
    """The checked input parameters the run ran with, as canonical JSON and its hash."""

    sha256 = serializers.CharField()
    canonical = serializers.CharField()


class RunEnvironmentShape(Shape):
    """The code and library versions a run ran with (null when unknown)."""

    app_version = serializers.CharField(allow_null=True)
    git_commit = serializers.CharField(allow_null=True)
    python = serializers.CharField()
    python_implementation = serializers.CharField()
    libraries = serializers.DictField(child=serializers.CharField(allow_null=True))


class RunProvenanceShape(Shape):
    """What a run ran with (ASOP 56), recorded by the runner when it starts the run.

    Empty for a run the runner has not started, and for work done elsewhere.
    """

    recorded_at = serializers.DateTimeField(required=False)
    workflow_type = serializers.CharField(required=False)
    implementation = serializers.CharField(required=False, allow_null=True)
    steps = serializers.ListField(child=serializers.CharField(), required=False)
    inputs = ProvenanceInputShape(many=True, required=False)
    parameters = ProvenanceParametersShape(required=False)
    environment = RunEnvironmentShape(required=False)


class StepFailureShape(Shape):
    """Why the runner failed a run: the step and the exception."""

    step = serializers.CharField(help_text='The step\'s name ("validate_input", "finish", …).')
    step_label = serializers.CharField(required=False)
    step_number = serializers.IntegerField(required=False)
    step_count = serializers.IntegerField(required=False)
    exception_type = serializers.CharField()
    message = serializers.CharField()
    traceback = serializers.CharField(required=False)


class ApprovalRejectionShape(Shape):
    """Why a run that waited for its sign-off failed: its workflow approval was rejected."""

    approval_id = serializers.UUIDField()
    rejection_reason = serializers.CharField()
    decision_notes = serializers.CharField(allow_blank=True)


class ReportedErrorDetailsShape(OpenShape):
    """Details reported with the failure of work done elsewhere (POST …/fail/), as sent."""


ERROR_DETAILS_SHAPES = (StepFailureShape, ApprovalRejectionShape, ReportedErrorDetailsShape)


# --- replays ---------------------------------------------------------------------------------


class ReplayInputShape(ProvenanceInputShape):
    """An input of the run, checked before the replay: it exists with the recorded bytes."""

    verified = serializers.BooleanField()


class ReplayOutputShape(Shape):
    """One output of the run and of its replay, paired by file name, and whether they match."""

    artefact_id = serializers.UUIDField(allow_null=True, help_text="Null: the run never stored it.")
    name = serializers.CharField()
    file_name = serializers.CharField()
    original_hash = serializers.CharField(allow_null=True)
    replay_hash = serializers.CharField(allow_null=True, help_text="Null: the replay made none.")
    match = serializers.BooleanField()


class VersionChangeShape(Shape):
    """A version that differs between the run and its replay."""

    original = serializers.CharField(allow_null=True)
    replay = serializers.CharField(allow_null=True)


class ReplayEnvironmentShape(Shape):
    """The code and library versions of the replay and of the run, and what differs."""

    replay = RunEnvironmentShape()
    original = RunEnvironmentShape()
    differences = serializers.DictField(
        child=VersionChangeShape(), help_text="By what differs (python, git_commit, numpy, …)."
    )
