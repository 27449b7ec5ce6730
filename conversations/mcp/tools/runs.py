"""Tools on workflow runs: list, results, validate a triangle, reserve, wait, compare.

A run is created and queued exactly as `POST /api/v1/workflow-runs/` and `…/queue/`
do it: the REST API's serializer checks the body (input_params by the reserving
contract, docs/actuaries/reserving-methods.md), then `workflow_run_create` and
`workflow_run_queue` run as the token's user. Waiting is bounded (setting
MCP_MAX_WAIT_SECONDS); a run still working when the wait ends is reported as it is.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from artefacts.models import Artefact
from engagements.selectors import scope_to_user
from workflows import services as run_services
from workflows.api.serializers import WorkflowRunSerializer
from workflows.choices import WorkflowStatus, WorkflowType
from workflows.models import WorkflowRun
from workflows.reserving import LAYOUTS, MEASURES, compare_results
from workflows.reserving.development import AVERAGES
from workflows.reserving.options import MAX_DROPS, METHODS
from workflows.reserving.tails import TAIL_METHODS

from ..calls import CallContext, Tool, ToolFailure, validated
from .common import (
    DEFAULT_LIST_LIMIT,
    Arguments,
    Limit,
    api_context,
    max_wait_seconds,
    visible,
    wait_until,
)

RUN_ID = "Id (UUID) of a workflow run of one of your engagements."
RESERVING_TYPES = (WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION)
# A run in one of these has stopped computing: its results (or failure) are there to read.
SETTLED = frozenset(
    {
        WorkflowStatus.WAITING_APPROVAL,
        WorkflowStatus.COMPLETED,
        WorkflowStatus.FAILED,
        WorkflowStatus.CANCELLED,
    }
)
AGENT_NAME = "mcp"
# Serializer fields of a run → the tool arguments that fill them.
RUN_ARGUMENTS = {"engagement": "engagement_id", "input_params": "input_params"}
NOT_RESERVING = (
    "Run “{run}” is a {workflow_type} run: only reserve_calculation and ibnr_estimation "
    "runs have reserves to compare."
)
NO_RESULTS = "Run “{run}” is {status}: it has no results to compare yet (wait_for_run)."
WAIT_HELP = (
    "Seconds to wait for the run to finish computing (0: do not wait; at most the server's "
    "MCP_MAX_WAIT_SECONDS, 120 by default). A run still working afterwards is answered as "
    "it is: call wait_for_run or get_run again."
)

Average = Literal[AVERAGES]


class FactorSelection(Arguments):
    factor: float = Field(gt=0, description="The selected age-to-age factor.")
    reason: str = Field(min_length=1, max_length=500, description="Why (required, on record).")


class ColumnMapping(Arguments):
    origin: str = Field(min_length=1, description="Header of the origin column, e.g. AccidentYear.")
    development: str = Field(
        min_length=1, description="Header of the development age column, e.g. DevMonths."
    )
    value: str = Field(min_length=1, description="Header of the value column, e.g. PaidLoss.")


class ReservingInputs(Arguments):
    """input_params of a reserving run, as docs/actuaries/reserving-methods.md describes them."""

    triangle_artefact: uuid.UUID = Field(
        description="Id of the triangle artefact of the same engagement (upload_triangle)."
    )
    cumulative: bool = Field(description="true: cumulative values; false: incremental.")
    measure: Literal[MEASURES] = Field(description="paid or incurred.")
    layout: Literal[LAYOUTS] | None = Field(
        default=None, description="long, wide or auto (default auto)."
    )
    columns: ColumnMapping | None = Field(
        default=None,
        description="The long layout's columns by the file's own headers (not with wide); "
        "found by their headers when left out.",
    )
    allow_negative_development: bool | None = Field(
        default=None,
        description="true (default): a falling cumulative value is a warning naming its cell; "
        "false: it refuses the triangle.",
    )
    method: Literal[METHODS] | None = Field(default=None, description="Default chain_ladder.")
    average: Average | None = Field(default=None, description="Default volume.")
    averages: dict[str, Average] | None = Field(
        default=None, description='Another average for some periods: {"<from age>": average}.'
    )
    n_periods: int | None = Field(
        default=None, ge=1, description="Use only the latest n origins of each period."
    )
    drop_high: int | None = Field(default=None, ge=0, le=MAX_DROPS)
    drop_low: int | None = Field(default=None, ge=0, le=MAX_DROPS)
    exclude: list[tuple[str | int, int | float]] | None = Field(
        default=None, description="[[origin, from age], …]: single link ratios left out."
    )
    selected_factors: dict[str, FactorSelection] | None = Field(
        default=None, description='{"<from age>": {"factor": x, "reason": "…"}}.'
    )
    tail: dict[str, Any] | None = Field(
        default=None,
        description=f"A tail: {{'method': one of {', '.join(TAIL_METHODS)}, …}} (constant: "
        "factor and reason; exponential and inverse_power: fit_from_age).",
    )
    tail_factor: float | None = Field(
        default=None, description="Older constant form of a tail; give tail or tail_factor."
    )
    exposure_artefact: uuid.UUID | None = Field(
        default=None,
        description="Bornhuetter-Ferguson, Benktander, Cape Cod: id of an artefact with an "
        "origin and an exposure column (e.g. origin,earned_premium).",
    )
    apriori_loss_ratio: float | dict[str, float] | None = Field(
        default=None,
        description="Bornhuetter-Ferguson, Benktander: a loss ratio above 0, or one per origin.",
    )
    n_iterations: int | None = Field(default=None, description="Benktander iterations.")
    trend: float | None = Field(default=None, description="Cape Cod trend.")
    decay: float | None = Field(default=None, description="Cape Cod decay.")
    n_sims: int | None = Field(default=None, description="ODP bootstrap simulations.")
    random_seed: int | None = Field(default=None, description="ODP bootstrap seed.")
    percentiles: list[float] | None = Field(default=None, description="ODP bootstrap levels.")
    prior_run: uuid.UUID | None = Field(
        default=None,
        description="A completed reserving run of the same client: adds actual vs expected.",
    )

    def as_input_params(self) -> dict[str, Any]:
        """Return the parameters as the REST API's input_params (unset ones left out)."""
        return self.model_dump(mode="json", exclude_none=True)


