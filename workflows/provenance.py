"""What a workflow run ran with (ASOP 56): its inputs, its parameters, its code and libraries.

The runner records `run_provenance` on every run it starts (`WorkflowRun.provenance`);
a replay (`workflows.services.workflow_run_replay`) checks the inputs against it and
reports how its own environment differs. Plain functions: reading versions never
fails a run (an unknown version is recorded as null).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from artefacts.models import Artefact

from .registry import implementation_for, input_artefact_ids

if TYPE_CHECKING:
    from .models import WorkflowRun

# The distribution this back office is installed as (pyproject.toml).
APP_DISTRIBUTION = "ai-actuary-backoffice"
# The libraries whose versions decide the reserving numbers and the bytes of the outputs.
LIBRARIES = ("chainladder", "numpy", "pandas", "matplotlib", "openpyxl")
GIT_TIMEOUT_SECONDS = 5

INPUT_MISSING = (
    "Input artefact {artefact_id} ({param}) of workflow run “{run}” does not exist: "
    "it was deleted or never was."
)


def canonical_json(value: Any) -> str:
    """Return `value` as canonical JSON: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder
    )


def canonical_json_hash(value: Any) -> str:
    """Return the SHA-256 (hex) of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def environment() -> dict[str, Any]:
    """Return the versions of the code and libraries running now (null when unknown)."""
    return {
        "app_version": _version(APP_DISTRIBUTION),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def environment_differences(original: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """Return {what: {"original": …, "replay": …}} for every version that differs."""
    differences = {}
    for key in ("app_version", "git_commit", "python", "python_implementation"):
        if original.get(key) != current.get(key):
            differences[key] = {"original": original.get(key), "replay": current.get(key)}
    original_libraries = original.get("libraries") or {}
    current_libraries = current.get("libraries") or {}
    for name in sorted(set(original_libraries) | set(current_libraries)):
        if original_libraries.get(name) != current_libraries.get(name):
            differences[name] = {
                "original": original_libraries.get(name),
                "replay": current_libraries.get(name),
            }
    return differences


def git_commit() -> str | None:
    """Return the commit the code was checked out at, or None (no git, not a checkout)."""
    try:
        result = subprocess.run(
            ("git", "rev-parse", "HEAD"),
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def input_record(param: str, artefact: Artefact) -> dict[str, Any]:
    """Return what the provenance keeps of one input artefact: identity and exact bytes."""
    return {
        "param": param,
        "artefact_id": str(artefact.pk),
        "name": artefact.name,
        "version": artefact.version,
        "file_name": artefact.file_name,
        "file_size": artefact.file_size,
        "content_hash": artefact.content_hash,
    }


def run_provenance(run: WorkflowRun, params: dict[str, Any]) -> dict[str, Any]:
    """Return the provenance of a run about to execute with the checked `params`.

    Raise LookupError naming the input if an input artefact no longer exists.
    """
    inputs = []
    for param, artefact_id in input_artefact_ids(
        workflow_type=run.workflow_type, input_params=params
    ):
        artefact = Artefact.objects.filter(pk=artefact_id).first()
        if artefact is None:
            raise LookupError(INPUT_MISSING.format(artefact_id=artefact_id, param=param, run=run))
        inputs.append(input_record(param, artefact))
    implementation = implementation_for(run.workflow_type)
    return {
        "recorded_at": timezone.now().isoformat(),
        "workflow_type": run.workflow_type,
        "implementation": (
            f"{implementation.__module__}.{implementation.__qualname__}" if implementation else None
        ),
        "steps": [step.name for step in implementation.steps] if implementation else [],
        "inputs": inputs,
        "parameters": {"sha256": canonical_json_hash(params), "canonical": canonical_json(params)},
        "environment": environment(),
    }


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
