"""The upload tool: a triangle (or its exposure table) given inline, as CSV text or base64.

The bytes go through the REST API's upload serializer and `artefact_create`, like a
multipart `POST /api/v1/artefacts/`: hashed, checked against the type's formats, a
draft artefact of the engagement. Inline content is capped by MCP_MAX_UPLOAD_BYTES
(1 MiB by default; never above ARTEFACT_MAX_UPLOAD_SIZE).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, Literal

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from pydantic import Field, model_validator

from artefacts import services as artefact_services
from artefacts.api.serializers import ArtefactUploadSerializer
from artefacts.choices import ArtefactType
from artefacts.models import Artefact

from ..calls import CallContext, Tool, ToolFailure, validated
from .common import Arguments, api_context

DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024
UPLOAD_TYPES = (
    ArtefactType.TRIANGLE.value,
    ArtefactType.DATA_FILE.value,
    ArtefactType.CSV.value,
    ArtefactType.EXCEL.value,
)
# Upload serializer fields → the tool arguments that fill them.
UPLOAD_ARGUMENTS = {"engagement": "engagement_id", "file": "file_name"}
CONTENT_ONE_OF = "Give the file's content as csv_text or as content_base64, exactly one of them."
NOT_BASE64 = "content_base64 is not valid base64: {error}."
TOO_LARGE = (
    "The content is {size:,} bytes; an inline upload may have at most {limit:,} bytes "
    "(MCP_MAX_UPLOAD_BYTES). Upload larger files through the REST API or the admin."
)


class UploadTriangle(Arguments):
    engagement_id: uuid.UUID = Field(description="Id of the engagement (one you work on).")
    file_name: str = Field(
        min_length=1,
        max_length=255,
        description="The file's name with its extension (.csv or .xlsx), e.g. raa.csv.",
    )
    csv_text: str | None = Field(
        default=None,
        description="The CSV file's text: long (origin,development,value) or wide (origin "
        "rows, age columns). Give this or content_base64.",
    )
    content_base64: str | None = Field(
        default=None, description="The file's bytes in base64 (e.g. an .xlsx workbook)."
    )
    artefact_type: Literal[UPLOAD_TYPES] = Field(
        default=ArtefactType.TRIANGLE.value,
        description="triangle (default); data_file for an exposure table such as "
        "origin,earned_premium.",
    )
    name: str | None = Field(default=None, max_length=255, description="Display name.")
    description: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _one_content(self):
        if (self.csv_text is None) == (self.content_base64 is None):
            raise ValueError(CONTENT_ONE_OF)
        return self


def max_upload_bytes() -> int:
    """Return the largest inline upload (MCP_MAX_UPLOAD_BYTES, capped by the artefact limit)."""
    limit = int(getattr(settings, "MCP_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES))
    return min(limit, settings.ARTEFACT_MAX_UPLOAD_SIZE)


def _content(arguments: UploadTriangle) -> bytes:
    if arguments.csv_text is not None:
        content = arguments.csv_text.encode("utf-8")
        argument = "csv_text"
    else:
        try:
            content = base64.b64decode(arguments.content_base64, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ToolFailure(NOT_BASE64.format(error=error), argument="content_base64") from None
        argument = "content_base64"
    limit = max_upload_bytes()
    if len(content) > limit:
        raise ToolFailure(
            TOO_LARGE.format(size=len(content), limit=limit), code="too_large", argument=argument
        )
    return content


def artefact_row(artefact: Artefact) -> dict[str, Any]:
    """Return an artefact's metadata: identity, integrity and review state."""
    return {
        "id": str(artefact.pk),
        "engagement_id": str(artefact.engagement_id),
        "workflow_run_id": str(artefact.workflow_run_id) if artefact.workflow_run_id else None,
        "artefact_type": artefact.artefact_type,
        "name": artefact.name,
        "description": artefact.description,
        "file_name": artefact.file_name,
        "mime_type": artefact.mime_type,
        "file_size": artefact.file_size,
        "content_hash": artefact.content_hash,
        "status": artefact.status,
        "version": artefact.version,
        "created_at": artefact.created_at.isoformat(),
        "trace_id": artefact.trace_id,
        "resource": f"ai-actuary://artefacts/{artefact.pk}",
    }


def upload_triangle(context: CallContext, arguments: UploadTriangle) -> dict[str, Any]:
    content = _content(arguments)
    data = {
        "file": SimpleUploadedFile(arguments.file_name, content),
        "engagement": str(arguments.engagement_id),
        "artefact_type": arguments.artefact_type,
        "description": arguments.description,
    }
    if arguments.name:
        data["name"] = arguments.name
    data = validated(
        ArtefactUploadSerializer, data, context=api_context(context.user), names=UPLOAD_ARGUMENTS
    )
    context.touch(data["engagement"])
    artefact = artefact_services.artefact_create(
        upload=data.pop("file"),
        actor=context.user,
        trace_id=context.trace_id,
        max_size=max_upload_bytes(),
        **data,
    )
    context.touch(artefact)
    return {"artefact": artefact_row(artefact)}


TOOLS = (
    Tool(
        name="upload_triangle",
        description="Upload a triangle (or an exposure table) to an engagement as a draft "
        "artefact: content inline as CSV text or base64, with a size cap. Answers the "
        "artefact's id (for validate_triangle and create_reserving_run) and SHA-256.",
        arguments=UploadTriangle,
        handler=upload_triangle,
        permissions=("artefacts.add_artefact",),
        verb="upload artefacts",
    ),
)
