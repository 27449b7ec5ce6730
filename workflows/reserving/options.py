"""The reserving choices of a workflow run (its ``input_params``): checked and made canonical.

These names are a public contract: REST clients and agents send them in the
``input_params`` of ``reserve_calculation`` and ``ibnr_estimation`` runs, and the run
keeps their canonical form (``ReservingOptions.to_params``), which its parameter hash
and its replay use. ``parse_options`` checks each parameter alone (types, ranges,
whether it applies to the method); ``check_against_triangle`` checks what they name
in the triangle and fits the development and the tail once, so that a choice that
cannot work is refused when the run is created, naming the parameter. Errors are
``ReservingInputError`` with the parameter in ``param``.

The triangle's own parameters (``triangle_artefact``, ``cumulative`` …) and the
artefacts and runs these options name (``exposure_artefact``, ``prior_run``) are
checked by the workflow, which can look them up.

This module is longer than 600 lines because the contract reads best in one place:
each parameter's parsing sits beside its message and its canonical form, and a
reader checking what a REST client may send finds all of it here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workflows.reserving.development import (
    AVERAGES,
    DevelopmentError,
    DevelopmentSelection,
    FactorOverride,
    fit_development,
)
from workflows.reserving.methods.common import age_key
from workflows.reserving.methods.expected import BENKTANDER_ITERATIONS
from workflows.reserving.tails import (
    CONSTANT_REASON_LEGACY,
    CURVES,
    TAIL_METHODS,
    TailSelection,
    fit_tail,
)
from workflows.reserving.triangles.data import TriangleData
from workflows.reserving.uncertainty.bootstrap import (
    DEFAULT_PERCENTILES,
    DEFAULT_SIMULATIONS,
    MAX_SIMULATIONS,
)

METHODS = ("chain_ladder", "bornhuetter_ferguson", "benktander", "cape_cod", "bootstrap_odp")
EXPOSURE_METHODS = ("bornhuetter_ferguson", "benktander", "cape_cod")
APRIORI_METHODS = ("bornhuetter_ferguson", "benktander")
# The methods each method-specific parameter applies to.
APPLIES_TO = {
    "exposure_artefact": EXPOSURE_METHODS,
    "apriori_loss_ratio": APRIORI_METHODS,
    "n_iterations": ("benktander",),
    "trend": ("cape_cod",),
    "decay": ("cape_cod",),
    "n_sims": ("bootstrap_odp",),
    "random_seed": ("bootstrap_odp",),
    "percentiles": ("bootstrap_odp",),
}
RESERVING_PARAMS = (
    "method",
    "average",
    "averages",
    "n_periods",
    "drop_high",
    "drop_low",
    "exclude",
    "selected_factors",
    "tail",
    "tail_factor",
    *APPLIES_TO,
    "prior_run",
)
MAX_ITERATIONS = 100
MAX_PERCENTILES = 20
MAX_REASON = 500
MAX_DROPS = 50
SEED_LIMIT = 2**63

MSG_NOT_A_CHOICE = "{name} must be one of {allowed}, not {value!r}."
MSG_WHOLE = "{name} must be a whole number {rule}, not {value!r}."
MSG_NUMBER = "{name} must be a number {rule}, not {value!r}."
MSG_OBJECT = "{name} must be a JSON object {shape}, not {value!r}."
MSG_LIST = "{name} must be a JSON list {shape}, not {value!r}."
MSG_REQUIRED = "{name} is required for the {method} method: {help}."
MSG_NOT_APPLICABLE = (
    "{name} applies to the {methods} method(s) only; this run's method is {method}."
)
MSG_PAIR = "exclude[{index}] must be a pair [origin, from age], not {value!r}."
MSG_AGE_KEY = "{name}: {key!r} is not a development age (a number such as 12)."
MSG_REASON = "{name}: a reason is required (a non-empty text of at most {limit} characters)."
MSG_UNKNOWN_KEYS = "{name} has unknown key(s) {keys} (it takes {accepted})."
MSG_TAIL_BOTH = "give tail or tail_factor, not both (tail_factor is the older constant form)."
MSG_NOT_A_PERIOD = (
    "{name}: {age} is not the first age of a development period (the periods start at {starts})."
)
MSG_NOT_AN_ORIGIN = "{name}: {origin} is not an origin of the triangle (its origins: {origins})."
MSG_NO_LINK_RATIO = (
    "exclude[{index}]: origin {origin} has no link ratio from age {age} (it is observed "
    "from age {first} to age {last})."
)
MSG_APRIORI_ORIGINS = (
    "apriori_loss_ratio: {problem} (give one for every origin of the triangle, or a single number)."
)
MSG_DUPLICATE_PERCENTILE = "percentiles lists {level} twice."

HELP_EXPOSURE = (
    "the id of an artefact of this engagement holding origin and exposure columns (CSV "
    "or Excel), e.g. earned premium"
)
HELP_APRIORI = "the expected loss ratio, a number (e.g. 0.65) or one per origin"
HELP_SEED = "a whole number that makes the simulation reproducible (e.g. 2024)"
TAIL_KEYS = {
    "constant": ("method", "factor", "reason"),
    "exponential": ("method", "fit_from_age"),
    "inverse_power": ("method", "fit_from_age"),
    "bondy": ("method",),
}
FACTOR_KEYS = ("factor", "reason")


class ReservingInputError(ValueError):
    """A reserving parameter that is wrong; ``param`` names it, ``message`` says why."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True)
