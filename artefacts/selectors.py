"""Reads about artefacts that business rules build on: an engagement's input data.

An engagement's **input data** is what its results rely on and what the data
reliance register (ASOP 23) must cover before its final sign-off:

1. every live artefact of a data type (triangle, data_file, csv, excel, parquet)
   that was uploaded, not produced by a workflow run, and is still in use: not
   deleted, not superseded by a newer version, not archived; plus
2. every artefact (not deleted) that a workflow run of the engagement reads as input
   (the `run_inputs` hook, which workflows provides: as the runner recorded it, or as
   a run not yet started names it), whatever its type or state (a superseded version
   a run used is still relied on), except the inputs of failed or cancelled runs.

Results written by runs (reserves, charts, reports) are not input data unless a run
reads them in turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from .choices import INPUT_DATA_TYPES, RETIRED_STATUSES
from .hooks import run_inputs
from .models import Artefact

if TYPE_CHECKING:
    from engagements.models import Engagement


def engagement_input_data(engagement: Engagement) -> QuerySet[Artefact]:
    """Return the engagement's input data (see the module docstring), by name and version."""
    uploaded_data = Q(artefact_type__in=INPUT_DATA_TYPES, workflow_run__isnull=True) & ~Q(
        status__in=RETIRED_STATUSES
    )
    read_by_runs = Q(pk__in=list(run_inputs(engagement)))
    return (
        Artefact.objects.filter(engagement=engagement)
        .filter(uploaded_data | read_by_runs)
        .order_by("name", "version")
    )


def engagement_input_data_without_reliance(engagement: Engagement) -> list[Artefact]:
    """Return the engagement's input data that has no data reliance entry yet."""
    return list(engagement_input_data(engagement).filter(data_reliance__isnull=True))


def is_input_data(artefact: Artefact) -> bool:
    """Return whether `artefact` is input data of its engagement."""
    return engagement_input_data(artefact.engagement).filter(pk=artefact.pk).exists()
