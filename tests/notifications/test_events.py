"""Each business event tells the people concerned, by notification and email, in sentences.

For every event: who is told, who is not (the actor, people of the team it does not
concern, outsiders to the engagement) and what they read — the subject, the plain-text
and HTML bodies with names, and the link to the admin page.
"""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from approvals.choices import ApprovalType, ReviewPointSeverity
from approvals.services import (
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    review_point_raise,
    review_point_reopen,
    review_point_resolve,
    review_point_respond,
)
from audit.choices import AuditAction, Severity
from audit.services import audit_record
from engagements.models import EngagementMember
from engagements.services import engagement_member_remove
from notifications.choices import NotificationEmail, NotificationEvent
from notifications.models import EmailDelivery, Notification
from notifications.services import notification_preference_update
from tests.factories import EngagementMemberFactory, SuperUserFactory
from tests.factories.states import NO_CONFLICT, artefact_in, run_in
from workflows.services import workflow_run_complete, workflow_run_queue

from .conftest import BASE_URL, emails_to, html_of, told

pytestmark = pytest.mark.django_db

E = NotificationEvent


@pytest.fixture
def triangle(team):
    """A triangle Carol uploaded (so Bob, who did not, may review it)."""
    return artefact_in(team.engagement, actor=team.carol, name="Paid claims triangle")


def request_review(team, triangle, committed, *, by=None, designated=None, **fields):
    return committed(
        approval_request,
        approval_type=fields.pop("approval_type", ApprovalType.ARTEFACT_REVIEW),
        artefact=triangle,
        actor=by or team.alice,
        designated_approver=designated,
        **fields,
    )


def admin_url(approval) -> str:
    return f"{BASE_URL}/admin/approvals/approval/{approval.pk}/change/"


# --- approval requested -------------------------------------------------------------------


def test_a_designated_approver_is_asked_by_name_and_nobody_else_is_told(team, triangle, committed):
    approval = request_review(
        team, triangle, committed, designated=team.bob, request_notes="Please check the 2019 row."
    )

    notified = told(E.APPROVAL_REQUESTED)
    assert set(notified) == {"bob"}  # not Alice (who asked), Carol, Olive, Oscar or Root
    note = notified["bob"]
    assert (
        note.subject
        == "Approval requested: The artefact review of “Paid claims triangle” (version 1)"
    )
    assert note.actor == team.alice and note.read_at is None
    assert note.link == f"/admin/approvals/approval/{approval.pk}/change/"
    assert note.engagement_id == team.engagement.pk

    [email] = mail.outbox
    assert email.to == ["bob@firm.example"]
    assert email.subject == (
        "[AI Actuary] Approval requested: The artefact review of “Paid claims triangle” (version 1)"
    )
    assert email.body.startswith("Hello Bob Castellano,\n")
    assert (
        "Alice Fairweather asked you to decide the artefact review of “Paid claims triangle” "
        "(version 1) in engagement ACME · FY2025 reserve review." in email.body
    )
    assert "Notes with the request: “Please check the 2019 row.”" in email.body
    assert f"Open it in the back office: {admin_url(approval)}" in email.body
    html = html_of(email)
    assert "<p>Alice Fairweather asked you to decide the artefact review of" in html
    assert f'<a href="{admin_url(approval)}"' in html
    assert "Approval requested: The artefact review of “Paid claims triangle” (version 1)" in html


def test_without_a_designated_approver_the_reviewers_who_may_decide_are_asked(
    team, triangle, committed
):
    rita = EngagementMemberFactory(
        engagement=team.engagement,
        user__username="rita",
        user__email="rita@firm.example",
        user__first_name="Rita",
        user__last_name="Unqualified",
        role="reviewer",
    ).user
    request_review(team, triangle, committed)
    # An artefact review needs no qualification: both reviewers may decide it.
    assert set(told(E.APPROVAL_REQUESTED)) == {"bob", "rita"}
    note = told(E.APPROVAL_REQUESTED)["rita"]
    assert note.message.startswith(
        "Alice Fairweather asked for the artefact review of “Paid claims triangle” (version 1) "
        "in engagement ACME · FY2025 reserve review. You are one of the reviewers who may "
        "decide it."
    )
    assert [m.to for m in mail.outbox] and {m.to[0] for m in mail.outbox} == {
        "bob@firm.example",
        rita.email,
    }


def test_a_sign_off_is_asked_only_of_reviewers_qualified_to_give_it(team, committed):
    EngagementMemberFactory(engagement=team.engagement, user__username="rita", role="reviewer")
    committed(
        approval_request,
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF,
        engagement=team.engagement,
        actor=team.carol,
    )
    assert set(told(E.APPROVAL_REQUESTED)) == {"bob"}  # Rita holds no qualification


