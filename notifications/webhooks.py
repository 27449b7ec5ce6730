"""Webhooks: what an endpoint may receive, the JSON it receives, the signature, the POST.

An endpoint's payloads hold only what its owner could see through the REST API: an
event of an engagement reaches it only if the owner may see that engagement (its team,
or the global view, or a superuser) and holds the view permission of the record it is
about; an event outside any engagement (a critical one) only if the owner may see
every engagement or did it themselves, as the audit log API scopes events.

Every delivery is a POST of JSON (UTF-8) with these headers:

- `X-AI-Actuary-Event`: the event (`approval_decided`, …);
- `X-AI-Actuary-Delivery`: the delivery id (the same on every retry: deduplicate on it);
- `X-AI-Actuary-Timestamp`: Unix seconds when this attempt was signed;
- `X-AI-Actuary-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the endpoint's
  secret, of `<timestamp>.<body>` (the timestamp, a full stop, the raw body bytes).

A 2xx answer is success; anything else (a redirect too: it is not followed), a timeout
or a connection error is a failed attempt, retried with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import NoReverseMatch, reverse

from audit.models import AuditLog
from engagements.selectors import VIEW_ALL_PERMISSION, engagement_can_view

from .messages import name

if TYPE_CHECKING:
    from .models import WebhookEndpoint
    from .recipients import Announcement

USER_AGENT = "AI-Actuary-Webhooks/1"
EVENT_HEADER = "X-AI-Actuary-Event"
DELIVERY_HEADER = "X-AI-Actuary-Delivery"
TIMESTAMP_HEADER = "X-AI-Actuary-Timestamp"
SIGNATURE_HEADER = "X-AI-Actuary-Signature"
SIGNATURE_PREFIX = "sha256="
# How much of a failed answer's body is kept in the delivery's last error.
ERROR_BODY_CHARS = 500

# The API route (basename) of each record a payload may be about.
API_ROUTES = {
    "approvals.approval": "api:approval-detail",
    "approvals.reviewpoint": "api:review-point-detail",
    "workflows.workflowrun": "api:workflow-run-detail",
    "engagements.engagement": "api:engagement-detail",
    "audit.auditlog": "api:audit-log-detail",
}


def endpoint_may_see(endpoint: WebhookEndpoint, announcement: Announcement) -> bool:
    """Return whether the endpoint's owner could see what the announcement is about."""
    owner = endpoint.owner
    if not owner.is_active:
        return False
    resource = announcement.resource
    if resource is not None:
        opts = resource._meta
        if not owner.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
            return False
    if announcement.engagement is not None:
        return engagement_can_view(engagement=announcement.engagement, user=owner)
    event = announcement.audit_event
    if owner.is_superuser or owner.has_perm(VIEW_ALL_PERMISSION):
        return True
    return event is not None and event.user_id == owner.pk


def webhook_payload(announcement: Announcement, *, delivery_id) -> dict[str, Any]:
    """Return the JSON body of a delivery: the event, its words, and what it is about."""
    event = announcement.audit_event
    engagement = announcement.engagement
    actor = announcement.actor
    resource = announcement.resource
    payload = {
        "id": str(delivery_id),
        "event": announcement.event,
        "occurred_at": event.created_at if event is not None else None,
        "subject": announcement.text.subject,
        "message": announcement.text.message,
        "link": absolute_url(announcement.link),
        "object": _object(resource),
        "engagement": (
            {
                "id": engagement.pk,
                "client_code": engagement.client_code,
                "client_name": engagement.client_name,
                "name": engagement.name,
                "status": engagement.status,
                "due_date": engagement.due_date,
                "api_url": _api_url("engagements.engagement", engagement.pk),
            }
            if engagement is not None
            else None
        ),
        "actor": (
            {"id": actor.pk, "username": actor.get_username(), "name": name(actor)}
            if actor is not None
            else None
        ),
        "audit_event": (
            {
                "id": event.pk,
                "sequence": event.sequence,
                "action": event.action,
                "severity": event.severity,
            }
            if event is not None
            else None
        ),
    }
    # Through JSON once: what is stored is exactly what is sent (dates as ISO strings).
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _object(resource) -> dict[str, Any] | None:
    if resource is None:
        return None
    label = resource._meta.label_lower
    data = {
        "type": resource._meta.model_name,
        "id": resource.pk,
        "name": str(resource) if not isinstance(resource, AuditLog) else resource.description,
        "api_url": _api_url(label, resource.pk),
    }
    status = getattr(resource, "status", None)
    if status is not None:
        data["status"] = status
    return data


def _api_url(label: str, pk) -> str | None:
    route = API_ROUTES.get(label)
    if route is None:
        return None
    try:
        return absolute_url(reverse(route, args=(pk,)))
    except NoReverseMatch:
        return None


def absolute_url(path: str) -> str:
    """Return `path` on the back office's public address (NOTIFICATIONS_BASE_URL)."""
    if not path:
        return ""
    return settings.NOTIFICATIONS_BASE_URL.rstrip("/") + path


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value of `body` sent at `timestamp` (Unix seconds)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


@dataclass(frozen=True)
class PostResult:
    """How one POST went: success, the HTTP status (if any answer came) and the error."""

    ok: bool
    status_code: int | None = None
    error: str = ""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a delivery goes to the registered URL or fails."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(*, url: str, secret: str, event: str, delivery_id: str, payload: dict) -> PostResult:
    """POST the signed payload to `url` once; return how it went (never raises for HTTP)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
    )
    timeout = settings.NOTIFICATIONS_WEBHOOK_TIMEOUT
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        detail = _read_error_body(error)
        return PostResult(False, error.code, f"HTTP {error.code} {error.reason}{detail}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return PostResult(False, None, f"{type(error).__name__}: {reason}")
    if 200 <= status < 300:
        return PostResult(True, status)
    return PostResult(False, status, f"HTTP {status}: not a 2xx answer")


def _read_error_body(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read(ERROR_BODY_CHARS).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f": {text}" if text else ""
