"""Every write to artefacts, and the one way to read their bytes.

Writes: upload, new version, edit, review submission, archive, delete, and the data
reliance register (`reliance_record`, `reliance_update`). Reads of the bytes
(downloads, previews) go through `artefact_open_for_download`.

The bytes of an artefact never change once stored: a change is a new version
(version + 1, previous_version set, the older one superseded). `artefacts.files`
stores them (streamed, hashed, checked against the type's allow-list) and checks
them before they are served. Review decisions (approve / reject / back to review)
are made by the approval services, never here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.db import transaction

from audit.choices import AuditAction
from audit.services import audit_record
from engagements.models import Engagement
from engagements.selectors import (
    engagement_can_view,
    engagement_require_member,
    engagement_require_open,
)
from records.exceptions import Conflict, InvalidInput, NotAllowed
from records.formatting import status_label
from records.services import (
    apply_changes,
    changes,
    create_and_record,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    soft_delete_and_record,
    validate,
)
from records.transactions import audited_transaction

from .choices import ArtefactStatus, ArtefactType
from .files import (
    ArtefactFileUnavailable,
    StoredFile,
    discard_stored_file,
    open_verified,
    original_file_name,
    record_file_problem,
    store_artefact_file,
)
from .hooks import artefact_change_guards, validation_run_problem
from .models import Artefact, DataReliance
from .selectors import is_input_data

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
    from django.db import models

logger = logging.getLogger(__name__)

# Descriptive fields a plain edit may change while the artefact is a draft.
EDITABLE_FIELDS = frozenset({"name", "description", "artefact_type", "metadata"})
# Fields filled from the stored bytes (artefacts.files), never by the caller.
FILE_FIELDS = (
    "file",
    "file_name",
    "mime_type",
    "file_size",
    "content_hash",
    "storage_path",
    "storage_bucket",
)
NEW_ARTEFACTS = "artefacts"
NEW_REVIEWS = "reviews"
# Why an artefact's bytes were read, as artefact_access events record it.
ACCESS_DOWNLOAD = "download"
ACCESS_PREVIEW = "preview"

ARTEFACT_RUN_ELSEWHERE = (
    "Workflow run “{run}” belongs to another engagement than “{engagement}”: "
    "an artefact can only come from a run of its own engagement."
)
ARTEFACT_SAME_BYTES = (
    "The uploaded file is identical to artefact “{artefact}” (same SHA-256): "
    "a new version needs changed content."
)
ARTEFACT_NOT_EDITABLE = (
    "Cannot edit artefact “{artefact}”: it is {status} (only drafts may be edited; "
    "upload a new version instead)."
)
NOT_EDITABLE_REASON = "they come from its file or its review"
ARTEFACT_APPROVED_NOT_DELETABLE = (
    "Cannot delete artefact “{artefact}”: it is approved (signed-off work is kept; "
    "archive it instead)."
)
ARTEFACT_DOWNLOAD_NOT_ALLOWED = (
    "{user} may not download artefact “{artefact}”: they cannot see engagement “{engagement}”."
)
ARTEFACT_GONE = "Artefact “{artefact}” no longer exists (it was deleted); it cannot be served."
NEW_RELIANCES = "data reliance entries"
# Fields of a data reliance entry its update may change (the artefact is fixed).
RELIANCE_FIELDS = frozenset(
    {
        "provider_type",
        "provider_name",
        "data_as_of",
        "checks_performed",
        "validation_run",
        "known_limitations",
        "reviewed",
        "not_reviewed_reason",
    }
)
RELIANCE_FIXED_REASON = "an entry belongs to one input artefact"
RELIANCE_NOT_INPUT_DATA = (
    "Artefact “{artefact}” is not input data of engagement “{engagement}” (only uploaded "
    "data files, triangles, CSV, Excel and Parquet files in use, and the inputs of its "
    "workflow runs, are): the data reliance register does not cover it."
)
RELIANCE_EXISTS = (
    "Artefact “{artefact}” already has a data reliance entry: update that entry instead."
)
RELIANCE_REASON_REQUIRED = (
    "Say why the data of “{artefact}” was not reviewed: relying on unreviewed data needs "
    "a reason on record."
)
ARTEFACT_FILE_REFUSED = (
    "{problem} The incident was recorded; run verify_artefacts and restore the file "
    "from backup, or upload the content again as a new version."
)


def artefact_create(
    *,
    engagement: Engagement,
    upload: File,
    actor: AbstractUser,
    name: str = "",
    artefact_type: str = ArtefactType.OTHER,
    description: str = "",
    workflow_run: models.Model | None = None,
    metadata: dict | None = None,
    mime_type: str = "",
    trace_id: str | None = None,
    max_size: int | None = None,
) -> Artefact:
    """Store an uploaded file as version 1 of a new draft artefact, with its SHA-256 and size.

    The hash, size and MIME type come from the bytes (`artefacts.files`), which must
    be a format the artefact type allows; `mime_type` is ignored (kept so existing
    callers still work). `max_size` overrides ARTEFACT_MAX_UPLOAD_SIZE. A refused or
    failed upload leaves no row and no newly stored file (see `_stored_upload`).
    """
    with _stored_upload() as uploads, audited_transaction():
        engagement = lock(engagement)
        engagement_require_member(engagement=engagement, user=actor, verb="upload artefacts to")
        engagement_require_open(engagement=engagement, what=NEW_ARTEFACTS)
        if workflow_run is not None and workflow_run.engagement_id != engagement.pk:
            raise InvalidInput(
                ARTEFACT_RUN_ELSEWHERE.format(run=workflow_run, engagement=engagement)
            )
        artefact = Artefact(
            engagement=engagement,
            workflow_run=workflow_run,
            artefact_type=artefact_type,
            name=name,
            description=description,
            metadata=metadata or {},
            trace_id=trace_id,
        )
        return _save_new(artefact, upload=upload, actor=actor, uploads=uploads, max_size=max_size)


def artefact_new_version(
    *,
    artefact: Artefact,
    upload: File,
    actor: AbstractUser,
    name: str | None = None,
    description: str | None = None,
    metadata: dict | None = None,
    mime_type: str = "",
    trace_id: str | None = None,
    max_size: int | None = None,
) -> Artefact:
    """Store changed bytes as the next version of an artefact; the older one becomes superseded.

    The bytes are checked against the allow-list of the artefact's type, like an
    upload (`mime_type` is ignored); identical bytes are refused. A refused or
    failed upload leaves both versions as they were and no newly stored file.
    """
    with _stored_upload() as uploads, audited_transaction():
        engagement = lock(artefact.engagement)
        previous = lock(artefact)
        engagement_require_member(engagement=engagement, user=actor, verb="upload artefacts to")
        engagement_require_open(engagement=engagement, what=NEW_ARTEFACTS)
        previous.check_move("supersede")
        _require_changeable(previous, verb="replace")
        artefact = Artefact(
            engagement=engagement,
            workflow_run_id=previous.workflow_run_id,
            artefact_type=previous.artefact_type,
            name=previous.name if name is None else name,
            description=previous.description if description is None else description,
            metadata=dict(previous.metadata) if metadata is None else metadata,
            version=previous.version + 1,
            previous_version=previous,
            trace_id=trace_id,
        )
        move_and_record(previous, "supersede", actor=actor, action=None)
        return _save_new(
            artefact,
            upload=upload,
            actor=actor,
            uploads=uploads,
            max_size=max_size,
            replaces=previous,
        )


@audited_transaction
def artefact_update(*, artefact: Artefact, actor: AbstractUser, data: dict[str, Any]) -> Artefact:
    """Change a draft artefact's name, description, type or metadata (never its bytes)."""
    artefact = lock(artefact)
    engagement_require_member(engagement=artefact.engagement, user=actor, verb="edit artefacts of")
    if artefact.status != ArtefactStatus.DRAFT:
        raise Conflict(
            ARTEFACT_NOT_EDITABLE.format(artefact=artefact, status=status_label(artefact))
        )
    before = snapshot(artefact)
    apply_changes(artefact, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    old, new = changes(before, snapshot(artefact))
    if new:
        validate(artefact)
        save_edit_and_record(
            artefact, actor=actor, action=AuditAction.ARTEFACT_UPDATE, old=old, new=new
        )
    return artefact


@audited_transaction
def artefact_submit_for_review(*, artefact: Artefact, actor: AbstractUser) -> Artefact:
    """Send a draft artefact for review: draft → pending_review."""
    artefact = lock(artefact)
    engagement_require_member(
        engagement=artefact.engagement, user=actor, verb="submit artefacts of"
    )
    artefact.check_move("submit_for_review")
    engagement_require_open(engagement=artefact.engagement, what=NEW_REVIEWS)
    return move_and_record(
        artefact, "submit_for_review", actor=actor, action=AuditAction.ARTEFACT_UPDATE
    )


@audited_transaction
def artefact_archive(*, artefact: Artefact, actor: AbstractUser) -> Artefact:
    """Archive an artefact that no review is waiting on."""
    artefact = lock(artefact)
    engagement_require_member(
        engagement=artefact.engagement, user=actor, verb="archive artefacts of"
    )
    artefact.check_move("archive")
    _require_changeable(artefact, verb="archive")
    return move_and_record(artefact, "archive", actor=actor, action=AuditAction.ARTEFACT_UPDATE)


@audited_transaction
def artefact_delete(*, artefact: Artefact, actor: AbstractUser) -> Artefact:
    """Soft-delete an artefact that is neither approved nor under a pending approval."""
    artefact = lock(artefact)
    engagement_require_member(
        engagement=artefact.engagement, user=actor, verb="delete artefacts of"
    )
    if artefact.status == ArtefactStatus.APPROVED:
        raise Conflict(ARTEFACT_APPROVED_NOT_DELETABLE.format(artefact=artefact))
    _require_changeable(artefact, verb="delete")
    return soft_delete_and_record(
        artefact,
        actor=actor,
        action=AuditAction.ARTEFACT_DELETE,
        description=f"Artefact deleted: {artefact}",
    )


def artefact_open_for_download(
    *, artefact: Artefact, actor: AbstractUser, purpose: str = ACCESS_DOWNLOAD
) -> File:
    """Return the artefact's file, open and rewound, once its bytes match the stored hash.

    Refuses (NotAllowed) a user who cannot see the artefact's engagement. Records
    every read as an artefact_access event (`purpose`: download, or preview for the
    admin's CSV/image previews). Missing or changed bytes are never returned: a
    critical artefact_access event is written and ArtefactFileUnavailable (a
    Conflict, 409) raised. The caller closes the file (FileResponse does).

    Not atomic on purpose: each audit event commits on its own, so the critical one
    survives the exception. A caller must not wrap this in a transaction it rolls back.
    """
    try:
        # Check the committed record, not what a caller's instance may hold in memory.
        artefact = Artefact.objects.select_related("engagement").get(pk=artefact.pk)
    except Artefact.DoesNotExist:
        raise Conflict(ARTEFACT_GONE.format(artefact=artefact)) from None
    if not engagement_can_view(engagement=artefact.engagement, user=actor):
        raise NotAllowed(
            ARTEFACT_DOWNLOAD_NOT_ALLOWED.format(
                user=actor, artefact=artefact, engagement=artefact.engagement
            )
        )
    try:
        handle = open_verified(artefact)
    except ArtefactFileUnavailable as refusal:
        record_file_problem(artefact=artefact, check=refusal.check, source=purpose, user=actor)
        raise ArtefactFileUnavailable(artefact=artefact, check=refusal.check) from None
    try:
        audit_record(
            action=AuditAction.ARTEFACT_ACCESS,
            resource=artefact,
            user=actor,
            description=f"Artefact file read ({purpose}): {artefact}",
            metadata={
                "purpose": purpose,
                "content_hash": artefact.content_hash,
                "file_name": artefact.file_name,
                "file_size": artefact.file_size,
                "version": artefact.version,
            },
        )
    except BaseException:
        handle.close()
        raise
    return handle


@audited_transaction
def reliance_record(
    *,
    artefact: Artefact,
    actor: AbstractUser,
    provider_type: str,
    provider_name: str,
    data_as_of,
    checks_performed: str = "",
    validation_run: models.Model | None = None,
    known_limitations: str = "",
    reviewed: bool = False,
    not_reviewed_reason: str = "",
    trace_id: str | None = None,
) -> DataReliance:
    """Record the data reliance register's entry for one input artefact (ASOP 23).

    Refused for an artefact that is not input data of its engagement
    (`artefacts.selectors`), for one that has an entry already, for unreviewed data
    without a reason, and for a supporting run that is not a completed data_validation
    run of this very artefact.
    """
    engagement = lock(artefact.engagement)
    artefact = lock(artefact)
    engagement_require_member(engagement=engagement, user=actor, verb="record data reliances of")
    engagement_require_open(engagement=engagement, what=NEW_RELIANCES)
    if not is_input_data(artefact):
        raise InvalidInput(
            RELIANCE_NOT_INPUT_DATA.format(artefact=artefact, engagement=engagement),
            field="artefact",
        )
    if DataReliance.objects.filter(artefact=artefact).exists():
        raise Conflict(RELIANCE_EXISTS.format(artefact=artefact))
    reliance = DataReliance(
        engagement=engagement,
        artefact=artefact,
        provider_type=provider_type,
        provider_name=provider_name,
        data_as_of=data_as_of,
        checks_performed=checks_performed,
        validation_run=validation_run,
        known_limitations=known_limitations,
        reviewed=reviewed,
        not_reviewed_reason=(not_reviewed_reason or "").strip(),
        trace_id=trace_id,
    )
    _check_reliance(reliance)
    create_and_record(
        reliance,
        actor=actor,
        action=AuditAction.DATA_RELIANCE_RECORD,
        reason="Recorded",
        description=f"Data reliance recorded: {reliance}",
    )
    return reliance


@audited_transaction
def reliance_update(
    *, reliance: DataReliance, actor: AbstractUser, data: dict[str, Any]
) -> DataReliance:
    """Change a data reliance entry (provider, date, checks, limitations, review)."""
    reliance = lock(reliance)
    engagement_require_member(
        engagement=reliance.engagement, user=actor, verb="edit data reliances of"
    )
    engagement_require_open(engagement=reliance.engagement, what=NEW_RELIANCES)
    before = snapshot(reliance)
    apply_changes(reliance, data=data, allowed=RELIANCE_FIELDS, reason=RELIANCE_FIXED_REASON)
    reliance.not_reviewed_reason = (reliance.not_reviewed_reason or "").strip()
    old, new = changes(before, snapshot(reliance))
    if not new:
        return reliance
    _check_reliance(reliance)
    save_edit_and_record(
        reliance, actor=actor, action=AuditAction.DATA_RELIANCE_UPDATE, old=old, new=new
    )
    return reliance


def _check_reliance(reliance: DataReliance) -> None:
    """Refuse unreviewed data without a reason and a supporting run that validated other data."""
    artefact = reliance.artefact
    if not reliance.reviewed and not reliance.not_reviewed_reason:
        raise InvalidInput(
            RELIANCE_REASON_REQUIRED.format(artefact=artefact), field="not_reviewed_reason"
        )
    run = reliance.validation_run
    if run is not None:
        # The workflows app says which runs support the checks (the validation_run_problem hook).
        problem = validation_run_problem(run, artefact)
        if problem is not None:
            raise InvalidInput(problem, field="validation_run")
    validate(reliance)


def _save_new(
    artefact: Artefact,
    *,
    upload: File,
    actor: AbstractUser,
    uploads: list[StoredFile],
    max_size: int | None = None,
    replaces: Artefact | None = None,
) -> Artefact:
    """Store the bytes, save the new artefact row and record its creation.

    Runs inside the service's transaction, which holds the engagement's row lock:
    uploads to one engagement (whose files share a folder) take turns, so a
    discard here can never remove bytes a concurrent upload has just reused.
    """
    # Refuse a bad row (type, name, …) before a byte is stored; an empty name is
    # filled from the stored file below.
    artefact.name = artefact.name or original_file_name(getattr(upload, "name", "") or "")
    validate(artefact, exclude=FILE_FIELDS if artefact.name else (*FILE_FIELDS, "name"))
    try:
        stored = store_artefact_file(
            engagement_id=artefact.engagement_id,
            file=upload,
            file_name=getattr(upload, "name", "") or "",
            artefact_type=artefact.artefact_type,
            max_size=max_size,
        )
    except InvalidInput as refusal:
        # Every refusal of the bytes (empty, format, size) is about the uploaded file.
        refusal.field = getattr(refusal, "field", None) or "file"
        raise
    uploads.append(stored)
    try:
        # A savepoint: when a step fails, the new row is gone before the bytes are
        # discarded, so the discard sees no row holding them.
        with transaction.atomic():
            if replaces is not None and stored.content_hash == replaces.content_hash:
                raise Conflict(ARTEFACT_SAME_BYTES.format(artefact=replaces))
            _fill_from_stored(artefact, stored)
            artefact.name = artefact.name or artefact.file_name
            validate(artefact)
            save_with_history(
                artefact,
                actor=actor,
                reason="Uploaded" if replaces is None else f"New version of v{replaces.version}",
                created=True,
            )
            metadata = {} if replaces is None else {"previous_version_id": str(replaces.pk)}
            audit_record(
                action=AuditAction.ARTEFACT_CREATE,
                resource=artefact,
                user=actor,
                description=f"Artefact stored: {artefact}",
                new_value=snapshot(
                    artefact,
                    (
                        "name",
                        "artefact_type",
                        "version",
                        "previous_version",
                        "file_name",
                        "mime_type",
                        "file_size",
                        "content_hash",
                        "workflow_run",
                    ),
                ),
                metadata=metadata,
            )
    except BaseException:
        uploads.remove(stored)
        _discard_quietly(stored)
        raise
    return artefact


def _fill_from_stored(artefact: Artefact, stored: StoredFile) -> None:
    """Copy what the storage found about the bytes to the unsaved artefact."""
    # A name, not a File: the bytes are already stored (and may be shared by other
    # artefacts); assigning a name keeps FileField from saving them a second time.
    artefact.file = stored.name
    artefact.storage_path = stored.name
    artefact.storage_bucket = stored.storage_bucket
    artefact.file_name = stored.file_name
    artefact.mime_type = stored.mime_type
    artefact.file_size = stored.file_size
    artefact.content_hash = stored.content_hash


@contextmanager
def _stored_upload() -> Iterator[list[StoredFile]]:
    """Yield the list of files an upload service stores; discard them if it fails after all.

    `_save_new` discards its file itself when a step inside the transaction fails.
    What reaches this guard is a failure after that: the COMMIT of the service's own
    transaction. Then the rows are gone and the bytes are discarded here.

    What remains possible: when the caller wraps the service in its own transaction
    and rolls that back after the service returned, the bytes stay in storage with
    no row (Django has no rollback hook). Such a file is harmless: it is stored
    under its hash, no artefact points to it and it is never served; an identical
    upload to the same engagement reuses it.
    """
    uploads: list[StoredFile] = []
    try:
        yield uploads
    except BaseException:
        for stored in uploads:
            _discard_quietly(stored)
        raise


def _discard_quietly(stored: StoredFile) -> None:
    """Delete bytes whose row was not saved; log a failure instead of hiding the real error."""
    try:
        discard_stored_file(stored)
    except Exception:
        logger.exception("Could not remove the artefact file %s of a failed upload", stored.name)


def _require_changeable(artefact: Artefact, *, verb: str) -> None:
    """Raise the refusal of any app that holds the artefact as it is (a pending review, …)."""
    for guard in artefact_change_guards:
        guard(artefact=artefact, verb=verb)