def test_a_reviewer_who_took_part_in_the_work_is_not_asked(team, committed):
    bobs_triangle = artefact_in(team.engagement, actor=team.bob, name="Bob's own triangle")
    request_review(team, bobs_triangle, committed)
    assert told(E.APPROVAL_REQUESTED) == {}


# --- approval decided, revoked, expired ----------------------------------------------------


def test_an_approval_tells_the_requester_and_the_lead_not_the_approver(team, triangle, committed):
    approval = request_review(team, triangle, committed, by=team.carol, designated=team.bob)
    mail.outbox.clear()
    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
        notes="Diagonal reconciles to the ledger.",
    )
    notified = told(E.APPROVAL_DECIDED)
    assert set(notified) == {"carol", "alice"}
    note = notified["carol"]
    assert note.subject == "Approved: The artefact review of “Paid claims triangle” (version 1)"
    assert note.message == (
        "Bob Castellano approved the artefact review of “Paid claims triangle” (version 1) in "
        "engagement ACME · FY2025 reserve review.\n\n"
        "Notes: “Diagonal reconciles to the ledger.”"
    )
    assert {m.to[0] for m in mail.outbox} == {"carol@firm.example", "alice@firm.example"}


def test_a_rejection_says_why(team, triangle, committed):
    approval = request_review(team, triangle, committed, designated=team.bob)
    mail.outbox.clear()
    committed(
        approval_reject,
        approval=approval,
        actor=team.bob,
        reason="The 2019 diagonal does not reconcile.",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    # Alice requested and leads: told once.
    [email] = mail.outbox
    assert email.to == ["alice@firm.example"]
    assert (
        email.subject
        == "[AI Actuary] Rejected: The artefact review of “Paid claims triangle” (version 1)"
    )
    assert "Bob Castellano rejected the artefact review of “Paid claims triangle”" in email.body
    assert "Reason: “The 2019 diagonal does not reconcile.”" in email.body
    assert "Reason: “The 2019 diagonal does not reconcile.”" in html_of(email)


def test_a_revocation_tells_requester_lead_and_approver(team, triangle, committed):
    approval = request_review(team, triangle, committed, by=team.carol, designated=team.bob)
    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
    )
    committed(approval_revoke, approval=approval, actor=team.alice, reason="Wrong data cut-off.")
    notified = told(E.APPROVAL_REVOKED)
    assert set(notified) == {"carol", "bob"}  # Alice revoked it herself
    assert notified["bob"].message.startswith(
        "Alice Fairweather revoked the approval of the artefact review of “Paid claims triangle” "
        "(version 1) in engagement ACME · FY2025 reserve review, which Bob Castellano had granted."
    )
    assert "Reason: “Wrong data cut-off.”" in notified["bob"].message


def test_an_expiry_tells_the_requester_and_the_lead(team, triangle, committed, monkeypatch):
    expires = timezone.now() + datetime.timedelta(hours=1)
    approval = request_review(team, triangle, committed, by=team.carol, expires_at=expires)
    later = expires + datetime.timedelta(minutes=5)
    monkeypatch.setattr(timezone, "now", lambda: later)
    committed(approval_expire, approval=approval, actor=None)
    notified = told(E.APPROVAL_EXPIRED)
    assert set(notified) == {"carol", "alice"}
    assert notified["carol"].actor is None
    assert notified["carol"].message.startswith(
        "The request by Carol Okafor for the artefact review of “Paid claims triangle” "
        "(version 1) in engagement ACME · FY2025 reserve review expired on "
    )


# --- review points -----------------------------------------------------------------------


@pytest.fixture
def pending(team, triangle, committed):
    """Carol's pending review, designated to Bob."""
    return request_review(team, triangle, committed, by=team.carol, designated=team.bob)


def test_a_raised_point_tells_the_requester_and_the_lead(team, pending, committed):
    mail.outbox.clear()
    committed(
        review_point_raise,
        approval=pending,
        actor=team.bob,
        text="The tail factor is not supported beyond 108 months.",
        severity=ReviewPointSeverity.MAJOR,
    )
    notified = told(E.REVIEW_POINT_RAISED)
    assert set(notified) == {"carol", "alice"}
    assert notified["carol"].subject == (
        "Review point raised: The artefact review of “Paid claims triangle” (version 1)"
    )
    assert notified["carol"].message.startswith(
        "Bob Castellano raised a major review point on the artefact review of “Paid claims "
        "triangle” (version 1) in engagement ACME · FY2025 reserve review: “The tail factor is "
        "not supported beyond 108 months.”"
    )
    assert notified["carol"].link.startswith("/admin/approvals/reviewpoint/")
    assert len(emails_to(team.carol)) == 1 and emails_to(team.bob) == []


