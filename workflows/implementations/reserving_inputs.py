"""What the reserving workflows read: the triangle, the exposure, the prior run, the choices.

Each function checks one input and raises InvalidInput with a message that names the
parameter (or, for a bad file, the row and column), as the run's creation reports
it (HTTP 400). With no ``actor`` an artefact's bytes are only read and checked against
their SHA-256 (the check at creation); with one (the run reading its input) the read
is an artefact_access audit event.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from artefacts.files import ArtefactFileUnavailable, open_verified
from artefacts.models import Artefact
from artefacts.services import artefact_open_for_download
from records.exceptions import InvalidInput
from records.formatting import status_label
from workflows.reserving import (
    LAYOUTS,
    MEASURES,
    RESERVING_PARAMS,
    ExposureError,
    ReservingInputError,
    TriangleError,
    match_exposure,
    parse_options,
    read_exposure,
    read_triangle,
)

from .base import PARAM_REQUIRED, boolean_param, choice_param, refuse_unknown, require_object

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from engagements.models import Engagement
    from workflows.models import WorkflowRun
    from workflows.reserving import ReservingOptions, TriangleData

TRIANGLE_PARAMS = (
    "triangle_artefact",
    "layout",
    "cumulative",
    "measure",
    "allow_negative_development",
    "columns",
)
# The roles a column mapping names, for a long-layout file with its own headers.
COLUMN_ROLES = ("origin", "development", "value")
RESERVE_PARAMS = (*TRIANGLE_PARAMS, *RESERVING_PARAMS)
# The workflow types whose completed runs a reserve calculation may compare with.
RESERVING_RUN_TYPES = ("reserve_calculation", "ibnr_estimation")
# Far above any real triangle (200 × 200 periods in the long layout is about 1.5 MB),
# low enough that checking one inside a web request stays quick.
MAX_TRIANGLE_FILE_SIZE = 20 * 1024 * 1024
# How a run's read of its inputs is named in the artefact_access audit event.
ACCESS_WORKFLOW_INPUT = "workflow input"

TRIANGLE_ARTEFACT_HELP = "the id of the triangle artefact (CSV or Excel) of this engagement"
CUMULATIVE_HELP = "true if the triangle's values are cumulative, false if incremental"
ARTEFACT_ID_INVALID = "{param} must be the id (a UUID) of an artefact, not {value!r}."
TRIANGLE_ID_INVALID = (
    "triangle_artefact must be the id (a UUID) of a triangle artefact, not {value!r}."
)
ARTEFACT_NOT_FOUND = (
    "{param}: engagement “{engagement}” has no artefact {value} "
    "(it does not exist, was deleted, or belongs to another engagement)."
)
ARTEFACT_TOO_LARGE = (
    "{what} artefact “{artefact}” is {size:,} bytes, more than the {limit:,} bytes a "
    "{what_lower} file may have."
)
ARTEFACT_UNREADABLE = "{what} artefact “{artefact}” cannot be read: {problem}"
TRIANGLE_INVALID = (
    "Triangle artefact “{artefact}” ({file_name}) is not a usable triangle: {problem}"
)
EXPOSURE_INVALID = "exposure_artefact: “{artefact}” ({file_name}) cannot be used: {problem}"
COLUMNS_INVALID = (
    "columns must map origin, development and value to the file's headers, e.g. "
    '{{"origin": "AccidentYear", "development": "DevMonths", "value": "PaidLoss"}}, '
    "not {value!r}."
)
COLUMNS_WIDE = "columns maps the columns of a long layout; it cannot be given with layout wide."
PRIOR_ID_INVALID = "prior_run must be the id (a UUID) of a completed reserving run, not {value!r}."
PRIOR_NOT_FOUND = (
    "prior_run: client {client} has no reserving run {value} (it does not exist, was "
    "deleted, or is another client's)."
)
PRIOR_NOT_COMPLETED = (
    "prior_run: run “{run}” is {status}; only a completed (signed-off) reserve calculation "
    "or IBNR estimation can be compared with."
)
PRIOR_OLD_FORMAT = (
    "prior_run: run “{run}” was made before results by origin were kept in its summary; "
    "run it again to compare with it."
)
PRIOR_MEASURE = "prior_run: run “{run}” reserved {prior} values; this run's measure is {measure}."


def triangle_options(
    input_params: Any,
    *,
    accepted: tuple[str, ...] = TRIANGLE_PARAMS,
    allow_negative_default: bool = True,
) -> dict[str, Any]:
    """Return the triangle parameters checked, with defaults; the artefact is not looked up."""
    input_params = require_object(input_params)
    refuse_unknown(input_params, accepted)
    if input_params.get("triangle_artefact") in (None, ""):
        raise InvalidInput(
            PARAM_REQUIRED.format(name="triangle_artefact", help=TRIANGLE_ARTEFACT_HELP)
        )
    options = {
        "triangle_artefact": input_params["triangle_artefact"],
        "layout": choice_param(input_params, "layout", LAYOUTS, default="auto"),
        "cumulative": boolean_param(input_params, "cumulative", default=None, help=CUMULATIVE_HELP),
        "measure": choice_param(input_params, "measure", MEASURES, default=None),
        "allow_negative_development": boolean_param(
            input_params, "allow_negative_development", default=allow_negative_default
        ),
    }
    # Kept only when given: the runs made before mappings keep their parameter hashes.
    columns = column_mapping(input_params.get("columns"))
    if columns is not None:
        if options["layout"] == "wide":
            raise InvalidInput(COLUMNS_WIDE)
        options["columns"] = columns
    return options


def column_mapping(value: Any) -> dict[str, str] | None:
    """Return the column mapping (role → the file's header), or None when none is given."""
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != set(COLUMN_ROLES)
        or not all(isinstance(name, str) and name.strip() for name in value.values())
    ):
        raise InvalidInput(COLUMNS_INVALID.format(value=value))
    return {role: value[role].strip() for role in COLUMN_ROLES}


