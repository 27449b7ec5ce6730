"""The errors of backups and restores: each says what could not be done; nothing is half done."""

from __future__ import annotations

from records.exceptions import Conflict


class BackupError(Conflict):
    """A backup or restore that could not be done."""

    code = "backup_error"


class BackupFailed(BackupError):
    """Writing a backup archive failed; the Backup row is failed and no archive is left."""

    code = "backup_failed"


class RestoreRefused(BackupError):
    """A restore refused before any write: unreadable or corrupted archive, or conflicts."""

    code = "restore_refused"


class RestoreFailed(BackupError):
    """A restore that failed while writing: rolled back, its Recovery row failed."""

    code = "restore_failed"
