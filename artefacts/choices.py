"""Choices of the artefacts app and the artefact review lifecycle."""

from django.db import models


class ArtefactType(models.TextChoices):
    DATA_FILE = "data_file", "Data file"
    CSV = "csv", "CSV"
    EXCEL = "excel", "Excel"
    PARQUET = "parquet", "Parquet"
    REPORT = "report", "Report"
    PDF = "pdf", "PDF"
    WORD = "word", "Word"
    MARKDOWN = "markdown", "Markdown"
    CHART = "chart", "Chart"
    DASHBOARD = "dashboard", "Dashboard"
    GRAPH = "graph", "Graph"
    MODEL_OUTPUT = "model_output", "Model output"
    TRIANGLE = "triangle", "Triangle"
    PROJECTION = "projection", "Projection"
    SENSITIVITY = "sensitivity", "Sensitivity"
    NOTEBOOK = "notebook", "Notebook"
    SCRIPT = "script", "Script"
    LOG = "log", "Log"
    METADATA = "metadata", "Metadata"
    CONFIG = "config", "Config"
    ARCHIVE = "archive", "Archive"
    OTHER = "other", "Other"


class ArtefactStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_REVIEW = "pending_review", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded"
    ARCHIVED = "archived", "Archived"


_S = ArtefactStatus
# move -> (states it may start from, state it ends in)
ARTEFACT_TRANSITIONS = {
    "submit_for_review": ({_S.DRAFT}, _S.PENDING_REVIEW),
    "approve": ({_S.PENDING_REVIEW}, _S.APPROVED),
    "reject": ({_S.PENDING_REVIEW}, _S.REJECTED),
    # Revoking the approval of an approved artefact sends it back for review.
    "return_to_review": ({_S.APPROVED}, _S.PENDING_REVIEW),
    "supersede": ({_S.DRAFT, _S.PENDING_REVIEW, _S.APPROVED, _S.REJECTED}, _S.SUPERSEDED),
    "archive": (
        {_S.DRAFT, _S.PENDING_REVIEW, _S.APPROVED, _S.REJECTED, _S.SUPERSEDED},
        _S.ARCHIVED,
    ),
}

# Only these states still await a decision or may be reviewed.
REVIEWABLE_STATUSES = frozenset({_S.DRAFT, _S.PENDING_REVIEW})

# Artefact types that hold data (as opposed to results, reports or code): uploaded ones
# are an engagement's input data (artefacts.selectors.engagement_input_data).
INPUT_DATA_TYPES = frozenset(
    {
        ArtefactType.TRIANGLE,
        ArtefactType.DATA_FILE,
        ArtefactType.CSV,
        ArtefactType.EXCEL,
        ArtefactType.PARQUET,
    }
)
# Input data in these states is no longer used: a newer version replaced it, or it was put away.
RETIRED_STATUSES = frozenset({_S.SUPERSEDED, _S.ARCHIVED})


class DataProviderType(models.TextChoices):
    """Who provided data an engagement relies on (ASOP 23)."""

    CLIENT = "client", "Client"
    THIRD_PARTY = "third_party", "Third party"
    INTERNAL = "internal", "Internal"