WaitSeconds = Annotated[int, Field(ge=0, le=3600, description=WAIT_HELP)]


class CreateReservingRun(Arguments):
    engagement_id: uuid.UUID = Field(description="Id of the engagement (one you work on).")
    name: str = Field(min_length=1, max_length=255, description="The run's name.")
    workflow_type: Literal[RESERVING_TYPES] = Field(
        default=WorkflowType.RESERVE_CALCULATION.value,
        description="reserve_calculation, or ibnr_estimation when the result is booked as IBNR.",
    )
    period: str = Field(default="", max_length=50, description="Valuation period, e.g. 2025-Q4.")
    description: str = Field(default="", max_length=5000)
    input_params: ReservingInputs
    queue: bool = Field(
        default=True, description="Queue the run for the background runner (default true)."
    )
    wait_seconds: WaitSeconds = 0


class ValidateTriangle(Arguments):
    triangle_artefact_id: uuid.UUID = Field(description="Id of the triangle artefact to check.")
    cumulative: bool = Field(description="true: cumulative values; false: incremental.")
    measure: Literal[MEASURES] = Field(description="paid or incurred.")
    layout: Literal[LAYOUTS] = Field(default="auto", description="long, wide or auto.")
    allow_negative_development: bool = Field(
        default=False, description="false (default): negative development fails the check."
    )
    wait_seconds: WaitSeconds = 60


class ListRuns(Arguments):
    engagement_id: uuid.UUID | None = Field(default=None, description="Only this engagement.")
    status: WorkflowStatus | None = Field(default=None, description="Only this status.")
    workflow_type: WorkflowType | None = Field(default=None, description="Only this type.")
    limit: Limit = DEFAULT_LIST_LIMIT


class GetRun(Arguments):
    run_id: uuid.UUID = Field(description=RUN_ID)


class WaitForRun(Arguments):
    run_id: uuid.UUID = Field(description=RUN_ID)
    timeout_seconds: WaitSeconds = 60


class CompareRuns(Arguments):
    first_run_id: uuid.UUID = Field(description="The run compared from (" + RUN_ID + ")")
    second_run_id: uuid.UUID = Field(description="The run compared with it.")


def _runs():
    return WorkflowRun.objects.select_related("engagement")


def run_row(run: WorkflowRun) -> dict[str, Any]:
    """Return the short form of a run a list shows (with its total IBNR once there is one)."""
    summary = run.output_summary if isinstance(run.output_summary, dict) else {}
    totals = summary.get("totals") if isinstance(summary.get("totals"), dict) else {}
    params = run.input_params if isinstance(run.input_params, dict) else {}
    return {
        "id": str(run.pk),
        "name": run.name,
        "engagement_id": str(run.engagement_id),
        "workflow_type": run.workflow_type,
        "status": run.status,
        "period": run.period,
        "method": summary.get("method") or params.get("method"),
        "ibnr": totals.get("ibnr"),
        "created_at": run.created_at.isoformat(),
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "resource": f"ai-actuary://runs/{run.pk}",
    }


