"""The method and the selections of a reserving run, as a form and a live link-ratio panel.

Shared by the guided "New reserving analysis" (its third step) and "Re-run with
changes" (pre-filled from a run's input_params). The form turns its fields into the
reserving input_params of `workflows.reserving.options` and checks them on the
triangle with the engine's own checks, so a refusal is shown next to the field it is
about, in words that name the field, before anything is written.

The panel (`selection_panel`) shows the link-ratio triangle (each ratio a checkbox:
clicking it excludes or includes the point), the candidate averages of each period,
the average picked per period, a judgmental factor with its reason, and the selected
row with its source and the cumulative factors. htmx posts the form on every change
and swaps the panel, so the effect of a choice is seen before the run is queued.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from django import forms
from django.forms.utils import pretty_name

from artefacts.choices import INPUT_DATA_TYPES, RETIRED_STATUSES
from artefacts.models import Artefact
from records.formatting import field_label

from ..implementations.reserving_inputs import MAX_TRIANGLE_FILE_SIZE
from ..reserving import (
    AVERAGES,
    DevelopmentError,
    ExposureError,
    ReservingInputError,
    TriangleData,
    check_against_triangle,
    fit_development,
    fit_tail,
    match_exposure,
    parse_options,
    read_exposure,
)
from ..reserving.methods.common import age_key
from ..reserving.options import EXPOSURE_METHODS

METHOD_CHOICES = (
    ("chain_ladder", "Chain ladder (Mack standard errors)"),
    ("bornhuetter_ferguson", "Bornhuetter-Ferguson (exposure × a-priori loss ratio)"),
    ("benktander", "Benktander (iterated Bornhuetter-Ferguson)"),
    ("cape_cod", "Cape Cod (loss ratio from the data and the exposure)"),
    ("bootstrap_odp", "Bootstrap ODP (simulated reserve percentiles)"),
)
AVERAGE_LABELS = {
    "volume": "Volume-weighted",
    "simple": "Simple",
    "medial": "Medial (less high and low)",
    "regression": "Regression",
}
TAIL_CHOICES = (
    ("", "No tail"),
    ("constant", "A factor I select"),
    ("exponential", "Exponential curve fitted to the factors"),
    ("inverse_power", "Inverse power curve fitted to the factors"),
    ("bondy", "Bondy: the last factor repeated"),
)
SOURCE_LABELS = {"average": "average", "override": "selected", "no_data": "no data: 1.000"}
# What the engine's parameter names are on this form (a refusal is shown next to it).
PARAM_FIELDS = {
    "method": "method",
    "average": "average",
    "n_periods": "n_periods",
    "exclude": "exclude",
    "tail": "tail",
    "tail_factor": "tail_factor",
    "exposure_artefact": "exposure_artefact",
    "apriori_loss_ratio": "apriori_loss_ratio",
    "trend": "trend",
    "decay": "decay",
    "n_sims": "n_sims",
    "random_seed": "random_seed",
}
# The engine's words for its parameters, as this form labels them.
PARAM_WORDS = (
    ("selected_factors", "the selected factor"),
    ("apriori_loss_ratio", "the a-priori loss ratio"),
    ("exposure_artefact", "the exposure"),
    ("tail_factor", "the tail factor"),
    ("prior_run", "the prior run"),
    ("n_iterations", "the number of iterations"),
    ("n_periods", "the latest origins"),
    ("random_seed", "the random seed"),
    ("n_sims", "the number of simulations"),
)
# Stands for an exposure file chosen for upload while the form is checked: the file
# becomes an artefact (through the artefacts service) only once everything else holds.
UPLOAD_PLACEHOLDER = "exposure file to upload"
EXPOSURE_NEEDED = "Choose the exposure (e.g. earned premium by origin), or upload its file."
EXPOSURE_BOTH = "Choose an exposure or upload one, not both."
EXPOSURE_TOO_LARGE = (
    "The exposure file is {size:,} bytes, more than the {limit:,} bytes it may have."
)
REASON_NEEDED = "Give the reason for the selected factor."
TAIL_FACTOR_NEEDED = "Give the tail factor you select (at least 1)."
FACTOR_NEEDED = "Give the factor this reason is for."


def ratio_key(origin: str, age: int | float) -> str:
    """Return how a link ratio is named in the form: "<origin>|<from age>"."""
    return f"{origin}|{age_key(age)}"


# A message that starts with the parameter it is about ("prior_run must be …").
LEADING_PARAM = re.compile(r"^([a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")


def words(message: str, labels: dict[str, str] | None = None) -> str:
    """Return an engine message with its parameter names in the form's words.

    A message that starts with a parameter's name starts with the label of the form's
    field for it (`labels`, else this module's SelectionsForm, else the name as words:
    "prior_run must be …" → "Prior run must be …"); names further on read as PARAM_WORDS.
    """
    match = LEADING_PARAM.match(message)
    if match:
        message = param_label(match.group(1), labels) + message[match.end() :]
    for name, text in PARAM_WORDS:
        message = message.replace(name, text)
    return message


def form_labels(form) -> dict[str, str]:
    """Return each field's label as `form` shows it, by field name."""
    return {name: str(field.label or pretty_name(name)) for name, field in form.fields.items()}