def test_an_answer_tells_whoever_raised_the_point(team, pending, committed):
    point = committed(review_point_raise, approval=pending, actor=team.bob, text="Tail?")
    committed(review_point_respond, point=point, actor=team.carol, response="Benchmarked: 1.02.")
    notified = told(E.REVIEW_POINT_ANSWERED)
    assert set(notified) == {"bob"}
    assert notified["bob"].message.startswith(
        "Carol Okafor answered your minor review point on the artefact review of “Paid claims "
        "triangle” (version 1) in engagement ACME · FY2025 reserve review: “Benchmarked: 1.02.”"
    )


def test_a_resolution_tells_who_answered_and_the_requester(team, pending, committed):
    point = committed(review_point_raise, approval=pending, actor=team.bob, text="Tail?")
    point = committed(review_point_respond, point=point, actor=team.alice, response="1.02.")
    committed(review_point_resolve, point=point, actor=team.bob, notes="Accepted.")
    notified = told(E.REVIEW_POINT_RESOLVED)
    assert set(notified) == {"alice", "carol"}  # Alice answered, Carol requested
    assert "Bob Castellano resolved the minor review point" in notified["alice"].message
    assert "Notes: “Accepted.”" in notified["alice"].message


def test_a_reopened_point_is_raised_again_with_its_reason(team, pending, committed):
    point = committed(review_point_raise, approval=pending, actor=team.bob, text="Tail?")
    point = committed(review_point_respond, point=point, actor=team.carol, response="1.02.")
    Notification.objects.all().delete()
    committed(review_point_reopen, point=point, actor=team.bob, reason="No benchmark source.")
    notified = told(E.REVIEW_POINT_RAISED)
    assert set(notified) == {"carol", "alice"}
    assert notified["carol"].subject.startswith("Review point reopened:")
    assert "Reason for reopening: “No benchmark source.”" in notified["carol"].message


# --- workflow runs -----------------------------------------------------------------------


def queued_run(team, committed):
    run = run_in(team.engagement, actor=team.carol, workflow_type="cohort_grouping", name="Cohorts")
    return committed(workflow_run_queue, run=run, actor=team.carol)


def test_the_runner_tells_whoever_queued_a_run_that_it_completed(team, quick, committed):
    queued_run(team, committed)
    notified = told(E.RUN_COMPLETED)
    # The runner completed it in Carol's name: for her it is news.
    assert set(notified) == {"carol"}
    assert notified["carol"].actor is None
    assert notified["carol"].message.startswith(
        "Your workflow run “Cohorts” (cohort grouping) in engagement ACME · FY2025 reserve review "
        "completed."
    )
    [email] = mail.outbox
    assert email.to == ["carol@firm.example"] and "Workflow run completed: Cohorts" in email.subject


def test_the_runner_tells_whoever_queued_a_run_that_it_failed_and_why(team, quick, committed):
    quick.fails = True
    queued_run(team, committed)
    notified = told(E.RUN_FAILED)
    assert set(notified) == {"carol"}
    assert (
        "What went wrong: “Step 1 of 1 (Do the work) failed: ValueError: the triangle has no "
        in (notified["carol"].message)
    )


def test_a_run_waiting_for_approval_tells_its_queuer_and_asks_the_reviewer(team, quick, committed):
    quick.needs_approval = True
    run = queued_run(team, committed)
    assert set(told(E.RUN_WAITING_APPROVAL)) == {"carol"}
    assert told(E.RUN_WAITING_APPROVAL)["carol"].message.startswith(
        "Your workflow run “Cohorts” (cohort grouping) in engagement ACME · FY2025 reserve review "
        "finished its steps and waits for its workflow approval."
    )
    asked = told(E.APPROVAL_REQUESTED)
    assert set(asked) == {"bob"}
    assert asked["bob"].message.startswith(
        "Carol Okafor asked for the workflow approval of workflow run “Cohorts”"
    )
    # Bob approves: Carol and Alice hear of the decision, which says the run completed;
    # Carol is not told a second time by a "run completed".
    run.refresh_from_db()
    approval = run.approvals.get()
    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
    )
    assert set(told(E.APPROVAL_DECIDED)) == {"carol", "alice"}
    assert (
        "The workflow run “Cohorts” is now completed." in told(E.APPROVAL_DECIDED)["carol"].message
    )
    assert told(E.RUN_COMPLETED) == {}


def test_a_run_reported_by_a_person_tells_its_owner_not_the_reporter(team, committed):
    run = run_in(team.engagement, actor=team.carol, start=True, name="IFRS 17 by hand")
    committed(workflow_run_complete, run=run, actor=team.alice)
    assert set(told(E.RUN_COMPLETED)) == {"carol"}  # she started it; Alice reported it
    assert told(E.RUN_COMPLETED)["carol"].actor == team.alice
    Notification.objects.all().delete()
    run2 = run_in(team.engagement, actor=team.carol, start=True, name="Own report")
    committed(workflow_run_complete, run=run2, actor=team.carol)
    assert told(E.RUN_COMPLETED) == {}  # nobody is told of what they did themselves