def run_results(run: WorkflowRun) -> dict[str, Any]:
    """Return a run with everything an agent needs from it in one answer."""
    summary = run.output_summary if isinstance(run.output_summary, dict) else None
    answer: dict[str, Any] = {
        "run": {
            **run_row(run),
            "description": run.description,
            "input_params": run.input_params,
            "progress_percent": run.progress_percent,
            "current_step": run.current_step,
            "step_count": run.step_count,
            "error_message": run.error_message,
            "error_details": run.error_details,
            "trace_id": run.trace_id,
        },
        "settled": run.status in SETTLED,
        "approvals": [
            {
                "id": str(approval.pk),
                "approval_type": approval.approval_type,
                "status": approval.status,
                "requested_by": approval.requested_by.get_username()
                if approval.requested_by
                else None,
            }
            for approval in run.approvals.select_related("requested_by").order_by("requested_at")
        ],
    }
    if summary is None:
        answer["results"] = None
    elif run.workflow_type in RESERVING_TYPES:
        answer["results"] = {
            "method": summary.get("method"),
            "measure": summary.get("measure"),
            "totals": summary.get("totals"),
            "by_origin": summary.get("origins"),
            "selections": {
                "options": summary.get("options"),
                "development_factors": summary.get("development_factors"),
                "excluded_points": summary.get("excluded_points"),
                "tail": summary.get("tail"),
            },
            "warnings": summary.get("warnings"),
            "actual_vs_expected": summary.get("actual_vs_expected"),
            "bootstrap": summary.get("bootstrap"),
            "triangle": summary.get("triangle"),
            "exposure": summary.get("exposure"),
        }
    else:
        answer["results"] = summary
    answer["artefacts"] = (summary or {}).get("artefacts") or []
    return answer


def list_runs(context: CallContext, arguments: ListRuns) -> dict[str, Any]:
    rows = scope_to_user(_runs(), context.user)
    if arguments.engagement_id:
        rows = rows.filter(engagement_id=arguments.engagement_id)
    if arguments.status:
        rows = rows.filter(status=arguments.status)
    if arguments.workflow_type:
        rows = rows.filter(workflow_type=arguments.workflow_type)
    rows = rows.order_by("-created_at")
    return {"count": rows.count(), "runs": [run_row(run) for run in rows[: arguments.limit]]}


def get_run(context: CallContext, arguments: GetRun) -> dict[str, Any]:
    run = visible(context, _runs(), arguments.run_id, what="Workflow run", argument="run_id")
    return run_results(run)


def _wait(run: WorkflowRun, seconds: int) -> tuple[WorkflowRun, float]:
    """Wait (bounded) until the run has settled; return it as it is now and the time waited."""
    started = time.monotonic()
    seconds = min(seconds, max_wait_seconds())

    def settled():
        run.refresh_from_db()
        return run.status in SETTLED

    wait_until(settled, seconds=seconds)
    return run, round(time.monotonic() - started, 1)


def _create_and_queue(
    context: CallContext,
    *,
    engagement_id,
    workflow_type,
    name,
    period="",
    description="",
    input_params,
    queue=True,
) -> WorkflowRun:
    data = validated(
        WorkflowRunSerializer,
        {
            "engagement": str(engagement_id),
            "workflow_type": workflow_type,
            "name": name,
            "period": period,
            "description": description,
            "input_params": input_params,
            "agent_name": AGENT_NAME,
        },
        context=api_context(context.user),
        names=RUN_ARGUMENTS,
    )
    context.touch(data["engagement"])
    run = run_services.workflow_run_create(actor=context.user, trace_id=context.trace_id, **data)
    context.touch(run)
    if queue:
        run = run_services.workflow_run_queue(run=run, actor=context.user)
    return run


def create_reserving_run(context: CallContext, arguments: CreateReservingRun) -> dict[str, Any]:
    run = _create_and_queue(
        context,
        engagement_id=arguments.engagement_id,
        workflow_type=arguments.workflow_type,
        name=arguments.name,
        period=arguments.period,
        description=arguments.description,
        input_params=arguments.input_params.as_input_params(),
        queue=arguments.queue,
    )
    waited = 0.0
    if arguments.queue and arguments.wait_seconds:
        run, waited = _wait(run, arguments.wait_seconds)
    else:
        run.refresh_from_db()
    return {**run_results(run), "waited_seconds": waited}


