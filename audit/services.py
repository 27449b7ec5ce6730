"""The one way to write audit events, and the user deactivation that replaces deletion."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model

from records.exceptions import Conflict
from records.middleware import get_request_context
from records.transactions import audited_transaction, queue_entry

from .choices import AuditAction, Severity
from .models import AuditLog

USER_ALREADY_INACTIVE = "Cannot deactivate user “{user}”: they are already inactive."


def audit_record(
    *,
    action: str,
    resource=None,
    resource_type: str | None = None,
    resource_id: uuid.UUID | None = None,
    description: str = "",
    user=None,
    engagement_id: uuid.UUID | None = None,
    severity: str = Severity.INFO,
    old_value: dict | None = None,
    new_value: dict | None = None,
    metadata: dict | None = None,
    session_id: uuid.UUID | None = None,
    trace_id: str | None = None,
    ip_address: str | None = None,
    user_agent: str | None = None,
) -> AuditLog:
    """Append one business event to the AuditLog (the hash chain) and return it.

    `resource` (a model instance) fills resource type and id, and the engagement
    when the resource belongs to one. User, IP address, user agent, chat session
    and trace id come from the request context unless given.

    Inside an audited transaction (`records.transactions.audited_transaction`, which
    every service runs in) the entry is queued and appended, with the chain head
    locked, when the outermost one ends: the head is the last lock a transaction
    takes. Outside one, it is appended at once, in a transaction of its own.
    """
    context = get_request_context()
    if resource is not None:
        resource_type = resource_type or resource._meta.model_name
        resource_id = resource_id or resource.pk
        if engagement_id is None:
            engagement_id = _engagement_id_of(resource)
    if user is None:
        user = context.user
    entry = AuditLog(
        action=action,
        severity=severity,
        resource_type=resource_type or "",
        resource_id=resource_id,
        description=description,
        user=user if user is not None and user.is_authenticated else None,
        engagement_id=engagement_id,
        old_value=old_value,
        new_value=new_value,
        metadata=metadata or {},
        ip_address=ip_address if ip_address is not None else context.ip_address,
        user_agent=(user_agent if user_agent is not None else context.user_agent or "")[:500],
        session_id=session_id or context.session_id,
        trace_id=trace_id or context.trace_id,
    )
    queue_entry(entry)
    return entry


def _engagement_id_of(resource) -> uuid.UUID | None:
    """Return the engagement a resource belongs to (itself, if it is an engagement)."""
    if resource._meta.label_lower == "engagements.engagement":
        return resource.pk
    return getattr(resource, "engagement_id", None)


def user_deactivate(*, user, actor) -> object:
    """Deactivate `user` (they can no longer log in) and record who did it.

    Users who appear in the audit trail are never deleted: this is what replaces
    deletion, so their name stays on everything they did.
    """
    with audited_transaction():
        user = get_user_model().objects.select_for_update(no_key=True).get(pk=user.pk)
        if not user.is_active:
            raise Conflict(USER_ALREADY_INACTIVE.format(user=user.get_username()))
        user.is_active = False
        user.save(update_fields=["is_active"])
        audit_record(
            action=AuditAction.PERMISSION_CHANGE,
            resource_type="user",
            description=f"User {user.get_username()} deactivated",
            user=actor,
            old_value={"is_active": True},
            new_value={"is_active": False},
            metadata={"username": user.get_username(), "user_id": user.pk},
        )
    return user
