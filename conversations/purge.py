"""The purge rule of soft-deleted chat sessions (`audit.purge`, registered in ready())."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.choices import AuditAction
from engagements.purge import closed_engagement_reason
from records.services import snapshot

from .models import Session

# After the runs that may name it, before the engagement it belongs to (see approvals.purge).
SESSION_STAGE = 30

if TYPE_CHECKING:
    from audit.purge import PurgeRun


def session_kept(session: Session, run: PurgeRun) -> str:
    """Return why a deleted chat session stays: it is about a closed engagement."""
    if session.engagement is not None:
        return closed_engagement_reason(session.engagement)
    return ""


def session_purge(session: Session, run: PurgeRun) -> None:
    """Delete the session with its messages and record it."""
    run.count_inside(session.messages.count())
    if run.dry_run:
        return
    before, pk = snapshot(session), session.pk
    session.delete()
    run.record(
        AuditAction.SESSION_DELETE,
        session,
        pk,
        f"Chat session purged: {session}",
        before,
        engagement_id=session.engagement_id,
    )
