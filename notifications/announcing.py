"""From the audit trail to notifications: the receiver on AuditLog, and the work it defers.

Every service records an audit event, inside the transaction of the business change,
with `AuditLog.save()`. The receiver below runs on that save and only registers a
callback for when the transaction commits: a change that rolls back tells nobody, and
nothing is sent from a view or in the middle of a service. The callback enqueues the
`announce` task, which reads the committed event and records what
`notifications.recipients` says it warrants.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import router, transaction

from audit.models import AuditLog

from .recipients import announcements_for_audit_event, is_announced

logger = logging.getLogger(__name__)


def audit_event_saved(sender, instance: AuditLog, created: bool, raw: bool = False, **kwargs):
    """On a new audit event, announce it once its transaction commits (if it may matter)."""
    if not created or raw or not is_announced(instance):
        return
    using = kwargs.get("using") or router.db_for_write(AuditLog)
    transaction.on_commit(partial(enqueue_announcement, instance.pk), using=using, robust=True)


def enqueue_announcement(audit_event_id) -> None:
    """Enqueue the announce task; if the queue refuses, announce here rather than lose it."""
    from .tasks import announce

    try:
        announce.enqueue(str(audit_event_id))
    except Exception:
        logger.exception("Could not enqueue the announcement of audit event %s", audit_event_id)
        announce_audit_event(audit_event_id)


def announce_audit_event(audit_event_id) -> dict:
    """Record the notifications and deliveries the audit event warrants; return counts."""
    from .services import announce

    event = AuditLog.objects.select_related("user").filter(pk=audit_event_id).first()
    if event is None:
        return {"audit_event": str(audit_event_id), "outcome": "missing"}
    totals = {"notifications": 0, "emails": 0, "webhooks": 0}
    for announcement in announcements_for_audit_event(event):
        result = announce(announcement)
        totals["notifications"] += result.notifications
        totals["emails"] += result.emails
        totals["webhooks"] += result.webhooks
    return {"audit_event": str(audit_event_id), "outcome": "announced", **totals}
