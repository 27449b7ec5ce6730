"""The schema of an audit event's values and metadata: open objects, by action.

What an event holds depends on its action, so these are open objects whose
descriptions say what goes in them (records.api.shapes).
"""

from records.api.shapes import OpenShape


class AuditValuesShape(OpenShape):
    """The fields of the resource the event changed, by field name, as JSON values.

    Foreign keys are ids, dates and times ISO 8601 text, files their stored name.
    old_value holds the values before and new_value after: a creation has only
    new_value (the fields set), an edit or a lifecycle move the fields that changed
    (status among them), a deletion the fields it cleared or stamped. Some actions
    record a summary instead (a replay: replay_record and matched; a deactivation:
    is_active). Null when the event changed no record (a login, a download, …).
    """


class AuditMetadataShape(OpenShape):
    """The context of the event, by action; empty when there is none.

    For example: move (the lifecycle move) on every status change, with approval_id on
    a run released by its approval; artefact_version, artefact_content_hash and the
    conflict_of_interest_statement on an approval decision; username and outcome on a
    login; certification and holder on a qualification; scope and counts on a backup;
    outputs and environment_differences on a replay.
    """


class BackupMetadataShape(OpenShape):
    """What a backup holds, as the backup command recorded it.

    scope (what was backed up: the engagement or everything), format_version,
    app_version, counts (rows per table), files, file_bytes and problems (the files it
    could not read); pre_recovery_snapshot and recovery_id on the snapshot a restore
    takes first.
    """


class RecoveryOptionsShape(OpenShape):
    """How the restore command was asked to restore: mode, overwrite, merge, source."""


class RecoveryMetadataShape(OpenShape):
    """What a restore read and did, as the restore command recorded it.

    scope, archive, checksum_origin, manifest_created_at, manifest_backup_id,
    app_version and format_version of the archive; once done, tables (rows written,
    kept or replaced per table), files, warnings and snapshot_backup_id.
    """
