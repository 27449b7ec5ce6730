"""The words of every notification: subjects and sentences with names, never codes.

`notifications.recipients` decides who is told what; this module only says it. Each
function returns a `Text` (subject and message). Names are people's full names (or
their user names), objects are quoted by their names, dates are spelled out in UTC.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from approvals.choices import ApprovalType


@dataclass(frozen=True)
class Text:
    """The subject line and the message (sentences, separated by blank lines)."""

    subject: str
    message: str


def name(user) -> str:
    """Return how a person is named in a notification: full name, else user name."""
    if user is None:
        return "The back office"
    return user.get_full_name() or user.get_username()


def engagement_label(engagement) -> str:
    """Return "CLIENT · name" of an engagement (its str)."""
    return str(engagement) if engagement is not None else ""


def when(value) -> str:
    """Return a date or datetime spelled out ("31 March 2026", "31 March 2026 09:00 UTC")."""
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.UTC)
        return f"{value.day} {value:%B %Y %H:%M} UTC"
    return f"{value.day} {value:%B %Y}"


def in_days(days: int) -> str:
    """Return "today", "tomorrow" or "in N days"."""
    return {0: "today", 1: "tomorrow"}.get(days, f"in {days} days")


def quoted(text: str, limit: int = 500) -> str:
    """Return `text` in quotes, cut at `limit` characters."""
    text = " ".join((text or "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"“{text}”"


def quoted_end(text: str, limit: int = 500) -> str:
    """Return `text` in quotes ending a sentence: a full stop after it unless it has one."""
    said = quoted(text, limit)
    return said if said[-2:-1] in {".", "!", "?", "…"} else said + "."


def approval_subject(approval) -> str:
    """Return what an approval is about, in words: "the artefact review of “Paid triangle” …"."""
    kind = approval.get_approval_type_display().lower()
    if approval.approval_type == ApprovalType.WORKFLOW_APPROVAL and approval.workflow_run_id:
        return f"the {kind} of workflow run “{approval.workflow_run.name}”"
    if approval.artefact_id:
        version = approval.artefact_version or approval.artefact.version
        return f"the {kind} of “{approval.artefact.name}” (version {version})"
    return f"the {kind} of the engagement"


def _in(engagement) -> str:
    return f" in engagement {engagement_label(engagement)}" if engagement is not None else ""


def _paragraphs(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- approvals ---------------------------------------------------------------------------


def approval_requested(*, approval, engagement, requester, personal: bool = True) -> Text:
    """Someone asks for a decision: of the recipient (designated, or one of the eligible
    reviewers) when `personal`, else in the third person (webhooks)."""
    what = approval_subject(approval)
    designated = approval.designated_approver if approval.designated_approver_id else None
    if designated is not None:
        whom = "you" if personal else name(designated)
        ask = f"{name(requester)} asked {whom} to decide {what}{_in(engagement)}."
    elif personal:
        ask = (
            f"{name(requester)} asked for {what}{_in(engagement)}. You are one of the "
            "reviewers who may decide it."
        )
    else:
        ask = (
            f"{name(requester)} asked for {what}{_in(engagement)}, to be decided by a "
            "reviewer of the team."
        )
    notes = (
        f"Notes with the request: {quoted_end(approval.request_notes)}"
        if approval.request_notes
        else ""
    )
    expiry = (
        f"It expires on {when(approval.expires_at)} if nobody decides it."
        if approval.expires_at
        else ""
    )
    return Text(
        subject=f"Approval requested: {_capital(what)}",
        message=_paragraphs(
            ask, notes, expiry, "Open it to approve or reject it." if personal else ""
        ),
    )


def approval_decided(
    *, approval, engagement, approver, approved: bool, reason: str, notes: str
) -> Text:
    """The recipient's request (or an approval in their engagement) was approved or rejected."""
    what = approval_subject(approval)
    verb = "approved" if approved else "rejected"
    said = f"{name(approver)} {verb} {what}{_in(engagement)}."
    why = f"Reason: {quoted_end(reason)}" if reason else ""
    remarks = f"Notes: {quoted_end(notes)}" if notes else ""
    run = ""
    if approval.approval_type == ApprovalType.WORKFLOW_APPROVAL and approval.workflow_run_id:
        outcome = "is now completed" if approved else "has failed with this reason"
        run = f"The workflow run “{approval.workflow_run.name}” {outcome}."
    return Text(
        subject=f"{_capital(verb)}: {_capital(what)}",
        message=_paragraphs(said, why, remarks, run),
    )


def approval_revoked(*, approval, engagement, revoker, reason: str) -> Text:
    """A granted approval was withdrawn."""
    what = approval_subject(approval)
    return Text(
        subject=f"Approval revoked: {_capital(what)}",
        message=_paragraphs(
            f"{name(revoker)} revoked the approval of {what}{_in(engagement)}, which "
            f"{name(approval.approver)} had granted.",
            f"Reason: {quoted_end(reason)}" if reason else "",
            "What it covered needs a new approval before it can be relied on.",
        ),
    )


def approval_expired(*, approval, engagement) -> Text:
    """A pending approval passed its expiry date without a decision."""
    what = approval_subject(approval)
    expired = f" on {when(approval.expires_at)}" if approval.expires_at else ""
    return Text(
        subject=f"Approval expired: {_capital(what)}",
        message=_paragraphs(
            f"The request by {name(approval.requested_by)} for {what}{_in(engagement)} "
            f"expired{expired} without a decision.",
            "Request it again if the sign-off is still needed.",
        ),
    )