def validate_triangle(context: CallContext, arguments: ValidateTriangle) -> dict[str, Any]:
    artefact = visible(
        context,
        Artefact.objects.select_related("engagement"),
        arguments.triangle_artefact_id,
        what="Artefact",
        argument="triangle_artefact_id",
    )
    run = _create_and_queue(
        context,
        engagement_id=artefact.engagement_id,
        workflow_type=WorkflowType.DATA_VALIDATION,
        name=f"Validation of {artefact}"[:255],
        input_params={
            "triangle_artefact": str(artefact.pk),
            "cumulative": arguments.cumulative,
            "measure": arguments.measure,
            "layout": arguments.layout,
            "allow_negative_development": arguments.allow_negative_development,
        },
    )
    run, waited = _wait(run, arguments.wait_seconds)
    answer = run_results(run)
    summary = run.output_summary if isinstance(run.output_summary, dict) else {}
    return {"valid": summary.get("valid"), **answer, "waited_seconds": waited}


def wait_for_run(context: CallContext, arguments: WaitForRun) -> dict[str, Any]:
    run = visible(context, _runs(), arguments.run_id, what="Workflow run", argument="run_id")
    run, waited = _wait(run, arguments.timeout_seconds)
    return {**run_results(run), "waited_seconds": waited}


def _comparable(context: CallContext, pk, argument: str) -> WorkflowRun:
    run = visible(context, _runs(), pk, what="Workflow run", argument=argument)
    if run.workflow_type not in RESERVING_TYPES:
        raise ToolFailure(
            NOT_RESERVING.format(run=run, workflow_type=run.workflow_type), argument=argument
        )
    summary = run.output_summary if isinstance(run.output_summary, dict) else {}
    if not isinstance(summary.get("origins"), list) or not isinstance(summary.get("totals"), dict):
        raise ToolFailure(
            NO_RESULTS.format(run=run, status=run.status), code="conflict", argument=argument
        )
    return run


def compare_runs(context: CallContext, arguments: CompareRuns) -> dict[str, Any]:
    first = _comparable(context, arguments.first_run_id, "first_run_id")
    second = _comparable(context, arguments.second_run_id, "second_run_id")
    return {
        "first": run_row(first),
        "second": run_row(second),
        "comparison": compare_results(first.output_summary, second.output_summary),
    }


RUN_VIEW = ("workflows.view_workflowrun",)
RUN_CREATE = ("workflows.add_workflowrun", "workflows.change_workflowrun")

TOOLS = (
    Tool(
        name="list_runs",
        description="List the workflow runs of your engagements (newest first), with status, "
        "method and total IBNR once computed.",
        arguments=ListRuns,
        handler=list_runs,
        permissions=RUN_VIEW,
        verb="view workflow runs",
        read_only=True,
    ),
    Tool(
        name="get_run",
        description="One run and its results: totals, reserves by origin, the selections "
        "(options, development factors, tail), warnings, its artefacts and its approvals. "
        "Poll it while a run works.",
        arguments=GetRun,
        handler=get_run,
        permissions=RUN_VIEW,
        verb="view workflow runs",
        read_only=True,
    ),
    Tool(
        name="validate_triangle",
        description="Check a triangle artefact: create and queue a data_validation run, wait "
        "for it, and answer whether the triangle is valid with every check of the report.",
        arguments=ValidateTriangle,
        handler=validate_triangle,
        permissions=RUN_CREATE,
        verb="create and queue workflow runs",
    ),
    Tool(
        name="create_reserving_run",
        description="Create a reserve_calculation (or ibnr_estimation) run with its method "
        "and selections (input_params: the REST API's contract, docs/actuaries/reserving-"
        "methods.md), queue it, and optionally wait for it. A finished run waits for its "
        "workflow approval, which a qualified person decides.",
        arguments=CreateReservingRun,
        handler=create_reserving_run,
        permissions=RUN_CREATE,
        verb="create and queue workflow runs",
    ),
    Tool(
        name="wait_for_run",
        description="Wait (bounded) until a run has finished computing, then answer as "
        "get_run does.",
        arguments=WaitForRun,
        handler=wait_for_run,
        permissions=RUN_VIEW,
        verb="view workflow runs",
        read_only=True,
    ),
    Tool(
        name="compare_runs",
        description="Two reserving runs side by side: ultimate and IBNR by origin and in "
        "total, the IBNR differences, and the options that differ.",
        arguments=CompareRuns,
        handler=compare_runs,
        permissions=RUN_VIEW,
        verb="view workflow runs",
        read_only=True,
    ),
)
