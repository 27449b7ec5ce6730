"""The one way to write audit events."""

from __future__ import annotations

import uuid

from config.middleware import get_request_context

from .choices import Severity
from .models import AuditLog


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
) -> AuditLog:
    """Append one business event to the AuditLog and return it.

    `resource` (a model instance) fills resource type and id, and the engagement
    when the resource belongs to one. User, IP address, user agent, chat session
    and trace id come from the request context unless given.
    """
    context = get_request_context()
    if resource is not None:
        resource_type = resource_type or resource._meta.model_name
        resource_id = resource_id or resource.pk
        if engagement_id is None:
            engagement_id = _engagement_id_of(resource)
    if user is None:
        user = context.user
    return AuditLog.objects.create(
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
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        session_id=session_id or context.session_id,
        trace_id=trace_id or context.trace_id,
    )


def _engagement_id_of(resource) -> uuid.UUID | None:
    """Return the engagement a resource belongs to (itself, if it is an engagement)."""
    if resource._meta.label_lower == "engagements.engagement":
        return resource.pk
    return getattr(resource, "engagement_id", None)