class ReservingOptions:
    """The checked reserving choices of a run (see the module's docstring)."""

    method: str
    selection: DevelopmentSelection
    tail: TailSelection | None
    exposure_artefact: str | None = None
    apriori_loss_ratio: float | dict[str, float] | None = None
    n_iterations: int | None = None
    trend: float | None = None
    decay: float | None = None
    n_sims: int | None = None
    random_seed: int | None = None
    percentiles: tuple[float, ...] | None = None
    prior_run: str | None = None

    def to_params(self) -> dict[str, Any]:
        """Return the canonical ``input_params`` of these choices (what the run keeps).

        ``average`` and ``tail_factor`` are always there (as reserving runs always kept
        them, so their parameter hashes and replays still hold); the other choices only
        when they differ from their defaults; a method's own parameters (with their
        defaults) whenever it is the method. A constant tail given as ``tail_factor``
        stays in that form. Reading the result again gives the same dict.
        """
        selection = self.selection
        params: dict[str, Any] = {"average": selection.average, "tail_factor": None}
        tail = self.tail
        if tail is not None:
            legacy = (
                tail.method == "constant"
                and tail.reason == CONSTANT_REASON_LEGACY
                and tail.factor >= 1
            )
            if legacy:
                params["tail_factor"] = tail.factor
            else:
                params["tail"] = tail.to_dict()
        optional = {
            "method": (self.method, "chain_ladder"),
            "averages": ({age_key(a): average for a, average in selection.averages}, {}),
            "n_periods": (selection.n_periods, None),
            "drop_high": (selection.drop_high, 0),
            "drop_low": (selection.drop_low, 0),
            "exclude": ([[origin, age] for origin, age in selection.exclude], []),
            "selected_factors": (
                {
                    age_key(item.from_age): {"factor": item.factor, "reason": item.reason}
                    for item in selection.selected_factors
                },
                {},
            ),
            "prior_run": (self.prior_run, None),
        }
        for name, (value, default) in optional.items():
            if value != default:
                params[name] = value
        for name, methods in APPLIES_TO.items():
            if self.method in methods:
                value = getattr(self, name)
                params[name] = list(value) if isinstance(value, tuple) else value
        return params


