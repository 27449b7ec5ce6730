"""Every write to artefacts: upload, new version, edit, review submission, archive, delete.

The bytes of an artefact never change once stored: a change is a new version
(version + 1, previous_version set, the older one superseded). Review decisions
(approve / reject / back to review) are made by the approval services, never here.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from typing import TYPE_CHECKING, Any

from django.core.files import File
from django.db import transaction

from approvals.choices import ApprovalStatus
from audit.choices import AuditAction
from audit.services import audit_record
from config.exceptions import Conflict, InvalidInput
from config.services import (
    apply_changes,
    changes,
    lock,
    move_and_record,
    save_edit_and_record,
    save_with_history,
    snapshot,
    soft_delete_and_record,
    validate,
)
from engagements.models import Engagement
from engagements.selectors import engagement_require_member, engagement_require_open
from workflows.models import WorkflowRun

from .choices import ArtefactStatus, ArtefactType
from .models import Artefact

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

# Descriptive fields a plain edit may change while the artefact is a draft.
EDITABLE_FIELDS = frozenset({"name", "description", "artefact_type", "metadata"})
NEW_ARTEFACTS = "artefacts"
NEW_REVIEWS = "reviews"
DEFAULT_MIME_TYPE = "application/octet-stream"

ARTEFACT_FILE_EMPTY = "The uploaded file “{name}” is empty: an artefact needs content."
ARTEFACT_RUN_ELSEWHERE = (
    "Workflow run “{run}” belongs to another engagement than “{engagement}”: "
    "an artefact can only come from a run of its own engagement."
)
ARTEFACT_SAME_BYTES = (
    "The uploaded file is identical to artefact “{artefact}” (same SHA-256): "
    "a new version needs changed content."
)
ARTEFACT_HAS_PENDING_APPROVAL = (
    "Cannot {verb} artefact “{artefact}”: its approval “{approval}” is still pending; "
    "have it decided first."
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


@transaction.atomic
def artefact_create(
    *,
    engagement: Engagement,
    upload: File,
    actor: AbstractUser,
    name: str = "",
    artefact_type: str = ArtefactType.OTHER,
    description: str = "",
    workflow_run: WorkflowRun | None = None,
    metadata: dict | None = None,
    mime_type: str = "",
    trace_id: str | None = None,
) -> Artefact:
    """Store an uploaded file as version 1 of a new draft artefact, with its SHA-256 and size."""
    engagement = lock(engagement)
    engagement_require_member(engagement=engagement, user=actor, verb="upload artefacts to")
    engagement_require_open(engagement=engagement, what=NEW_ARTEFACTS)
    if workflow_run is not None and workflow_run.engagement_id != engagement.pk:
        raise InvalidInput(ARTEFACT_RUN_ELSEWHERE.format(run=workflow_run, engagement=engagement))
    artefact = Artefact(
        engagement=engagement,
        workflow_run=workflow_run,
        artefact_type=artefact_type,
        name=name,
        description=description,
        metadata=metadata or {},
        trace_id=trace_id,
    )
    return _save_new(artefact, upload=upload, mime_type=mime_type, actor=actor)


@transaction.atomic
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
) -> Artefact:
    """Store changed bytes as the next version of an artefact; the older one becomes superseded."""
    engagement = lock(artefact.engagement)
    previous = lock(artefact)
    engagement_require_member(engagement=engagement, user=actor, verb="upload artefacts to")
    engagement_require_open(engagement=engagement, what=NEW_ARTEFACTS)
    previous.check_move("supersede")
    _require_no_pending_approval(previous, verb="replace")
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
    return _save_new(artefact, upload=upload, mime_type=mime_type, actor=actor, replaces=previous)


@transaction.atomic
def artefact_update(*, artefact: Artefact, actor: AbstractUser, data: dict[str, Any]) -> Artefact:
    """Change a draft artefact's name, description, type or metadata (never its bytes)."""
    artefact = lock(artefact)
    engagement_require_member(engagement=artefact.engagement, user=actor, verb="edit artefacts of")
    if artefact.status != ArtefactStatus.DRAFT:
        raise Conflict(ARTEFACT_NOT_EDITABLE.format(artefact=artefact, status=artefact.status))
    before = snapshot(artefact)
    apply_changes(artefact, data=data, allowed=EDITABLE_FIELDS, reason=NOT_EDITABLE_REASON)
    old, new = changes(before, snapshot(artefact))
    if new:
        validate(artefact)
        save_edit_and_record(
            artefact, actor=actor, action=AuditAction.ARTEFACT_UPDATE, old=old, new=new
        )
    return artefact


