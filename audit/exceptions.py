"""Errors of the audit trail: refusals that protect the AuditLog and the change history."""

from records.exceptions import Conflict, NotAllowed


class AuditLogImmutable(NotAllowed):
    """A change to or removal of an AuditLog entry: the log is append-only."""

    code = "audit_log_immutable"


class UserDeletionRefused(Conflict):
    """Deleting a user who appears in the audit trail; deactivate them instead."""

    code = "user_deletion_refused"