def parse_options(params: dict[str, Any]) -> ReservingOptions:
    """Return the reserving choices in ``params`` checked and completed with defaults.

    ``params`` may hold other (triangle) parameters: only the reserving ones are read.
    """
    method = _choice(params, "method", METHODS, default="chain_ladder")
    for name, methods in APPLIES_TO.items():
        if params.get(name) is not None and method not in methods:
            raise ReservingInputError(
                name,
                MSG_NOT_APPLICABLE.format(name=name, methods=", ".join(methods), method=method),
            )
    selection = DevelopmentSelection(
        average=_choice(params, "average", AVERAGES, default="volume"),
        averages=_averages(params.get("averages")),
        n_periods=_whole(params, "n_periods", minimum=1, default=None, rule=_N_PERIODS_RULE),
        drop_high=_whole(params, "drop_high", minimum=0, maximum=MAX_DROPS, default=0),
        drop_low=_whole(params, "drop_low", minimum=0, maximum=MAX_DROPS, default=0),
        exclude=_exclusions(params.get("exclude")),
        selected_factors=_overrides(params.get("selected_factors")),
    )
    options: dict[str, Any] = {
        "method": method,
        "selection": selection,
        "tail": _tail(params),
        "prior_run": _identifier(params, "prior_run"),
    }
    if method in EXPOSURE_METHODS:
        options["exposure_artefact"] = _required_identifier(
            params, "exposure_artefact", method, HELP_EXPOSURE
        )
    if method in APRIORI_METHODS:
        options["apriori_loss_ratio"] = _apriori(params.get("apriori_loss_ratio"), method)
    if method == "benktander":
        options["n_iterations"] = _whole(
            params,
            "n_iterations",
            minimum=1,
            maximum=MAX_ITERATIONS,
            default=BENKTANDER_ITERATIONS,
        )
    if method == "cape_cod":
        options["trend"] = _number(
            params, "trend", default=0.0, check=lambda x: x > -1, rule=_TREND_RULE
        )
        options["decay"] = _number(
            params, "decay", default=1.0, check=lambda x: 0 < x <= 1, rule=_DECAY_RULE
        )
    if method == "bootstrap_odp":
        options["n_sims"] = _whole(
            params,
            "n_sims",
            minimum=1,
            maximum=MAX_SIMULATIONS,
            default=DEFAULT_SIMULATIONS,
        )
        if params.get("random_seed") is None:
            raise ReservingInputError(
                "random_seed",
                MSG_REQUIRED.format(name="random_seed", method=method, help=HELP_SEED),
            )
        options["random_seed"] = _whole(
            params, "random_seed", minimum=0, maximum=SEED_LIMIT - 1, default=None
        )
        options["percentiles"] = _percentiles(params.get("percentiles"))
    return ReservingOptions(**options)


def check_against_triangle(options: ReservingOptions, triangle: TriangleData) -> None:
    """Check what the options name in the triangle, and that its development can be fitted."""
    ages = triangle.development_ages
    starts = ages[:-1]
    start_text = ", ".join(age_key(age) for age in starts)
    for name, named_ages in (
        ("averages", [age for age, _ in options.selection.averages]),
        ("selected_factors", [item.from_age for item in options.selection.selected_factors]),
    ):
        for age in named_ages:
            if age not in starts:
                raise ReservingInputError(
                    name,
                    MSG_NOT_A_PERIOD.format(name=name, age=age_key(age), starts=start_text),
                )
    tail = options.tail
    if tail is not None and tail.fit_from_age is not None and tail.fit_from_age not in starts:
        raise ReservingInputError(
            "tail",
            MSG_NOT_A_PERIOD.format(
                name="tail.fit_from_age",
                age=age_key(options.tail.fit_from_age),
                starts=start_text,
            ),
        )
    rows = dict(zip(triangle.origins, triangle.values, strict=True))
    for index, (origin, age) in enumerate(options.selection.exclude):
        if origin not in rows:
            raise ReservingInputError(
                "exclude",
                MSG_NOT_AN_ORIGIN.format(
                    name=f"exclude[{index}]", origin=origin, origins=_origin_span(triangle)
                ),
            )
        row = rows[origin]
        observed = [j for j, value in enumerate(row) if value is not None]
        position = ages.index(age) if age in ages else None
        if position is None or position + 1 >= len(row) or row[position] is None:
            raise ReservingInputError(
                "exclude",
                MSG_NO_LINK_RATIO.format(
                    index=index,
                    origin=origin,
                    age=age_key(age),
                    first=age_key(ages[observed[0]]),
                    last=age_key(ages[observed[-1]]),
                ),
            )
    if isinstance(options.apriori_loss_ratio, dict):
        given = set(options.apriori_loss_ratio)
        unknown = sorted(given - set(triangle.origins))
        missing = [origin for origin in triangle.origins if origin not in given]
        if unknown:
            raise ReservingInputError(
                "apriori_loss_ratio",
                MSG_APRIORI_ORIGINS.format(problem=f"{', '.join(unknown)} not in the triangle"),
            )
        if missing:
            raise ReservingInputError(
                "apriori_loss_ratio",
                MSG_APRIORI_ORIGINS.format(problem=f"no value for {', '.join(missing)}"),
            )
    try:
        development = fit_development(triangle, options.selection)
        fit_tail(development, options.tail)
    except DevelopmentError as error:
        raise ReservingInputError(error.param, error.message) from None