# --- critical events ---------------------------------------------------------------------


def test_a_critical_event_tells_every_active_superuser_but_its_actor(team, committed, triangle):
    SuperUserFactory(username="retired", is_active=False, email="retired@firm.example")
    acting_root = SuperUserFactory(
        username="acting_root", first_name="Amir", last_name="Acting", email="acting@firm.example"
    )

    def record():
        with transaction.atomic():
            return audit_record(
                action=AuditAction.ARTEFACT_ACCESS,
                severity=Severity.CRITICAL,
                resource=triangle,
                user=acting_root,
                description="Stored file of “Paid claims triangle” v1 is missing.",
            )

    event = committed(record)
    notified = told(E.CRITICAL_EVENT)
    assert set(notified) == {"root"}  # not the actor, the inactive one or any non-superuser
    assert notified["root"].subject == "Critical audit event: Artefact access"
    assert notified["root"].message.startswith(
        "A critical audit event was recorded by Amir Acting in engagement ACME · FY2025 reserve "
        "review on "
    )
    assert "“Stored file of “Paid claims triangle” v1 is missing.”" in notified["root"].message
    assert notified["root"].link == f"/admin/audit/auditlog/{event.pk}/change/"


# --- preferences, outsiders, rollbacks ----------------------------------------------------


def test_a_muted_event_is_neither_shown_nor_emailed(team, triangle, committed):
    notification_preference_update(
        user=team.bob, actor=team.bob, data={"muted_events": [E.APPROVAL_REQUESTED]}
    )
    request_review(team, triangle, committed, designated=team.bob)
    assert told(E.APPROVAL_REQUESTED) == {} and mail.outbox == []


def test_with_email_off_the_notification_is_only_shown(team, triangle, committed):
    notification_preference_update(user=team.bob, actor=team.bob, data={"email_enabled": False})
    request_review(team, triangle, committed, designated=team.bob)
    assert told(E.APPROVAL_REQUESTED)["bob"].email == NotificationEmail.NONE
    assert mail.outbox == [] and not EmailDelivery.objects.exists()


def test_someone_who_left_the_team_is_no_longer_told(team, triangle, committed):
    approval = request_review(team, triangle, committed, by=team.carol, designated=team.bob)
    member = EngagementMember.objects.get(engagement=team.engagement, user=team.carol)
    engagement_member_remove(member=member, actor=team.alice)
    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
    )
    assert set(told(E.APPROVAL_DECIDED)) == {"alice"}  # Carol requested it, but is an outsider now


def test_an_inactive_person_is_not_told(team, triangle, committed):
    team.alice.is_active = False
    team.alice.save()
    approval = request_review(team, triangle, committed, by=team.carol, designated=team.bob)
    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
    )
    assert set(told(E.APPROVAL_DECIDED)) == {"carol"}


def test_a_change_that_rolls_back_tells_nobody(team, triangle, committed):
    class Abandoned(Exception):
        pass

    def request_then_fail():
        with transaction.atomic():
            approval_request(
                approval_type=ApprovalType.ARTEFACT_REVIEW,
                artefact=triangle,
                actor=team.alice,
                designated_approver=team.bob,
            )
            raise Abandoned

    with pytest.raises(Abandoned):
        committed(request_then_fail)
    assert not Notification.objects.exists() and mail.outbox == []


def test_nothing_is_announced_before_the_commit(team, triangle, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=triangle,
            actor=team.alice,
            designated_approver=team.bob,
        )
    assert len(callbacks) == 1  # the announcement, waiting for the commit
    assert not Notification.objects.exists() and mail.outbox == []


def test_a_newly_designated_approver_is_asked(team, triangle, committed):
    reviewer2 = EngagementMemberFactory(
        engagement=team.engagement,
        user__username="rita",
        user__first_name="Rita",
        user__last_name="Second",
        role="reviewer",
    ).user
    approval = request_review(team, triangle, committed, designated=team.bob)
    committed(approval_update, approval=approval, actor=team.alice, data={"request_notes": "More"})
    assert set(told(E.APPROVAL_REQUESTED)) == {"bob"}  # nothing new for a note
    committed(
        approval_update,
        approval=approval,
        actor=team.alice,
        data={"designated_approver": reviewer2},
    )
    notes = Notification.objects.filter(event=E.APPROVAL_REQUESTED).order_by("created_at")
    assert [n.recipient.username for n in notes] == ["bob", "rita"]
    assert notes[1].message.startswith("Alice Fairweather asked you to decide the artefact review")
