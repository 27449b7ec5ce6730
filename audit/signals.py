"""Signal receivers of the audit trail: login events, and users who must not be deleted.

Connected in `AuditConfig.ready()`. They only record and refuse; no business
rules live here.
"""

import datetime

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import pre_delete
from django.utils import timezone

from records.middleware import client_ip

from .choices import AuditAction, Severity
from .exceptions import UserDeletionRefused
from .models import AuditLog
from .selectors import user_has_audit_trail
from .services import audit_record

LOCKED_OUT_DESCRIPTION = "Logins locked out after repeated failures: {who} from {address}"
USER_DELETION_REFUSED = (
    "Cannot delete user “{user}”: they appear in the audit trail (audit log or change "
    "history). Deactivate the user instead."
)


def _client(request) -> dict:
    """Return the IP address and user agent of the request behind a signal, if any."""
    if request is None or not hasattr(request, "META"):
        return {}
    return {
        "ip_address": client_ip(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:500],
    }


def record_login(sender, request, user, **kwargs):
    """Record a successful login."""
    audit_record(
        action=AuditAction.LOGIN,
        resource_type="user",
        description=f"{user.get_username()} logged in",
        user=user,
        metadata={"outcome": "succeeded", "username": user.get_username()},
        **_client(request),
    )


def record_logout(sender, request, user, **kwargs):
    """Record a logout (nothing to record when nobody was logged in)."""
    if user is None or not user.is_authenticated:
        return
    audit_record(
        action=AuditAction.LOGOUT,
        resource_type="user",
        description=f"{user.get_username()} logged out",
        user=user,
        metadata={"username": user.get_username()},
        **_client(request),
    )


def record_lockout(sender, request=None, username=None, ip_address=None, **kwargs):
    """Record that logins were locked out for repeated failures: once per lock-out window.

    Single failed logins are counted by django-axes, not written to the append-only
    log (an anonymous client could otherwise grow it without limit); the lock-out,
    which axes signals on every refused attempt, is recorded the first time only.
    """
    since = timezone.now() - (get_cool_off(request) or datetime.timedelta(hours=1))
    name = str(username or "")[:150]
    address = ip_address or None
    already = AuditLog.objects.filter(
        action=AuditAction.LOGIN,
        created_at__gte=since,
        ip_address=address,
        metadata__outcome="locked_out",
        metadata__username=name,
    ).exists()
    if already:
        return
    audit_record(
        action=AuditAction.LOGIN,
        severity=Severity.WARNING,
        resource_type="user",
        description=LOCKED_OUT_DESCRIPTION.format(
            who=f"account {name}" if name else "an unnamed account", address=address or "?"
        ),
        user=None,
        metadata={"outcome": "locked_out", "username": name},
        **_client(request),
    )


def refuse_user_deletion(sender, instance, **kwargs):
    """Refuse to delete a user who appears in the audit trail."""
    if user_has_audit_trail(instance):
        raise UserDeletionRefused(USER_DELETION_REFUSED.format(user=instance.get_username()))


def connect_receivers() -> None:
    """Connect the receivers (called once, from AuditConfig.ready())."""
    user_logged_in.connect(record_login, dispatch_uid="audit.record_login")
    user_logged_out.connect(record_logout, dispatch_uid="audit.record_logout")
    user_locked_out.connect(record_lockout, dispatch_uid="audit.record_lockout")
    pre_delete.connect(
        refuse_user_deletion, sender=get_user_model(), dispatch_uid="audit.refuse_user_deletion"
    )
