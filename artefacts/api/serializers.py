"""Serializers of artefacts: the record, the multipart upload, and a new version."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engagements.models import Engagement
from records.api.serializers import (
    InputSerializer,
    JSONObjectField,
    RecordSerializer,
    VisiblePrimaryKeyRelatedField,
)

from ..choices import ArtefactType
from ..models import Artefact, DataReliance

# Workflow runs, by the model the artefacts' foreign keys name (workflows sits above).
WorkflowRun = Artefact._meta.get_field("workflow_run").related_model

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")
FILE_NOT_REPLACEABLE = (
    "The file of an artefact never changes: upload the changed file as a new version "
    "with POST /api/v1/artefacts/{id}/versions/."
)
# Everything the server computes from the bytes or the review is read-only.
READ_ONLY_MESSAGES = {
    "file": FILE_NOT_REPLACEABLE,
    "status": (
        "The status is read-only: submit with POST …/{id}/submit/, archive with …/archive/; "
        "approval decisions are made on /api/v1/approvals/."
    ),
}


class ArtefactSerializer(RecordSerializer):
    """An artefact's record: identity, integrity (hash, size, MIME type) and review state.

    Only name, description, type and metadata of a draft may be edited; the bytes
    never change (a change is a new version), and they are fetched from
    `download_url`, which checks them against `content_hash` first.
    """

    metadata = JSONObjectField(required=False, help_text="Custom fields (a JSON object).")
    download_url = serializers.SerializerMethodField(
        help_text="Where to download the bytes (checked against content_hash first)."
    )

    read_only_messages = READ_ONLY_MESSAGES

    class Meta:
        model = Artefact
        fields = (
            "id",
            "engagement",
            "workflow_run",
            "artefact_type",
            "name",
            "description",
            "file_name",
            "mime_type",
            "file_size",
            "content_hash",
            "storage_bucket",
            "status",
            "version",
            "previous_version",
            "metadata",
            "is_approved",
            "requires_approval",
            "download_url",
            "trace_id",
            *AUDIT_FIELDS,
        )
        read_only_fields = (
            "id",
            "engagement",
            "workflow_run",
            "file_name",
            "mime_type",
            "file_size",
            "content_hash",
            "storage_bucket",
            "status",
            "version",
            "previous_version",
            "is_approved",
            "requires_approval",
            "trace_id",
            *AUDIT_FIELDS,
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, artefact) -> str:
        """Return the download URL, absolute when the request is known."""
        path = reverse("api:artefact-download", args=(artefact.pk,))
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ArtefactUploadSerializer(InputSerializer):
    """The multipart form that uploads a new artefact (version 1, draft)."""

    file = serializers.FileField(
        allow_empty_file=False,
        use_url=False,
        help_text="The bytes. Hash, size and MIME type are computed by the server; the format "
        "must be one the artefact type allows.",
    )
    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        help_text="Id of the engagement (one you work on).",
    )
    artefact_type = serializers.ChoiceField(
        choices=ArtefactType.choices, help_text="What the file is; decides the allowed formats."
    )
    name = serializers.CharField(
        max_length=255, required=False, help_text="Display name; defaults to the file name."
    )
    description = serializers.CharField(required=False, allow_blank=True)
    # A form field cannot be null: leave it out for an artefact no run produced.
    workflow_run = VisiblePrimaryKeyRelatedField(
        queryset=WorkflowRun.objects.all(),
        required=False,
        help_text="Id of the run that produced it (same engagement); leave it out otherwise.",
    )
    metadata = JSONObjectField(required=False, help_text="Custom fields, as JSON text.")


class ArtefactVersionSerializer(InputSerializer):
    """The multipart form that uploads changed bytes as the next version of an artefact."""

    file = serializers.FileField(
        allow_empty_file=False, use_url=False, help_text="The changed bytes (same type rules)."
    )
    name = serializers.CharField(
        max_length=255, required=False, help_text="Defaults to the previous version's."
    )
    description = serializers.CharField(
        required=False, allow_blank=True, help_text="Defaults to the previous version's."
    )
    metadata = JSONObjectField(
        required=False, help_text="Custom fields, as JSON text; defaults to the previous version's."
    )


class DataRelianceSerializer(RecordSerializer):
    """An entry of the data reliance register (ASOP 23): one per input artefact.

    The artefact is set when the entry is recorded; its engagement is the artefact's.
    Unreviewed data needs `not_reviewed_reason`; `validation_run` is the completed
    data_validation run that checked this very artefact.
    """

    artefact = VisiblePrimaryKeyRelatedField(
        queryset=Artefact.objects.all(),
        help_text="Id of the input artefact (data file, triangle, … or a run's input).",
    )
    validation_run = VisiblePrimaryKeyRelatedField(
        queryset=WorkflowRun.objects.all(),
        required=False,
        allow_null=True,
        help_text="Id of the completed data_validation run whose results support the checks.",
    )

    class Meta:
        model = DataReliance
        fields = (
            "id",
            "engagement",
            "artefact",
            "provider_type",
            "provider_name",
            "data_as_of",
            "checks_performed",
            "validation_run",
            "known_limitations",
            "reviewed",
            "not_reviewed_reason",
            "trace_id",
            *AUDIT_FIELDS,
        )
        read_only_fields = ("id", "engagement", "trace_id", *AUDIT_FIELDS)
        create_only_fields = ("artefact",)
