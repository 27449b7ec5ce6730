"""send_due_reminders: approvals about to expire, engagements falling due, the daily digests.

Run twice the same day (or every day), it tells each person of each deadline once, and
sends each person at most one digest a day.
"""

from __future__ import annotations

import datetime
import io

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.services import approval_request
from engagements.services import engagement_update
from notifications.choices import EmailMode, NotificationEmail, NotificationEvent
from notifications.models import EmailDelivery, Notification
from notifications.services import notification_preference_update, notifications_mark_all_read
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import artefact_in

from .conftest import BASE_URL, html_of, told

pytestmark = pytest.mark.django_db

E = NotificationEvent


@pytest.fixture
def reminders(committed):
    """Return a function that runs the command (and what its commits run); its output."""

    def reminders(*args) -> str:
        out = io.StringIO()
        committed(
            call_command,
            "send_due_reminders",
            "--no-progress",
            *args,
            stdout=out,
            stderr=io.StringIO(),
        )
        return out.getvalue()

    return reminders


@pytest.fixture
def expiring(team, committed):
    """Carol's review for Bob expiring in two days, and Alice's expiring in ten."""
    soon = timezone.now() + datetime.timedelta(days=2)
    later = timezone.now() + datetime.timedelta(days=10)
    made = []
    for requester, expires_at, name in ((team.carol, soon, "Soon"), (team.alice, later, "Later")):
        triangle = artefact_in(team.engagement, actor=team.carol, name=f"{name} triangle")
        made.append(
            committed(
                approval_request,
                approval_type=ApprovalType.ARTEFACT_REVIEW,
                artefact=triangle,
                actor=requester,
                designated_approver=team.bob,
                expires_at=expires_at,
            )
        )
    Notification.objects.all().delete()
    mail.outbox.clear()
    return made


def test_an_approval_about_to_expire_reminds_its_decider_and_its_requester(
    reminders, team, expiring
):
    soon, _later = expiring
    expires = soon.expires_at.astimezone(datetime.UTC)
    out = reminders()
    notified = told(E.APPROVAL_EXPIRING)
    assert set(notified) == {"bob", "carol"}  # not the one expiring in ten days
    assert notified["bob"].subject == (
        "Approval expires in 2 days: The artefact review of “Soon triangle” (version 1)"
    )
    assert notified["bob"].message == (
        "The request by Carol Okafor for the artefact review of “Soon triangle” (version 1) in "
        "engagement ACME · FY2025 reserve review expires on "
        f"{expires.day} {expires:%B %Y %H:%M} UTC (in 2 days).\n\nIt still waits for your decision."
    )
    assert notified["carol"].message.endswith(
        "It still waits for a decision; extend its expiry if more time is needed."
    )
    assert notified["bob"].actor is None
    assert {m.to[0] for m in mail.outbox} == {"bob@firm.example", "carol@firm.example"}
    [to_bob] = [m for m in mail.outbox if m.to == ["bob@firm.example"]]
    url = f"{BASE_URL}/admin/approvals/approval/{soon.pk}/change/"
    assert url in to_bob.body and f'href="{url}"' in html_of(to_bob)
    assert "2 new notification(s) (2 email(s)" in out and "about 1 approval(s)" in out


def test_reminders_are_sent_once_however_often_the_command_runs(reminders, team, expiring):
    reminders()
    reminders()
    reminders("--date", (timezone.now() + datetime.timedelta(days=1)).date().isoformat())
    assert Notification.objects.filter(event=E.APPROVAL_EXPIRING).count() == 2
    assert len(mail.outbox) == 2
    assert "0 new notification(s)" in reminders()


def test_a_dry_run_says_what_it_would_send_and_sends_nothing(reminders, team, expiring):
    out = reminders("--dry-run")
    assert "Would send approval expiring reminder “Approval expires in 2 days: " in out
    assert "to bob, carol" in out
    assert "Dry run" in out and "2 reminder notification(s) would be recorded" in out
    assert not Notification.objects.exists() and mail.outbox == []


