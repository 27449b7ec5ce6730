"""Resources an agent can cite: a run's results and an artefact's metadata, scoped.

`ai-actuary://runs/{id}` answers what get_run does (the run, its totals, reserves by
origin, selections, warnings, artefacts and approvals); `ai-actuary://artefacts/{id}`
an artefact's identity, SHA-256 and review state (never its bytes). Both as JSON, and
only for the reader's engagements: anything else is not found.
"""

from __future__ import annotations

import json
import re
import uuid

import mcp_types as types

from artefacts.models import Artefact
from engagements.selectors import scope_to_user
from workflows.models import WorkflowRun

from .tools.artefacts import artefact_row
from .tools.runs import run_results

SCHEME = "ai-actuary"
RUN_URI = SCHEME + "://runs/{id}"
ARTEFACT_URI = SCHEME + "://artefacts/{id}"
URI_PATTERN = re.compile(rf"^{SCHEME}://(?P<kind>runs|artefacts)/(?P<id>[^/?#]+)$")
LISTED = 25
RESOURCE_NOT_FOUND = "Resource {uri} was not found (it does not exist, or it is not yours to see)."

RESOURCE_TEMPLATES = [
    types.ResourceTemplate(
        name="run",
        title="Workflow run results",
        uri_template=RUN_URI,
        description="A workflow run and its results: totals, reserves by origin, the "
        "selections, warnings, artefacts and approvals (JSON).",
        mime_type="application/json",
    ),
    types.ResourceTemplate(
        name="artefact",
        title="Artefact metadata",
        uri_template=ARTEFACT_URI,
        description="An artefact's identity, SHA-256, size, version and review state (JSON).",
        mime_type="application/json",
    ),
]


class ResourceNotFound(LookupError):
    """The URI names nothing the reader may see."""


def _readable(model, user):
    """Return the rows of `model` the reader sees: their engagements', with the view permission.

    The REST API's rule: reading needs the model's view permission, and only the
    reader's engagements exist for them.
    """
    permission = f"{model._meta.app_label}.view_{model._meta.model_name}"
    if not user.has_perm(permission):
        return model.objects.none()
    return scope_to_user(model.objects.all(), user)


def list_resources(user) -> list[types.Resource]:
    """Return the reader's latest runs and artefacts as resources."""
    runs = _readable(WorkflowRun, user).order_by("-created_at")[:LISTED]
    artefacts = _readable(Artefact, user).order_by("-created_at")[:LISTED]
    return [
        *(
            types.Resource(
                uri=RUN_URI.format(id=run.pk),
                name=f"run-{run.pk}",
                title=f"Run “{run.name}” ({run.status})",
                mime_type="application/json",
            )
            for run in runs
        ),
        *(
            types.Resource(
                uri=ARTEFACT_URI.format(id=artefact.pk),
                name=f"artefact-{artefact.pk}",
                title=f"Artefact “{artefact.name}” v{artefact.version}",
                mime_type="application/json",
            )
            for artefact in artefacts
        ),
    ]


def read_resource(user, uri: str) -> str:
    """Return the JSON text of the resource `uri`; raise ResourceNotFound otherwise."""
    match = URI_PATTERN.match(uri)
    if match is None:
        raise ResourceNotFound(RESOURCE_NOT_FOUND.format(uri=uri))
    try:
        pk = uuid.UUID(match["id"])
    except ValueError:
        raise ResourceNotFound(RESOURCE_NOT_FOUND.format(uri=uri)) from None
    if match["kind"] == "runs":
        run = _readable(WorkflowRun, user).filter(pk=pk).first()
        if run is None:
            raise ResourceNotFound(RESOURCE_NOT_FOUND.format(uri=uri))
        return json.dumps(run_results(run), default=str)
    artefact = _readable(Artefact, user).filter(pk=pk).first()
    if artefact is None:
        raise ResourceNotFound(RESOURCE_NOT_FOUND.format(uri=uri))
    return json.dumps(artefact_row(artefact), default=str)