def param_label(name: str, labels: dict[str, str] | None = None) -> str:
    """Return how a form labels the parameter `name` (records.formatting's words if none)."""
    if labels and labels.get(name):
        return labels[name]
    field = SelectionsForm.base_fields.get(PARAM_FIELDS.get(name, name))
    if field is not None and field.label:
        return str(field.label)
    return field_label(name)


def exposure_choices(engagement_id) -> Any:
    """Return the engagement's uploaded input data an exposure may be read from."""
    return (
        Artefact.objects.filter(
            engagement_id=engagement_id,
            artefact_type__in=INPUT_DATA_TYPES,
            workflow_run__isnull=True,
        )
        .exclude(status__in=RETIRED_STATUSES)
        .order_by("name", "-version")
    )


class SelectionsForm(forms.Form):
    """The method and the selections of a reserving run on one triangle."""

    name = forms.CharField(max_length=255, help_text="How the run is listed.")
    period = forms.CharField(max_length=50, required=False, help_text="e.g. 2025-Q4")
    method = forms.ChoiceField(choices=METHOD_CHOICES, initial="chain_ladder")
    average = forms.ChoiceField(
        choices=tuple(AVERAGE_LABELS.items()),
        initial="volume",
        label="Average of the link ratios",
        help_text="For every period, unless a period below picks its own.",
    )
    n_periods = forms.IntegerField(
        min_value=1,
        required=False,
        label="Latest origins used",
        help_text="Average only the latest n link ratios of each period; empty: all.",
    )
    exclude = forms.MultipleChoiceField(required=False, widget=forms.MultipleHiddenInput)
    tail = forms.ChoiceField(choices=TAIL_CHOICES, required=False)
    tail_factor = forms.FloatField(min_value=1.0, required=False, label="Tail factor")
    tail_reason = forms.CharField(max_length=500, required=False, label="Reason for the tail")
    exposure_artefact = forms.ModelChoiceField(
        queryset=Artefact.objects.none(),
        required=False,
        label="Exposure",
        help_text="Bornhuetter-Ferguson, Benktander and Cape Cod: a file of origin and "
        "exposure columns (e.g. earned premium) uploaded to this engagement.",
    )
    exposure_file = forms.FileField(
        required=False, label="…or upload the exposure file (CSV or Excel)"
    )
    apriori_loss_ratio = forms.FloatField(
        min_value=0.0001,
        required=False,
        label="A-priori loss ratio",
        help_text="Bornhuetter-Ferguson and Benktander: the expected loss ratio, e.g. 0.65.",
    )
    trend = forms.FloatField(required=False, help_text="Cape Cod: annual trend, e.g. 0.03.")
    decay = forms.FloatField(required=False, help_text="Cape Cod: decay, above 0 and at most 1.")
    n_sims = forms.IntegerField(
        min_value=1, required=False, label="Simulations", help_text="Bootstrap: default 1000."
    )
    random_seed = forms.IntegerField(
        min_value=0,
        required=False,
        help_text="Bootstrap: makes the simulation reproducible.",
    )

    def __init__(self, *args, triangle: TriangleData, engagement_id, **kwargs):
        super().__init__(*args, **kwargs)
        self.triangle = triangle
        self.starts = triangle.development_ages[:-1]
        self.fields["exposure_artefact"].queryset = exposure_choices(engagement_id)
        self.fields["exclude"].choices = [
            (ratio_key(origin, age), ratio_key(origin, age))
            for origin in triangle.origins
            for age in self.starts
        ]
        for index, age in enumerate(self.starts):
            # Short labels: one select per period column of the link-ratio grid.
            self.fields[f"average_{index}"] = forms.ChoiceField(
                choices=(("", "default"), *((average, average) for average in AVERAGES)),
                required=False,
                label=f"Average from {age_key(age)}",
            )
            # A factor waits for its reason: only the reason's change refreshes the panel.
            self.fields[f"factor_{index}"] = forms.FloatField(
                min_value=0.0001,
                required=False,
                label=f"Selected factor from {age_key(age)}",
                widget=forms.NumberInput(attrs={"class": "quiet", "step": "any"}),
            )
            self.fields[f"reason_{index}"] = forms.CharField(
                max_length=500, required=False, label=f"Reason from {age_key(age)}"
            )
        self.params: dict[str, Any] | None = None

    def clean(self):
        data = super().clean()
        for index in range(len(self.starts)):
            factor, reason = data.get(f"factor_{index}"), data.get(f"reason_{index}")
            if factor is not None and not (reason or "").strip():
                self.add_error(f"reason_{index}", REASON_NEEDED)
            if factor is None and (reason or "").strip() and f"factor_{index}" not in self.errors:
                self.add_error(f"factor_{index}", FACTOR_NEEDED)
        if data.get("tail") == "constant" and data.get("tail_factor") is None:
            self.add_error("tail_factor", TAIL_FACTOR_NEEDED)
        if data.get("exposure_artefact") is not None and data.get("exposure_file"):
            self.add_error("exposure_file", EXPOSURE_BOTH)
        elif data.get("exposure_file") and data.get("method") in EXPOSURE_METHODS:
            self._check_exposure_file(data["exposure_file"])
        if self.errors:
            return data
        params = self.reserving_params(data)
        try:
            options = parse_options(params)
            check_against_triangle(options, self.triangle)
        except ReservingInputError as error:
            if error.param == "exposure_artefact":
                self.add_error("exposure_artefact", EXPOSURE_NEEDED)
            else:
                self.add_error(PARAM_FIELDS.get(error.param), words(error.message))
            return data
        self.params = params
        return data

    def _check_exposure_file(self, upload) -> None:
        """Refuse an exposure file that does not give the triangle's origins, before storing it."""
        if upload.size > MAX_TRIANGLE_FILE_SIZE:
            self.add_error(
                "exposure_file",
                EXPOSURE_TOO_LARGE.format(size=upload.size, limit=MAX_TRIANGLE_FILE_SIZE),
            )
            return
        data = upload.read()
        upload.seek(0)
        try:
            match_exposure(read_exposure(data, upload.name), self.triangle)
        except ExposureError as error:
            self.add_error("exposure_file", str(error))

    def reserving_params(self, data: dict[str, Any]) -> dict[str, Any]:
        """Return the reserving input_params the fields make (the triangle's are added later)."""
        method = data.get("method") or "chain_ladder"
        params: dict[str, Any] = {"method": method, "average": data.get("average") or "volume"}
        averages = {}
        factors = {}
        for index, age in enumerate(self.starts):
            if data.get(f"average_{index}"):
                averages[age_key(age)] = data[f"average_{index}"]
            if data.get(f"factor_{index}") is not None:
                factors[age_key(age)] = {
                    "factor": data[f"factor_{index}"],
                    "reason": (data.get(f"reason_{index}") or "").strip(),
                }
        if averages:
            params["averages"] = averages
        if factors:
            params["selected_factors"] = factors
        if data.get("n_periods"):
            params["n_periods"] = data["n_periods"]
        exclusions = []
        for key in data.get("exclude") or ():
            origin, _, age = key.rpartition("|")
            exclusions.append([origin, float(age) if "." in age else int(age)])
        if exclusions:
            params["exclude"] = exclusions
        params.update(self._tail_params(data))
        if method in ("bornhuetter_ferguson", "benktander", "cape_cod"):
            # A chosen artefact once the form is valid; while the panel redraws an invalid
            # form, the id as typed (or "" when none is chosen).
            exposure = data.get("exposure_artefact")
            if exposure not in (None, ""):
                params["exposure_artefact"] = str(getattr(exposure, "pk", exposure))
            elif data.get("exposure_file"):
                params["exposure_artefact"] = UPLOAD_PLACEHOLDER
        if method in ("bornhuetter_ferguson", "benktander"):
            params["apriori_loss_ratio"] = data.get("apriori_loss_ratio")
        if method == "cape_cod":
            for name in ("trend", "decay"):
                if data.get(name) is not None:
                    params[name] = data[name]
        if method == "bootstrap_odp":
            params["random_seed"] = data.get("random_seed")
            if data.get("n_sims"):
                params["n_sims"] = data["n_sims"]
        return params

    def _tail_params(self, data) -> dict[str, Any]:
        method = data.get("tail") or ""
        if not method:
            return {}
        if method != "constant":
            return {"tail": {"method": method}}
        factor, reason = data.get("tail_factor"), (data.get("tail_reason") or "").strip()
        if factor is None:  # refused by clean(); the panel shows no tail meanwhile
            return {}
        if not reason:
            return {"tail_factor": factor}
        return {"tail": {"method": "constant", "factor": factor, "reason": reason}}


