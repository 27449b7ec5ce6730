"""What the purge of soft-deleted records (`audit.purge`) asks of every engagement's rows."""

from records.formatting import status_label

from .choices import CLOSED_STATUSES

REASON_CLOSED_ENGAGEMENT = "its engagement is {status}"
REASON_ENGAGEMENT_CLOSED = "it is {status}"


def closed_engagement_reason(engagement) -> str:
    """Return why a row of a completed or archived engagement is kept ("" if it is open)."""
    if engagement.status in CLOSED_STATUSES:
        return REASON_CLOSED_ENGAGEMENT.format(status=status_label(engagement))
    return ""
