"""Background tasks of the notifications app, on Django's tasks framework (`django.tasks`).

Thin: each names what to do by an id and calls the module that does it. Every one is
safe to run twice: announcing records each notification once (unique keys), sending
claims its delivery first (a second run finds it claimed or sent).
"""

from django.tasks import task

from . import delivery
from .announcing import announce_audit_event


@task
def announce(audit_event_id: str) -> dict:
    """Turn the committed audit event into notifications and deliveries (once)."""
    return announce_audit_event(audit_event_id)


@task
def send_email(delivery_id: str) -> dict:
    """Attempt the email delivery once, if it is owed; retries are enqueued by the attempt."""
    return {"delivery": delivery_id, "outcome": delivery.attempt_email(delivery_id)}


@task
def deliver_webhook(delivery_id: str) -> dict:
    """POST the webhook delivery once, if it is owed; retries are enqueued by the attempt."""
    return {"delivery": delivery_id, "outcome": delivery.attempt_webhook(delivery_id)}
