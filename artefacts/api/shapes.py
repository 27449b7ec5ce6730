"""The schema of what the artefacts app writes into other records' JSON (records.api.shapes)."""

from rest_framework import serializers

from records.api.shapes import Shape

from ..choices import DataProviderType


class RelianceSnapshotShape(Shape):
    """A data reliance entry as a disclosure checklist keeps it (`DataReliance.snapshot`)."""

    id = serializers.UUIDField()
    artefact_id = serializers.UUIDField()
    artefact = serializers.CharField(help_text="The artefact's name.")
    version = serializers.IntegerField()
    content_hash = serializers.CharField()
    provider_type = serializers.ChoiceField(choices=DataProviderType.choices)
    provider_name = serializers.CharField()
    data_as_of = serializers.DateField()
    checks_performed = serializers.CharField(allow_blank=True)
    validation_run_id = serializers.UUIDField(allow_null=True)
    known_limitations = serializers.CharField(allow_blank=True)
    reviewed = serializers.BooleanField()
    not_reviewed_reason = serializers.CharField(allow_blank=True)
