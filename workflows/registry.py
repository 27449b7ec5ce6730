"""Which workflow types the back office runs itself, and the implementation of each.

A type listed here can be queued: a worker executes its implementation's steps. Any
other type (IFRS 17, ALM, reinsurance, reporting, review, custom, …) is refused at
queueing with a message naming the types that can run; such a run is still a record
whose work is done outside the runner (by an agent or a person) and reported through
the services: start, update progress, complete or fail.

Importing this module loads no numerical library: the implementations import them
inside their steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from records.exceptions import InvalidInput

from .choices import WorkflowType
from .implementations.reserving import (
    DataValidation,
    IBNREstimation,
    ReserveCalculation,
    TriangleAnalysis,
)

if TYPE_CHECKING:
    from engagements.models import Engagement

    from .implementations.base import WorkflowImplementation

IMPLEMENTATIONS: dict[str, type[WorkflowImplementation]] = {
    WorkflowType.DATA_VALIDATION: DataValidation,
    WorkflowType.TRIANGLE_ANALYSIS: TriangleAnalysis,
    WorkflowType.RESERVE_CALCULATION: ReserveCalculation,
    WorkflowType.IBNR_ESTIMATION: IBNREstimation,
}

INVALID_PARAMS = "Invalid input_params ({workflow_type}): {problem}"


def implementation_for(workflow_type: str) -> type[WorkflowImplementation] | None:
    """Return the implementation of `workflow_type`, or None if the runner cannot run it."""
    return IMPLEMENTATIONS.get(workflow_type)


def runnable_types() -> list[str]:
    """Return the workflow types the runner can execute, sorted."""
    return sorted(IMPLEMENTATIONS)


def validate_input_params(
    *, workflow_type: str, input_params: Any, engagement: Engagement
) -> dict[str, Any]:
    """Return the run's input parameters checked and completed with defaults.

    Types without an implementation keep their parameters as given (their work is done
    elsewhere). For the others missing parameters are as wrong as bad ones: a run the
    runner cannot execute is no placeholder worth keeping. Raise InvalidInput (field
    `input_params`), naming the workflow and the parameter, for bad input.
    """
    implementation = implementation_for(workflow_type)
    if implementation is None:
        return input_params
    try:
        return implementation.validate_params(input_params, engagement)
    except InvalidInput as error:
        raise InvalidInput(
            INVALID_PARAMS.format(workflow_type=workflow_type, problem=error.message),
            field="input_params",
        ) from None


def input_artefact_ids(*, workflow_type: str, input_params: Any) -> list[tuple[str, str]]:
    """Return (parameter, artefact id) for each artefact a run of this type reads as input.

    Empty for the types the runner cannot execute (their inputs are not declared).
    """
    implementation = implementation_for(workflow_type)
    if implementation is None or not isinstance(input_params, dict):
        return []
    return implementation.input_artefact_ids(input_params)