def approval_expiring(*, approval, engagement, days: int, decider: bool) -> Text:
    """A pending approval expires soon."""
    what = approval_subject(approval)
    action = (
        "It still waits for your decision."
        if decider
        else "It still waits for a decision; extend its expiry if more time is needed."
    )
    return Text(
        subject=f"Approval expires {in_days(days)}: {_capital(what)}",
        message=_paragraphs(
            f"The request by {name(approval.requested_by)} for {what}{_in(engagement)} "
            f"expires on {when(approval.expires_at)} ({in_days(days)}).",
            action,
        ),
    )


# --- review points -----------------------------------------------------------------------


def review_point_raised(
    *, point, approval, engagement, raiser, reopened: bool, reason: str
) -> Text:
    """A reviewer raised (or reopened) a point on work the recipient prepares."""
    severity = point.get_severity_display().lower()
    what = approval_subject(approval)
    verb = "reopened" if reopened else "raised"
    return Text(
        subject=f"Review point {verb}: {_capital(what)}",
        message=_paragraphs(
            f"{name(raiser)} {verb} a {severity} review point on {what}{_in(engagement)}: "
            f"{quoted_end(point.text)}",
            f"Reason for reopening: {quoted_end(reason)}" if reopened and reason else "",
            "The approval cannot be granted until the point is answered and resolved.",
        ),
    )


def review_point_answered(*, point, approval, engagement, responder, personal: bool = True) -> Text:
    """The preparer answered a point (the recipient's, when `personal`)."""
    severity = point.get_severity_display().lower()
    what = approval_subject(approval)
    whose = "your" if personal else f"{name(point.raised_by)}'s"
    return Text(
        subject=f"Review point answered: {_capital(what)}",
        message=_paragraphs(
            f"{name(responder)} answered {whose} {severity} review point on {what}"
            f"{_in(engagement)}: {quoted_end(point.response)}",
            f"{'Your' if personal else 'The'} point was: {quoted_end(point.text)}",
            "Resolve it if the answer satisfies you, or reopen it with a reason."
            if personal
            else "",
        ),
    )


def review_point_resolved(*, point, approval, engagement, resolver, notes: str) -> Text:
    """The reviewer accepted the answer to a point."""
    severity = point.get_severity_display().lower()
    what = approval_subject(approval)
    return Text(
        subject=f"Review point resolved: {_capital(what)}",
        message=_paragraphs(
            f"{name(resolver)} resolved the {severity} review point on {what}{_in(engagement)}: "
            f"{quoted_end(point.text)}",
            f"Notes: {quoted_end(notes)}" if notes else "",
        ),
    )


# --- workflow runs -----------------------------------------------------------------------


def _run_named(run, owner, personal: bool) -> str:
    kind = run.get_workflow_type_display().lower()
    if personal:
        return f"Your workflow run “{run.name}” ({kind})"
    of = f" of {name(owner)}" if owner is not None else ""
    return f"The workflow run “{run.name}” ({kind}){of}"


def run_completed(*, run, engagement, owner=None, approver=None, personal: bool = True) -> Text:
    """A run completed (by itself, or once its approval was granted); the recipient's, when
    `personal`."""
    how = f" after {name(approver)} approved its results" if approver is not None else ""
    return Text(
        subject=f"Workflow run completed: {run.name}",
        message=_paragraphs(
            f"{_run_named(run, owner, personal)}{_in(engagement)} completed{how}.",
            "Its results are on the run's page.",
        ),
    )


def run_failed(*, run, engagement, error: str, owner=None, personal: bool = True) -> Text:
    """A run failed (the recipient's, when `personal`)."""
    return Text(
        subject=f"Workflow run failed: {run.name}",
        message=_paragraphs(
            f"{_run_named(run, owner, personal)}{_in(engagement)} failed.",
            f"What went wrong: {quoted_end(error)}" if error else "",
            "The run's page shows the step that failed and its details.",
        ),
    )


def run_waiting_approval(
    *, run, engagement, by_runner: bool, owner=None, personal: bool = True
) -> Text:
    """A run waits for its workflow approval (the recipient's, when `personal`)."""
    done = " finished its steps and" if by_runner else ""
    return Text(
        subject=f"Workflow run waiting for approval: {run.name}",
        message=_paragraphs(
            f"{_run_named(run, owner, personal)}{_in(engagement)}{done} waits for its "
            "workflow approval.",
            "An independent reviewer on the team must approve its results before it completes.",
        ),
    )


# --- engagements and the audit trail -----------------------------------------------------


def engagement_due(*, engagement, days: int, personal: bool = True) -> Text:
    """An engagement falls due soon (one the recipient leads, when `personal`)."""
    lead = engagement.lead_actuary
    led = ""
    if personal:
        led = ", which you lead,"
    elif lead is not None:
        led = f", led by {name(lead)},"
    return Text(
        subject=f"Engagement due {in_days(days)}: {engagement_label(engagement)}",
        message=_paragraphs(
            f"Engagement {engagement_label(engagement)} for {engagement.client_name}{led} "
            f"is due on {when(engagement.due_date)} ({in_days(days)}).",
            f"It is {engagement.get_status_display().lower()}.",
        ),
    )


def critical_event(*, event, actor, engagement) -> Text:
    """A critical audit event was recorded."""
    by = f" by {name(actor)}" if actor is not None else ""
    return Text(
        subject=f"Critical audit event: {event.get_action_display()}",
        message=_paragraphs(
            f"A critical audit event was recorded{by}{_in(engagement)} on "
            f"{when(event.created_at)}: {quoted_end(event.description)}",
            f"Action {event.get_action_display().lower()}, audit log entry {event.sequence}.",
        ),
    )