def initial_from_params(params: dict[str, Any], triangle: TriangleData) -> dict[str, Any]:
    """Return the form's initial values from a run's input_params (its choices as it ran)."""
    starts = [age_key(age) for age in triangle.development_ages[:-1]]
    initial: dict[str, Any] = {
        name: params[name]
        for name in (
            "method",
            "average",
            "n_periods",
            "apriori_loss_ratio",
            "trend",
            "decay",
            "n_sims",
            "random_seed",
        )
        if params.get(name) is not None and not isinstance(params.get(name), dict)
    }
    initial.setdefault("method", "chain_ladder")  # the canonical params leave it out
    if params.get("exposure_artefact"):
        initial["exposure_artefact"] = params["exposure_artefact"]
    initial["exclude"] = [
        ratio_key(str(origin), age) for origin, age in params.get("exclude") or ()
    ]
    for key, average in (params.get("averages") or {}).items():
        if key in starts:
            initial[f"average_{starts.index(key)}"] = average
    for key, entry in (params.get("selected_factors") or {}).items():
        if key in starts:
            initial[f"factor_{starts.index(key)}"] = entry["factor"]
            initial[f"reason_{starts.index(key)}"] = entry["reason"]
    tail = params.get("tail")
    if params.get("tail_factor") is not None:
        initial.update(tail="constant", tail_factor=params["tail_factor"])
    elif isinstance(tail, dict):
        initial["tail"] = tail.get("method", "")
        if tail.get("method") == "constant":
            initial.update(tail_factor=tail.get("factor"), tail_reason=tail.get("reason", ""))
    return initial


