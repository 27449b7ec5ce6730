"""What artefacts add to the engagement page (registered in ArtefactsConfig.ready())."""

from __future__ import annotations

from records.admin import (
    PageExtension,
    ReadOnlyInline,
)

from ..models import Artefact
from .reliance import data_reliance_context


class ArtefactInline(ReadOnlyInline):
    model = Artefact
    fk_name = "engagement"
    fields = ("name", "artefact_type", "version", "status", "file_size", "created_at")
    ordering = ("-created_at",)


ENGAGEMENT_PAGE = PageExtension(inlines=(ArtefactInline,), context=data_reliance_context)