def engagement_artefact(param: str, value: Any, engagement: Engagement) -> Artefact:
    """Return the engagement's (not deleted) artefact whose id is `value`."""
    try:
        artefact_id = uuid.UUID(str(value))
    except ValueError:
        template = TRIANGLE_ID_INVALID if param == "triangle_artefact" else ARTEFACT_ID_INVALID
        raise InvalidInput(template.format(param=param, value=value)) from None
    artefact = Artefact.objects.filter(pk=artefact_id, engagement=engagement).first()
    if artefact is None:
        raise InvalidInput(
            ARTEFACT_NOT_FOUND.format(param=param, engagement=engagement, value=artefact_id)
        )
    return artefact


def triangle_artefact(value: Any, engagement: Engagement) -> Artefact:
    """Return the engagement's (not deleted) triangle artefact whose id is `value`."""
    return engagement_artefact("triangle_artefact", value, engagement)


def artefact_bytes(
    artefact: Artefact, *, actor: AbstractUser | None = None, what: str = "Triangle"
) -> bytes:
    """Return the artefact's bytes once they match its stored SHA-256.

    With an `actor` (a run reading its input) the read is recorded as an
    artefact_access event; the check at run creation (no actor) only reads.
    """
    if artefact.file_size > MAX_TRIANGLE_FILE_SIZE:
        raise InvalidInput(
            ARTEFACT_TOO_LARGE.format(
                what=what,
                what_lower=what.lower(),
                artefact=artefact,
                size=artefact.file_size,
                limit=MAX_TRIANGLE_FILE_SIZE,
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
            ARTEFACT_UNREADABLE.format(what=what, artefact=artefact, problem=refusal.message)
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
            columns=params.get("columns"),
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


def reserving_options(params: dict[str, Any]) -> ReservingOptions:
    """Return the reserving choices of `params`, or raise InvalidInput naming the parameter."""
    try:
        return parse_options(params)
    except ReservingInputError as error:
        raise InvalidInput(named(error)) from None


def named(error: ReservingInputError) -> str:
    """Return the error's message, starting with its parameter's name."""
    message = error.message
    return message if message.startswith(error.param) else f"{error.param}: {message}"


def exposure_of(
    options: ReservingOptions,
    triangle: TriangleData,
    engagement: Engagement,
    *,
    actor: AbstractUser | None = None,
) -> tuple[Artefact, dict[str, float], str]:
    """Return the exposure artefact, its exposure by the triangle's origins, and its column."""
    artefact = engagement_artefact("exposure_artefact", options.exposure_artefact, engagement)
    data = artefact_bytes(artefact, actor=actor, what="Exposure")
    try:
        exposure = read_exposure(data, artefact.file_name)
        return artefact, match_exposure(exposure, triangle), exposure.column
    except ExposureError as error:
        raise InvalidInput(
            EXPOSURE_INVALID.format(artefact=artefact, file_name=artefact.file_name, problem=error)
        ) from None


def prior_run_of(options: ReservingOptions, engagement: Engagement, measure: str) -> WorkflowRun:
    """Return the completed reserving run of the same client that ``prior_run`` names."""
    from workflows.models import WorkflowRun

    try:
        run_id = uuid.UUID(str(options.prior_run))
    except ValueError:
        raise InvalidInput(PRIOR_ID_INVALID.format(value=options.prior_run)) from None
    run = (
        WorkflowRun.objects.select_related("engagement")
        .filter(
            pk=run_id,
            workflow_type__in=RESERVING_RUN_TYPES,
            engagement__client_code__iexact=engagement.client_code,
        )
        .first()
    )
    if run is None:
        raise InvalidInput(PRIOR_NOT_FOUND.format(client=engagement.client_code, value=run_id))
    if run.status != "completed":
        raise InvalidInput(PRIOR_NOT_COMPLETED.format(run=run, status=status_label(run)))
    summary = run.output_summary or {}
    if not isinstance(summary.get("origins"), list) or not summary.get("development_factors"):
        raise InvalidInput(PRIOR_OLD_FORMAT.format(run=run))
    if summary.get("measure") != measure:
        raise InvalidInput(
            PRIOR_MEASURE.format(run=run, prior=summary.get("measure"), measure=measure)
        )
    return run


def prior_run_summary(run: WorkflowRun) -> dict[str, Any]:
    """Return which prior run a comparison is with (and a hash of the results it used)."""
    from workflows.provenance import canonical_json_hash

    summary = run.output_summary or {}
    return {
        "run_id": str(run.pk),
        "name": run.name,
        "period": run.period,
        "engagement_id": str(run.engagement_id),
        "engagement": str(run.engagement),
        "method": summary.get("method") or "chain_ladder",
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "output_sha256": canonical_json_hash(summary),
    }