# --- one parameter at a time ---------------------------------------------------------------

_N_PERIODS_RULE = "of at least 1 (or null for every origin)"
_TREND_RULE = "above -1 (an annual rate: 0.03 is 3% a year)"
_DECAY_RULE = "above 0 and at most 1"


def _choice(params, name, allowed, *, default):
    value = params.get(name)
    if value is None:
        return default
    if value not in allowed:
        raise ReservingInputError(
            name, MSG_NOT_A_CHOICE.format(name=name, allowed=", ".join(allowed), value=value)
        )
    return value


def _whole(params, name, *, minimum, default, maximum=None, rule=None):
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        if rule is None:
            rule = (
                f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
            )
        raise ReservingInputError(name, MSG_WHOLE.format(name=name, rule=rule, value=value))
    return value


def _finite(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _number(params, name, *, default, check, rule):
    value = params.get(name)
    if value is None:
        return default
    if not _finite(value) or not check(value):
        raise ReservingInputError(name, MSG_NUMBER.format(name=name, rule=rule, value=value))
    return float(value)


def _age(name: str, key: Any) -> int | float:
    """Return a development age from a JSON key or value ("12", 12, 12.0 → 12)."""
    if _finite(key):
        number = float(key)
    else:
        try:
            number = float(str(key).strip())
        except ValueError:
            raise ReservingInputError(name, MSG_AGE_KEY.format(name=name, key=key)) from None
        if not math.isfinite(number):
            raise ReservingInputError(name, MSG_AGE_KEY.format(name=name, key=key))
    return int(number) if number.is_integer() else number


def _origin(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if _finite(value):
        return str(int(value)) if float(value).is_integer() else str(value)
    return None


def _averages(value) -> tuple[tuple[int | float, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ReservingInputError(
            "averages",
            MSG_OBJECT.format(name="averages", shape='{"<from age>": average}', value=value),
        )
    result = {}
    for key, average in value.items():
        age = _age("averages", key)
        if average not in AVERAGES:
            raise ReservingInputError(
                "averages",
                MSG_NOT_A_CHOICE.format(
                    name=f"averages[{key!r}]", allowed=", ".join(AVERAGES), value=average
                ),
            )
        result[age] = average
    return tuple(sorted(result.items()))


def _exclusions(value) -> tuple[tuple[str, int | float], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ReservingInputError(
            "exclude",
            MSG_LIST.format(name="exclude", shape="of [origin, from age] pairs", value=value),
        )
    result: list[tuple[str, int | float]] = []
    for index, pair in enumerate(value):
        origin = _origin(pair[0]) if isinstance(pair, list) and len(pair) == 2 else None
        if origin is None or not (_finite(pair[1]) or isinstance(pair[1], str)):
            raise ReservingInputError("exclude", MSG_PAIR.format(index=index, value=pair))
        item = (origin, _age("exclude", pair[1]))
        if item not in result:
            result.append(item)
    return tuple(result)


def _reason(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_REASON:
        raise ReservingInputError(
            name.split("[")[0], MSG_REASON.format(name=name, limit=MAX_REASON)
        )
    return value.strip()


def _overrides(value) -> tuple[FactorOverride, ...]:
    if value is None:
        return ()
    shape = '{"<from age>": {"factor": x, "reason": "…"}}'
    if not isinstance(value, dict):
        raise ReservingInputError(
            "selected_factors", MSG_OBJECT.format(name="selected_factors", shape=shape, value=value)
        )
    result = {}
    for key, entry in value.items():
        age = _age("selected_factors", key)
        name = f"selected_factors[{key!r}]"
        if not isinstance(entry, dict):
            raise ReservingInputError(
                "selected_factors",
                MSG_OBJECT.format(name=name, shape='{"factor": x, "reason": "…"}', value=entry),
            )
        _refuse_unknown_keys("selected_factors", name, entry, FACTOR_KEYS)
        factor = entry.get("factor")
        if not _finite(factor) or factor <= 0:
            raise ReservingInputError(
                "selected_factors",
                MSG_NUMBER.format(name=f"{name}.factor", rule="above 0", value=factor),
            )
        result[age] = FactorOverride(age, float(factor), _reason(name, entry.get("reason")))
    return tuple(result[age] for age in sorted(result))


def _refuse_unknown_keys(param: str, name: str, entry: dict, accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(entry) - set(accepted))
    if unknown:
        raise ReservingInputError(
            param,
            MSG_UNKNOWN_KEYS.format(
                name=name, keys=", ".join(unknown), accepted=", ".join(accepted)
            ),
        )


def _tail(params) -> TailSelection | None:
    tail, legacy = params.get("tail"), params.get("tail_factor")
    if tail is not None and legacy is not None:
        raise ReservingInputError("tail", MSG_TAIL_BOTH)
    if legacy is not None:
        if not _finite(legacy) or legacy < 1:
            raise ReservingInputError(
                "tail_factor",
                MSG_NUMBER.format(
                    name="tail_factor", rule="of at least 1 (or null for no tail)", value=legacy
                ),
            )
        return TailSelection("constant", float(legacy), CONSTANT_REASON_LEGACY)
    if tail is None:
        return None
    shape = '{"method": "constant", "factor": x, "reason": "…"} or {"method": "exponential"}'
    if not isinstance(tail, dict):
        raise ReservingInputError("tail", MSG_OBJECT.format(name="tail", shape=shape, value=tail))
    method = tail.get("method")
    if method not in TAIL_METHODS:
        raise ReservingInputError(
            "tail",
            MSG_NOT_A_CHOICE.format(
                name="tail.method", allowed=", ".join(TAIL_METHODS), value=method
            ),
        )
    _refuse_unknown_keys("tail", f"tail ({method})", tail, TAIL_KEYS[method])
    if method == "constant":
        factor = tail.get("factor")
        if not _finite(factor) or factor <= 0:
            raise ReservingInputError(
                "tail", MSG_NUMBER.format(name="tail.factor", rule="above 0", value=factor)
            )
        return TailSelection("constant", float(factor), _reason("tail", tail.get("reason")))
    fit_from = tail.get("fit_from_age")
    start = _age("tail", fit_from) if fit_from is not None and method in CURVES else None
    return TailSelection(method, fit_from_age=start)


def _identifier(params, name) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _required_identifier(params, name, method, help_text) -> str:
    value = _identifier(params, name)
    if value is None:
        raise ReservingInputError(
            name, MSG_REQUIRED.format(name=name, method=method, help=help_text)
        )
    return value


def _apriori(value, method) -> float | dict[str, float]:
    if value is None:
        raise ReservingInputError(
            "apriori_loss_ratio",
            MSG_REQUIRED.format(name="apriori_loss_ratio", method=method, help=HELP_APRIORI),
        )
    if isinstance(value, dict):
        if not value:
            raise ReservingInputError(
                "apriori_loss_ratio",
                MSG_OBJECT.format(
                    name="apriori_loss_ratio", shape='{"<origin>": ratio}', value=value
                ),
            )
        result = {}
        for origin, ratio_value in value.items():
            if not _finite(ratio_value) or ratio_value <= 0:
                raise ReservingInputError(
                    "apriori_loss_ratio",
                    MSG_NUMBER.format(
                        name=f"apriori_loss_ratio[{origin!r}]", rule="above 0", value=ratio_value
                    ),
                )
            result[_origin(origin) or str(origin)] = float(ratio_value)
        return dict(sorted(result.items()))
    if not _finite(value) or value <= 0:
        raise ReservingInputError(
            "apriori_loss_ratio",
            MSG_NUMBER.format(
                name="apriori_loss_ratio",
                rule="above 0, or an object of one per origin",
                value=value,
            ),
        )
    return float(value)


def _percentiles(value) -> tuple[float, ...]:
    if value is None:
        return DEFAULT_PERCENTILES
    shape = f"of 1 to {MAX_PERCENTILES} numbers above 0 and below 100"
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_PERCENTILES:
        raise ReservingInputError(
            "percentiles", MSG_LIST.format(name="percentiles", shape=shape, value=value)
        )
    levels: list[float] = []
    for level in value:
        if not _finite(level) or not 0 < level < 100:
            raise ReservingInputError(
                "percentiles", MSG_LIST.format(name="percentiles", shape=shape, value=value)
            )
        if float(level) in levels:
            raise ReservingInputError("percentiles", MSG_DUPLICATE_PERCENTILE.format(level=level))
        levels.append(float(level))
    return tuple(sorted(levels))


def _origin_span(triangle: TriangleData) -> str:
    origins = triangle.origins
    return f"{origins[0]} to {origins[-1]}" if len(origins) > 1 else origins[0]
