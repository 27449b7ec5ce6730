"""What the runner needs from a workflow implementation: steps, an input check, results.

An implementation is a class per workflow type, listed in `workflows.registry`. The
runner (`workflows.runner`) creates one instance per execution and calls its steps in
order; what one step hands to the next lives on the instance. Heavy numerical
libraries are imported inside the steps, never when this package is imported.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.files.base import ContentFile

from artefacts.services import artefact_create
from records.exceptions import InvalidInput

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

    from artefacts.models import Artefact
    from engagements.models import Engagement
    from workflows.models import WorkflowRun

PARAMS_NOT_AN_OBJECT = "they must be a JSON object of named parameters, not {kind}."
PARAMS_UNKNOWN = "unknown parameter(s) {names} (accepted: {accepted})."
PARAM_REQUIRED = "{name} is required: {help}."
PARAM_NOT_A_CHOICE = "{name} must be one of {allowed}, not {value!r}."
PARAM_NOT_A_BOOLEAN = "{name} must be true or false, not {value!r}."
PARAM_NOT_A_NUMBER = "{name} must be a number {rule}, not {value!r}."


@dataclass(frozen=True)
class Step:
    """One step of a workflow: the implementation's method `name`, shown as `label`."""

    name: str
    label: str


class WorkflowImplementation:
    """Base class of every workflow the runner executes.

    A subclass declares `label`, its `steps` (methods run in order), whether its
    results need sign-off (`needs_approval`: the run then waits for a workflow
    approval instead of completing), which parameters name input artefacts
    (`artefact_params`: their ids, versions and hashes are recorded as the run's
    provenance), checks its inputs in `validate_params` and returns its results
    summary from `output_summary`.

    With `replay=True` (a replay of a finished run) the steps run as usual but
    `store_artefact` keeps only the SHA-256 of each output: nothing is stored.
    """

    label: ClassVar[str] = "workflow"
    steps: ClassVar[tuple[Step, ...]] = ()
    needs_approval: ClassVar[bool] = False
    artefact_params: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        run: WorkflowRun,
        actor: AbstractUser,
        params: dict[str, Any],
        replay: bool = False,
    ):
        self.run = run
        self.actor = actor
        self.params = params
        self.replay = replay
        self.artefacts: list[dict[str, Any]] = []

    @classmethod
    def input_artefact_ids(cls, input_params: dict[str, Any]) -> list[tuple[str, str]]:
        """Return (parameter, artefact id) for each input artefact the parameters name."""
        return [
            (name, str(input_params[name]))
            for name in cls.artefact_params
            if input_params.get(name) not in (None, "")
        ]

    @classmethod
    def validate_params(cls, input_params: Any, engagement: Engagement) -> dict[str, Any]:
        """Return the input parameters checked and completed with their defaults.

        Raise InvalidInput, naming the parameter and what is wrong with it, for bad input.
        """
        return dict(require_object(input_params))

    def output_summary(self) -> dict[str, Any]:
        """Return the results summary stored on the run when it ends."""
        return {"artefacts": list(self.artefacts)}

    def approval_notes(self) -> str:
        """Say what the reviewer of a run that needs sign-off is asked to approve."""
        return (
            f"Results of {self.label} run “{self.run}”: review its {len(self.artefacts)} artefacts."
        )

    def store_artefact(
        self,
        content: bytes,
        *,
        file_name: str,
        artefact_type: str,
        name: str,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> Artefact | None:
        """Store `content` as a draft artefact of the run's engagement, linked to the run.

        In a replay, only record what would have been stored (with its SHA-256).
        """
        if self.replay:
            self.artefacts.append(
                {
                    "name": name,
                    "artefact_type": artefact_type,
                    "file_name": file_name,
                    "content_hash": hashlib.sha256(content).hexdigest(),
                    "file_size": len(content),
                }
            )
            return None
        artefact = artefact_create(
            engagement=self.run.engagement,
            upload=ContentFile(content, name=file_name),
            actor=self.actor,
            name=name,
            artefact_type=artefact_type,
            description=description,
            workflow_run=self.run,
            metadata={
                "workflow_run": str(self.run.pk),
                "workflow_type": self.run.workflow_type,
                **(metadata or {}),
            },
            trace_id=self.run.trace_id,
        )
        self.artefacts.append(
            {
                "id": str(artefact.pk),
                "name": artefact.name,
                "artefact_type": artefact.artefact_type,
                "file_name": artefact.file_name,
                "content_hash": artefact.content_hash,
            }
        )
        return artefact


# --- reading input parameters ------------------------------------------------------------


def require_object(input_params: Any) -> dict[str, Any]:
    """Return `input_params` if it is a dict; refuse any other JSON value."""
    if not isinstance(input_params, dict):
        raise InvalidInput(PARAMS_NOT_AN_OBJECT.format(kind=type(input_params).__name__))
    return input_params


def refuse_unknown(input_params: dict[str, Any], accepted: tuple[str, ...]) -> None:
    """Refuse parameters the workflow does not know (a typo must not be silently ignored)."""
    unknown = sorted(set(input_params) - set(accepted))
    if unknown:
        raise InvalidInput(
            PARAMS_UNKNOWN.format(names=", ".join(unknown), accepted=", ".join(accepted))
        )


def choice_param(
    input_params: dict[str, Any], name: str, allowed: tuple[str, ...], *, default: str | None
) -> str:
    """Return the parameter if it is one of `allowed`; its default when absent (None: required)."""
    value = input_params.get(name)
    if value is None:
        if default is None:
            raise InvalidInput(
                PARAM_REQUIRED.format(name=name, help="one of " + ", ".join(allowed))
            )
        return default
    if value not in allowed:
        raise InvalidInput(
            PARAM_NOT_A_CHOICE.format(name=name, allowed=", ".join(allowed), value=value)
        )
    return value


def boolean_param(
    input_params: dict[str, Any], name: str, *, default: bool | None, help: str = "true or false"
) -> bool:
    """Return the parameter if it is a JSON boolean; its default when absent (None: required)."""
    value = input_params.get(name)
    if value is None:
        if default is None:
            raise InvalidInput(PARAM_REQUIRED.format(name=name, help=help))
        return default
    if not isinstance(value, bool):
        raise InvalidInput(PARAM_NOT_A_BOOLEAN.format(name=name, value=value))
    return value


def number_param(
    input_params: dict[str, Any], name: str, *, minimum: float, rule: str
) -> float | None:
    """Return the parameter as a finite float ≥ `minimum`, or None when absent or null."""
    value = input_params.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < minimum
    ):
        raise InvalidInput(PARAM_NOT_A_NUMBER.format(name=name, rule=rule, value=value))
    return float(value)