# --- the panel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RatioCell:
    """One link ratio as the grid shows it: its value, whether it is used, and why not."""

    key: str
    text: str
    excluded: bool
    left_out: str


@dataclass(frozen=True)
class PeriodColumn:
    """One development period: its candidate averages, choices, and selected factor."""

    index: int
    label: str
    candidates: tuple[tuple[str, str, bool], ...]  # (average, value, is the one used)
    factor: str
    source: str
    cdf: str


@dataclass(frozen=True)
class SelectionPanel:
    """What the panel shows for the current choices (see the module docstring)."""

    periods: tuple[PeriodColumn, ...]
    rows: tuple[tuple[str, tuple[RatioCell | None, ...]], ...]
    tail: str
    problem: str
    excluded_count: int


def selection_panel(form: SelectionsForm) -> SelectionPanel:
    """Return the panel for the form's current choices (its defaults when they fail)."""
    triangle = form.triangle
    data = form.cleaned_data if form.is_bound and hasattr(form, "cleaned_data") else {}
    if not form.is_bound:
        data = {**form.initial, "exclude": form.initial.get("exclude") or []}
    params = form.reserving_params(_plain(form, data))
    params.pop("exposure_artefact", None)
    params.pop("apriori_loss_ratio", None)
    params["method"] = "chain_ladder"
    for name in ("trend", "decay", "n_sims", "random_seed"):
        params.pop(name, None)
    problem = ""
    try:
        options = parse_options(params)
        check_against_triangle(options, triangle)
        selection, tail_selection = options.selection, options.tail
    except ReservingInputError as error:
        problem = words(error.message)
        options = parse_options({})
        selection, tail_selection = options.selection, None
    development = fit_development(triangle, selection)
    try:
        tail, _warnings = fit_tail(development, tail_selection)
    except DevelopmentError as error:
        problem, tail = problem or words(error.message), None
    candidates = {
        average: fit_development(
            triangle, replace(selection, average=average, averages=(), selected_factors=())
        )
        for average in AVERAGES
    }
    tail_factor = tail.factor if tail is not None else 1.0
    cdfs: list[float] = []
    running = tail_factor
    for period in reversed(development.periods):
        running *= period.factor
        cdfs.append(running)
    cdfs.reverse()
    periods = []
    for period, cdf in zip(development.periods, cdfs, strict=True):
        periods.append(
            PeriodColumn(
                index=period.index,
                label=period.label,
                candidates=tuple(
                    (
                        average,
                        _factor(candidates[average].periods[period.index].computed),
                        average == period.average,
                    )
                    for average in AVERAGES
                ),
                factor=_factor(period.factor),
                source=SOURCE_LABELS.get(period.source, period.source)
                if period.source != "average"
                else AVERAGE_LABELS[period.average].lower(),
                cdf=_factor(cdf),
            )
        )
    excluded = {ratio_key(origin, age) for origin, age in selection.exclude}
    cells: dict[str, list[RatioCell | None]] = {
        origin: [None] * len(development.periods) for origin in triangle.origins
    }
    for period in development.periods:
        for ratio in period.ratios:
            key = ratio_key(ratio.origin, period.from_age)
            cells[ratio.origin][period.index] = RatioCell(
                key=key,
                text=_factor(ratio.value),
                excluded=key in excluded,
                left_out="" if ratio.used else (ratio.left_out_by or "undefined"),
            )
    return SelectionPanel(
        periods=tuple(periods),
        rows=tuple((origin, tuple(cells[origin])) for origin in triangle.origins),
        tail="none" if tail is None else f"{tail.factor:.4f} ({tail.reason or tail.method})",
        problem=problem,
        excluded_count=len(excluded),
    )


def _plain(form: SelectionsForm, data: dict[str, Any]) -> dict[str, Any]:
    """Return the values the panel reads: cleaned where valid, else as typed (if numbers)."""
    if not form.is_bound:
        return data
    plain = dict(data)
    for name in form.fields:
        if name in plain or name in ("exposure_file",):
            continue
        raw = form.data.getlist(name) if name == "exclude" else form.data.get(name)
        if name.startswith(("factor_",)) or name == "tail_factor":
            try:
                raw = float(raw) if raw not in (None, "") else None
            except ValueError:
                raw = None
        plain[name] = raw
    if "exclude" not in data:
        plain["exclude"] = [
            key
            for key in form.data.getlist("exclude")
            if key in dict(form.fields["exclude"].choices)
        ]
    return plain


def _factor(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4f}"
