"""Fixtures of the workflow runner tests: triangle artefacts, running queued runs, test types."""

import functools

import pytest
from django.core.files.base import ContentFile

from artefacts.choices import ArtefactType
from artefacts.services import artefact_create
from workflows import registry
from workflows.reserving import sample_triangle_csv
from workflows.services import workflow_run_create, workflow_run_queue


@functools.cache
def sample_csv(name: str, layout: str = "long") -> bytes:
    """Return a bundled sample triangle as CSV (built once: it loads chainladder)."""
    return sample_triangle_csv(name, layout=layout)


def upload_triangle(engagement, *, actor, content: bytes, file_name="triangle.csv", name=None):
    """Return a triangle artefact uploaded through the service."""
    return artefact_create(
        engagement=engagement,
        upload=ContentFile(content, name=file_name),
        actor=actor,
        name=name or file_name,
        artefact_type=ArtefactType.TRIANGLE,
    )


def reserving_params(artefact, **overrides):
    """Return input_params for a reserving run on `artefact` (cumulative, paid)."""
    return {
        "triangle_artefact": str(artefact.pk),
        "cumulative": True,
        "measure": "paid",
        **overrides,
    }


@pytest.fixture
def raa(engagement, actuary):
    """The RAA triangle (long layout) as a triangle artefact of the engagement."""
    return upload_triangle(
        engagement, actor=actuary, content=sample_csv("raa"), file_name="raa.csv", name="RAA"
    )


@pytest.fixture
def genins(engagement, actuary):
    """The GenIns triangle (wide layout) as a triangle artefact of the engagement."""
    return upload_triangle(
        engagement,
        actor=actuary,
        content=sample_csv("genins", "wide"),
        file_name="genins.csv",
        name="GenIns",
    )


@pytest.fixture
def create_run(engagement, actuary):
    """Return a function that creates a pending run through the service."""

    def create(workflow_type, input_params, *, actor=actuary, name=None, **fields):
        return workflow_run_create(
            engagement=engagement,
            workflow_type=workflow_type,
            name=name or f"{workflow_type} run",
            input_params=input_params,
            actor=actor,
            **fields,
        )

    return create


@pytest.fixture
def queue_and_run(django_capture_on_commit_callbacks, actuary):
    """Return a function that queues a run and lets the immediate backend execute its task.

    The test's transaction never commits, so the on-commit enqueue is run by hand here,
    as a commit would run it.
    """

    def queue_and_run(run, *, actor=actuary):
        with django_capture_on_commit_callbacks() as callbacks:
            workflow_run_queue(run=run, actor=actor)
        assert len(callbacks) == 1
        # Run the enqueue as the commit would, and what the run's own commits register
        # (the notifications of its events) after it.
        with django_capture_on_commit_callbacks(execute=True):
            callbacks[0]()
        run.refresh_from_db()
        return run

    return queue_and_run


@pytest.fixture
def register(monkeypatch):
    """Return a function that registers a test implementation for a workflow type."""

    def register(workflow_type, implementation):
        monkeypatch.setitem(registry.IMPLEMENTATIONS, workflow_type, implementation)
        return implementation

    return register
