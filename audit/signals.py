"""Signal receivers of the audit trail: login events, and users who must not be deleted.

Connected in `AuditConfig.ready()`. They only record and refuse; no business
rules live here.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import pre_delete

from records.middleware import client_ip

from .choices import AuditAction, Severity
from .exceptions import UserDeletionRefused
from .selectors import user_has_audit_trail
from .services import audit_record

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


def record_login_failure(sender, credentials, request=None, **kwargs):
    """Record a failed login with the username tried (Django already masked the password)."""
    username_field = get_user_model().USERNAME_FIELD
    username = str(credentials.get(username_field) or credentials.get("username") or "")[:150]
    audit_record(
        action=AuditAction.LOGIN,
        severity=Severity.WARNING,
        resource_type="user",
        description=f"Failed login for {username or 'an unnamed user'}",
        user=None,
        metadata={"outcome": "failed", "username": username},
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
    user_login_failed.connect(record_login_failure, dispatch_uid="audit.record_login_failure")
    pre_delete.connect(
        refuse_user_deletion, sender=get_user_model(), dispatch_uid="audit.refuse_user_deletion"
    )
