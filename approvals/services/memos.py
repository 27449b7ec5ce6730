"""The review memo: an approval's resolved review points, stored as Markdown and Word artefacts."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile

from artefacts.choices import ArtefactStatus, ArtefactType
from artefacts.models import Artefact
from artefacts.services import artefact_create, artefact_new_version
from audit.choices import AuditAction
from audit.services import audit_record
from engagements.selectors import engagement_require_member, engagement_require_open
from records.exceptions import InvalidInput
from records.services import (
    lock,
)
from records.transactions import audited_transaction

from ..choices import (
    MemoFormat,
    ReviewPointStatus,
)
from ..memo import review_memo_docx, review_memo_markdown
from ..models import Approval

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser
from ..errors import MEMO_FORMAT_INVALID
from .approvals import _engagement_of

NEW_MEMOS = "review memos"

MEMO_METADATA_KEY = "review_memo_of"


@audited_transaction
def review_memo_export(
    *, approval: Approval, actor: AbstractUser, format: str = MemoFormat.BOTH
) -> list[Artefact]:
    """Store the approval's resolved review points as a review memo; return its artefact(s).

    `format`: markdown, docx or both. Each memo is an artefact of the engagement
    (markdown or word type) marked with the approval's id; exporting again after the
    points changed stores a new version of it, and an unchanged memo is returned as
    it is. Any working member of the team may export; a data_export event records it.
    """
    if format not in MemoFormat.values:
        raise InvalidInput(
            MEMO_FORMAT_INVALID.format(formats=", ".join(MemoFormat.values), value=format),
            field="format",
        )
    engagement = lock(_engagement_of(approval))
    approval = Approval.objects.get(pk=approval.pk)
    engagement_require_member(engagement=engagement, user=actor, verb="export review memos of")
    engagement_require_open(engagement=engagement, what=NEW_MEMOS)
    points = list(
        approval.review_points.filter(status=ReviewPointStatus.RESOLVED)
        .select_related("raised_by", "responded_by", "resolved_by", "artefact", "workflow_run")
        .order_by("created_at")
    )
    unresolved = approval.review_points.exclude(status=ReviewPointStatus.RESOLVED).count()
    renderings = {
        MemoFormat.MARKDOWN: (
            lambda: review_memo_markdown(approval, points, unresolved=unresolved).encode("utf-8"),
            ArtefactType.MARKDOWN,
            "review_memo.md",
        ),
        MemoFormat.DOCX: (
            lambda: review_memo_docx(approval, points, unresolved=unresolved),
            ArtefactType.WORD,
            "review_memo.docx",
        ),
    }
    wanted = list(renderings) if format == MemoFormat.BOTH else [MemoFormat(format)]
    artefacts = []
    for memo_format in wanted:
        render, artefact_type, file_name = renderings[memo_format]
        artefacts.append(
            _store_memo(
                approval,
                content=render(),
                memo_format=memo_format,
                artefact_type=artefact_type,
                file_name=file_name,
                actor=actor,
            )
        )
    audit_record(
        action=AuditAction.DATA_EXPORT,
        resource=approval,
        user=actor,
        description=f"Review memo exported: {approval}",
        metadata={
            "review_memo": [
                {"artefact_id": str(a.pk), "version": a.version, "content_hash": a.content_hash}
                for a in artefacts
            ],
            "resolved_points": len(points),
            "unresolved_points": unresolved,
        },
    )
    return artefacts


def _store_memo(
    approval: Approval,
    *,
    content: bytes,
    memo_format: str,
    artefact_type: str,
    file_name: str,
    actor: AbstractUser,
) -> Artefact:
    """Store one rendering of the memo: new, a new version, or the unchanged one as it is."""
    current = (
        Artefact.objects.filter(
            engagement_id=approval.engagement_id,
            **{
                f"metadata__{MEMO_METADATA_KEY}": str(approval.pk),
                "metadata__memo_format": memo_format,
            },
        )
        .exclude(status__in=(ArtefactStatus.SUPERSEDED, ArtefactStatus.ARCHIVED))
        .order_by("-version")
        .first()
    )
    if current is not None and current.content_hash == hashlib.sha256(content).hexdigest():
        return current
    upload = ContentFile(content, name=file_name)
    if current is not None:
        return artefact_new_version(artefact=current, upload=upload, actor=actor)
    return artefact_create(
        engagement=approval.engagement,
        upload=upload,
        actor=actor,
        name=f"Review memo: {approval}"[:255],
        artefact_type=artefact_type,
        description="The resolved review points of the approval, with their answers.",
        metadata={MEMO_METADATA_KEY: str(approval.pk), "memo_format": memo_format},
    )