def test_an_engagement_falling_due_reminds_its_lead_only(reminders, team, committed):
    today = timezone.localdate()
    committed(
        engagement_update,
        engagement=team.engagement,
        actor=team.alice,
        data={"due_date": today + datetime.timedelta(days=5)},
    )
    closed = EngagementFactory(name="Closed one", due_date=today, status="cancelled")
    EngagementMemberFactory(engagement=closed, user=team.alice, role="lead")
    far = EngagementFactory(
        name="Far one", lead_actuary=team.alice, due_date=today + datetime.timedelta(days=30)
    )
    EngagementMemberFactory(engagement=far, user=team.alice, role="lead")

    reminders()

    notified = told(E.ENGAGEMENT_DUE)
    assert set(notified) == {"alice"}
    note = notified["alice"]
    assert note.subject == "Engagement due in 5 days: ACME · FY2025 reserve review"
    due = today + datetime.timedelta(days=5)
    assert note.message == (
        "Engagement ACME · FY2025 reserve review for Acme General Insurance plc, which you "
        f"lead, is due on {due.day} {due:%B %Y} (in 5 days).\n\nIt is active."
    )
    assert note.link == f"/admin/engagements/engagement/{team.engagement.pk}/change/"
    reminders()
    assert Notification.objects.filter(event=E.ENGAGEMENT_DUE).count() == 1


def test_a_new_due_date_reminds_again(reminders, team, committed):
    today = timezone.localdate()
    for days in (3, 6):
        committed(
            engagement_update,
            engagement=team.engagement,
            actor=team.alice,
            data={"due_date": today + datetime.timedelta(days=days)},
        )
        reminders()
    assert [
        n.subject
        for n in Notification.objects.filter(event=E.ENGAGEMENT_DUE).order_by("created_at")
    ] == [
        "Engagement due in 3 days: ACME · FY2025 reserve review",
        "Engagement due in 6 days: ACME · FY2025 reserve review",
    ]


def test_a_bad_date_is_refused(reminders):
    with pytest.raises(CommandError, match="--date must be a date as YYYY-MM-DD, not “tomorrow”"):
        reminders("--date", "tomorrow")


# --- daily digests -------------------------------------------------------------------------


@pytest.fixture
def bob_prefers_a_digest(team):
    notification_preference_update(
        user=team.bob, actor=team.bob, data={"email_mode": EmailMode.DIGEST}
    )


def ask_bob(team, committed, name):
    triangle = artefact_in(team.engagement, actor=team.carol, name=name)
    return committed(
        approval_request,
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=triangle,
        actor=team.alice,
        designated_approver=team.bob,
    )


def test_a_digest_reader_gets_one_email_a_day_with_everything_unread(
    reminders, team, committed, bob_prefers_a_digest
):
    ask_bob(team, committed, "First triangle")
    ask_bob(team, committed, "Second triangle")
    assert mail.outbox == []  # nothing on its own
    assert set(Notification.objects.values_list("email", flat=True)) == {NotificationEmail.DIGEST}

    out = reminders()

    [email] = mail.outbox
    assert email.to == ["bob@firm.example"]
    today = timezone.localdate()
    assert email.subject == (
        f"[AI Actuary] Your daily digest for {today.day} {today:%B %Y}: 2 notification(s)"
    )
    assert "Here is what happened for you in the back office (2 notifications)" in email.body
    assert (
        "1. Approval requested: The artefact review of “First triangle” (version 1)" in email.body
    )
    assert (
        "2. Approval requested: The artefact review of “Second triangle” (version 1)" in email.body
    )
    assert "Alice Fairweather asked you to decide the artefact review of “Second" in email.body
    assert "Alice Fairweather asked you to decide" in html_of(email)
    assert "digests: 1 queued (2 notification(s))" in out

    ask_bob(team, committed, "Third triangle")
    out = reminders()
    assert len(mail.outbox) == 1  # today's digest went out; the third waits for tomorrow
    assert "digests: 0 queued (0 notification(s)), 1 already sent today" in out

    tomorrow = (timezone.now() + datetime.timedelta(days=1)).date()
    reminders("--date", tomorrow.isoformat())
    assert len(mail.outbox) == 2
    assert "Third triangle" in mail.outbox[1].body and "First triangle" not in mail.outbox[1].body
    assert EmailDelivery.objects.filter(mode=EmailMode.DIGEST).count() == 2


def test_what_was_read_before_the_digest_is_left_out(
    reminders, team, committed, bob_prefers_a_digest
):
    ask_bob(team, committed, "Read triangle")
    notifications_mark_all_read(actor=team.bob)
    reminders()
    assert mail.outbox == []


def test_no_digest_once_email_is_turned_off(reminders, team, committed, bob_prefers_a_digest):
    ask_bob(team, committed, "Quiet triangle")
    notification_preference_update(user=team.bob, actor=team.bob, data={"email_enabled": False})
    reminders()
    assert mail.outbox == []
