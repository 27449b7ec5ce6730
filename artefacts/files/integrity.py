"""Integrity: a stored file is served only once its bytes are re-hashed and match the record.

A missing or changed file is never returned; its problem is recorded as a critical
artefact_access audit event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from django.core.files import File

from audit.choices import AuditAction, Severity
from audit.services import audit_record
from records.exceptions import Conflict

from .storage import _digest_of

FILE_MISSING_MESSAGE = (
    "The file of artefact “{artefact}” ({artefact_id}) is missing from storage "
    "(“{storage_name}”); it cannot be served."
)
FILE_CORRUPTED_MESSAGE = (
    "The file of artefact “{artefact}” ({artefact_id}) does not match its record "
    "(expected SHA-256 {expected_hash}, {expected_size} bytes; found {actual_hash}, "
    "{actual_size} bytes); it cannot be served."
)


class FileStatus(enum.StrEnum):
    """The outcome of re-hashing an artefact's stored bytes."""

    OK = "ok"
    MISSING = "missing"
    CORRUPTED = "corrupted"


@dataclass(frozen=True)
class FileCheck:
    """The result of re-hashing an artefact's stored bytes against its record."""

    status: FileStatus
    storage_name: str
    expected_hash: str
    expected_size: int
    actual_hash: str | None = None
    actual_size: int | None = None

    @property
    def ok(self) -> bool:
        """Return whether the stored bytes are the recorded ones."""
        return self.status == FileStatus.OK

    def message(self, artefact) -> str:
        """Return the sentence that explains a failed check (empty when it passed)."""
        if self.status == FileStatus.MISSING:
            return FILE_MISSING_MESSAGE.format(
                artefact=artefact, artefact_id=artefact.pk, storage_name=self.storage_name
            )
        if self.status == FileStatus.CORRUPTED:
            return FILE_CORRUPTED_MESSAGE.format(
                artefact=artefact,
                artefact_id=artefact.pk,
                expected_hash=self.expected_hash or "(none recorded)",
                expected_size=self.expected_size,
                actual_hash=self.actual_hash,
                actual_size=self.actual_size,
            )
        return ""

    def as_metadata(self) -> dict:
        """Return the check as JSON-ready audit metadata."""
        return {
            "integrity_check": str(self.status),
            "storage_name": self.storage_name,
            "expected_hash": self.expected_hash,
            "actual_hash": self.actual_hash,
            "expected_size": self.expected_size,
            "actual_size": self.actual_size,
        }


class ArtefactFileUnavailable(Conflict):
    """The artefact's bytes are missing or differ from its record; they are never served."""

    code = "artefact_file_unavailable"

    def __init__(self, *, artefact, check: FileCheck):
        self.artefact = artefact
        self.check = check
        super().__init__(check.message(artefact))


def _open_and_check(artefact) -> tuple[FileCheck, File | None]:
    """Open the artefact's bytes and re-hash them; return the check and the open file.

    The file is returned only when the check passed, rewound to its start.
    """
    name = artefact.file.name or ""
    missing = FileCheck(
        status=FileStatus.MISSING,
        storage_name=name,
        expected_hash=artefact.content_hash,
        expected_size=artefact.file_size,
    )
    if not name:
        return missing, None
    try:
        handle = artefact.file.storage.open(name, "rb")
    except FileNotFoundError:
        return missing, None
    try:
        actual_hash, actual_size = _digest_of(handle)
        intact = actual_hash == artefact.content_hash and actual_size == artefact.file_size
        check = FileCheck(
            status=FileStatus.OK if intact else FileStatus.CORRUPTED,
            storage_name=name,
            expected_hash=artefact.content_hash,
            expected_size=artefact.file_size,
            actual_hash=actual_hash,
            actual_size=actual_size,
        )
        if not intact:
            handle.close()
            return check, None
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return check, handle


def verify_artefact_file(artefact) -> FileCheck:
    """Re-hash an artefact's stored bytes, in chunks, and return how they compare."""
    check, handle = _open_and_check(artefact)
    if handle is not None:
        handle.close()
    return check


def open_verified(artefact) -> File:
    """Return the artefact's stored file, open and rewound, after checking its bytes.

    Raises ArtefactFileUnavailable (a Conflict: 409) when the file is missing or its
    bytes differ from the record; the caller records it with `record_file_problem`.
    The caller closes the file (FileResponse does).

    Check, then serve: hashing while streaming would find a mismatch only after the
    bytes were sent, and sent bytes cannot be taken back. The window between check
    and serve is closed as far as storage allows by serving the very handle that was
    hashed: on local disk a file replaced or deleted after the check is still read
    from the checked inode (only an in-place write to it could slip through); from
    S3, django-storages reads the object into a local temporary file, so the bytes
    served are the bytes hashed.
    """
    check, handle = _open_and_check(artefact)
    if handle is None:
        raise ArtefactFileUnavailable(artefact=artefact, check=check)
    return handle


def record_file_problem(*, artefact, check: FileCheck, source: str, user=None):
    """Write the critical audit event for a missing or corrupted artefact file.

    The action is artefact_access: the event is a failed read of the artefact's bytes,
    whether by a download or by `verify_artefacts` (named in `source`).
    """
    return audit_record(
        action=AuditAction.ARTEFACT_ACCESS,
        severity=Severity.CRITICAL,
        resource=artefact,
        user=user,
        description=check.message(artefact),
        metadata={
            **check.as_metadata(),
            "source": source,
            "artefact_name": artefact.name,
            "artefact_version": artefact.version,
        },
    )