@transaction.atomic
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


@transaction.atomic
def artefact_archive(*, artefact: Artefact, actor: AbstractUser) -> Artefact:
    """Archive an artefact that no review is waiting on."""
    artefact = lock(artefact)
    engagement_require_member(
        engagement=artefact.engagement, user=actor, verb="archive artefacts of"
    )
    artefact.check_move("archive")
    _require_no_pending_approval(artefact, verb="archive")
    return move_and_record(artefact, "archive", actor=actor, action=AuditAction.ARTEFACT_UPDATE)


@transaction.atomic
def artefact_delete(*, artefact: Artefact, actor: AbstractUser) -> Artefact:
    """Soft-delete an artefact that is neither approved nor under a pending approval."""
    artefact = lock(artefact)
    engagement_require_member(
        engagement=artefact.engagement, user=actor, verb="delete artefacts of"
    )
    if artefact.status == ArtefactStatus.APPROVED:
        raise Conflict(ARTEFACT_APPROVED_NOT_DELETABLE.format(artefact=artefact))
    _require_no_pending_approval(artefact, verb="delete")
    return soft_delete_and_record(
        artefact,
        actor=actor,
        action=AuditAction.ARTEFACT_DELETE,
        description=f"Artefact deleted: {artefact}",
    )


def _save_new(
    artefact: Artefact,
    *,
    upload: File,
    mime_type: str,
    actor: AbstractUser,
    replaces: Artefact | None = None,
) -> Artefact:
    """Store the bytes, save the new artefact row and record its creation."""
    _store_upload(artefact, upload, mime_type=mime_type)
    try:
        if replaces is not None and artefact.content_hash == replaces.content_hash:
            raise Conflict(ARTEFACT_SAME_BYTES.format(artefact=replaces))
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
    except Exception:
        # The row was refused: do not leave its bytes behind in storage.
        artefact.file.delete(save=False)
        raise
    return artefact


def _store_upload(artefact: Artefact, upload: File, *, mime_type: str = "") -> None:
    """Hash, measure and store the uploaded bytes on an unsaved artefact.

    The only code that touches artefact bytes; `artefacts/files.py` is to replace
    it with streaming and MIME checks.
    """
    digest = hashlib.sha256()
    size = 0
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    file_name = os.path.basename(upload.name or "") or "upload"
    if size == 0:
        raise InvalidInput(ARTEFACT_FILE_EMPTY.format(name=file_name))
    artefact.content_hash = digest.hexdigest()
    artefact.file_size = size
    artefact.file_name = file_name
    artefact.mime_type = (
        mime_type
        or getattr(upload, "content_type", None)
        or mimetypes.guess_type(file_name)[0]
        or DEFAULT_MIME_TYPE
    )
    # upload_to files the bytes under the engagement and the hash just computed.
    artefact.file.save(file_name, upload, save=False)
    artefact.storage_path = artefact.file.name


def _require_no_pending_approval(artefact: Artefact, *, verb: str) -> None:
    pending = artefact.approvals.filter(status=ApprovalStatus.PENDING).first()
    if pending is not None:
        raise Conflict(
            ARTEFACT_HAS_PENDING_APPROVAL.format(verb=verb, artefact=artefact, approval=pending)
        )
