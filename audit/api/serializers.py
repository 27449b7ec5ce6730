"""Serializers of the audit log and the backup and recovery records (all read-only)."""

from rest_framework import serializers

from records.api.lean import LeanListSerializer
from records.api.shapes import ShapeField

from ..models import AuditLog, Backup, Recovery
from .shapes import (
    AuditMetadataShape,
    AuditValuesShape,
    BackupMetadataShape,
    RecoveryMetadataShape,
    RecoveryOptionsShape,
)


class AuditLogSerializer(serializers.ModelSerializer):
    """One audit event with its place in the hash chain."""

    old_value = ShapeField(AuditValuesShape, allow_null=True, help_text="Before the event.")
    new_value = ShapeField(AuditValuesShape, allow_null=True, help_text="After the event.")
    metadata = ShapeField(AuditMetadataShape)

    class Meta:
        # Lists are read lean (records.api.lean): the same JSON, a fraction of the CPU.
        list_serializer_class = LeanListSerializer
        model = AuditLog
        fields = (
            "id",
            "sequence",
            "created_at",
            "user",
            "action",
            "severity",
            "resource_type",
            "resource_id",
            "engagement_id",
            "session_id",
            "description",
            "old_value",
            "new_value",
            "metadata",
            "ip_address",
            "user_agent",
            "trace_id",
            "previous_hash",
            "entry_hash",
        )
        read_only_fields = fields


class BackupSerializer(serializers.ModelSerializer):
    """What a backup command wrote."""

    tables_included = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The tables it holds."
    )
    metadata = ShapeField(BackupMetadataShape)

    class Meta:
        model = Backup
        fields = (
            "id",
            "name",
            "description",
            "backup_type",
            "status",
            "storage_path",
            "storage_provider",
            "file_size_bytes",
            "record_count",
            "started_at",
            "completed_at",
            "expires_at",
            "tables_included",
            "engagement",
            "error_message",
            "checksum",
            "metadata",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        )
        read_only_fields = fields


class RecoverySerializer(serializers.ModelSerializer):
    """What a restore command did."""

    tables_recovered = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="The tables it wrote to."
    )
    options = ShapeField(RecoveryOptionsShape)
    metadata = ShapeField(RecoveryMetadataShape)

    class Meta:
        model = Recovery
        fields = (
            "id",
            "name",
            "description",
            "backup",
            "status",
            "started_at",
            "completed_at",
            "tables_recovered",
            "records_recovered",
            "engagement",
            "error_message",
            "options",
            "pre_recovery_snapshot",
            "metadata",
            "created_at",
            "updated_at",
            "created_by",
            "updated_by",
        )
        read_only_fields = fields
