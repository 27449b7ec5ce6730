"""Emails go out in the background, once, retried with backoff; a failure leaves business data."""

from __future__ import annotations

import datetime
import io
import os

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.services import approval_approve, approval_request
from audit.choices import AuditAction
from audit.models import AuditLog
from notifications import delivery, tasks
from notifications.choices import DeliveryStatus, NotificationEvent
from notifications.models import EmailDelivery, Notification
from notifications.services import NOT_RESENDABLE, SUPERUSERS_ONLY, email_delivery_resend
from records.exceptions import Conflict, NotAllowed
from tests.factories.states import NO_CONFLICT, artefact_in

from .mailers import DOWN

pytestmark = pytest.mark.django_db

DOWN_MAILERS = {"default": {"BACKEND": "tests.notifications.mailers.DownEmailBackend"}}
LOCMEM_MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}


@pytest.fixture
def request_for_bob(team, committed):
    """Return a function: Alice asks Bob to review a new triangle (committed)."""

    def request_for_bob():
        triangle = artefact_in(team.engagement, actor=team.carol, name="Paid claims triangle")
        return committed(
            approval_request,
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=triangle,
            actor=team.alice,
            designated_approver=team.bob,
        )

    return request_for_bob


def reminders(*args) -> str:
    out = io.StringIO()
    call_command("send_due_reminders", "--no-progress", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def clock(monkeypatch):
    """Return a function that moves the clock forward (for services, tasks and commands)."""
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(**delta):
        now[0] = now[0] + datetime.timedelta(**delta)
        return now[0]

    return advance


# --- once ----------------------------------------------------------------------------------


def test_an_email_task_delivered_twice_sends_once(request_for_bob):
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    assert (record.status, record.attempts, len(mail.outbox)) == (DeliveryStatus.SENT, 1, 1)

    again = tasks.send_email.enqueue(str(record.pk))

    assert again.return_value == {"delivery": str(record.pk), "outcome": "skipped"}
    record.refresh_from_db()
    assert (record.status, record.attempts, len(mail.outbox)) == (DeliveryStatus.SENT, 1, 1)


def test_an_announcement_delivered_twice_adds_nothing(request_for_bob):
    approval = request_for_bob()
    event = AuditLog.objects.get(action=AuditAction.APPROVAL_REQUEST, resource_id=approval.pk)
    before = (Notification.objects.count(), EmailDelivery.objects.count(), len(mail.outbox))

    result = tasks.announce.enqueue(str(event.pk))

    assert result.return_value["notifications"] == 0
    assert (Notification.objects.count(), EmailDelivery.objects.count(), len(mail.outbox)) == before
    assert before == (1, 1, 1)


def test_the_email_names_its_delivery(request_for_bob):
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    [email] = mail.outbox
    assert email.extra_headers["X-AI-Actuary-Delivery"] == str(record.pk)
    assert email.from_email == "AI Actuary <noreply@localhost>"


# --- failures and retries ------------------------------------------------------------------


def test_a_failed_send_never_rolls_back_the_business_change(
    settings, team, request_for_bob, committed
):
    approval = request_for_bob()
    settings.MAILERS = DOWN_MAILERS
    started = timezone.now()

    committed(
        approval_approve,
        approval=approval,
        actor=team.bob,
        conflict_of_interest_statement=NO_CONFLICT,
    )

    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert AuditLog.objects.filter(action=AuditAction.APPROVAL_APPROVE).count() == 1
    note = Notification.objects.get(event=NotificationEvent.APPROVAL_DECIDED)
    record = note.email_delivery
    assert record.status == DeliveryStatus.RETRYING and record.attempts == 1
    assert record.last_error == f"SMTPServerDisconnected: {DOWN}"
    # The first retry waits NOTIFICATIONS_RETRY_DELAY (60 s).
    wait = record.next_attempt_at - started
    assert datetime.timedelta(seconds=59) < wait < datetime.timedelta(seconds=75)


def test_a_retry_is_sent_by_the_sweep_once_it_is_due(settings, team, request_for_bob, clock):
    settings.MAILERS = DOWN_MAILERS
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    settings.MAILERS = LOCMEM_MAILERS

    reminders()  # not due yet: nothing sent
    record.refresh_from_db()
    assert (record.status, len(mail.outbox)) == (DeliveryStatus.RETRYING, 0)

    clock(minutes=2)
    assert "retries: 1 delivery(ies) enqueued" in reminders()
    record.refresh_from_db()
    assert (record.status, record.attempts, record.last_error) == (DeliveryStatus.SENT, 2, "")
    assert [m.to for m in mail.outbox] == [["bob@firm.example"]]

    assert "retries: 0 delivery(ies) enqueued" in reminders()
    assert len(mail.outbox) == 1


def test_retries_back_off_and_stop_after_the_last_attempt(settings, request_for_bob, clock):
    settings.MAILERS = DOWN_MAILERS
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    waits = []
    for _ in range(2):
        waits.append(record.next_attempt_at - timezone.now())
        clock(seconds=waits[-1].total_seconds() + 1)
        reminders()
        record.refresh_from_db()
    assert [round(w.total_seconds()) for w in waits] == [60, 120]
    assert (record.status, record.attempts, record.next_attempt_at) == (
        DeliveryStatus.FAILED,
        3,
        None,
    )
    clock(hours=1)
    reminders()
    record.refresh_from_db()
    assert record.attempts == 3 and mail.outbox == []


def test_a_backend_that_defers_tasks_gets_the_retry_with_its_delay(settings, request_for_bob):
    settings.MAILERS = DOWN_MAILERS
    request_for_bob()  # sent (and failed) with the immediate backend
    [record] = EmailDelivery.objects.all()
    settings.TASKS = DATABASE_TASKS
    # The task body once more, as a worker would run the retry:
    record.next_attempt_at = None
    record.save()
    started = timezone.now()

    assert delivery.attempt_email(record.pk) == DeliveryStatus.RETRYING

    [task_row] = DBTaskResult.objects.all()
    assert task_row.task_path == "notifications.tasks.send_email"
    assert task_row.args_kwargs == {"args": [str(record.pk)], "kwargs": {}}
    # Second failed attempt: the retry waits twice the first delay.
    assert (
        datetime.timedelta(seconds=119)
        < task_row.run_after - started
        < datetime.timedelta(seconds=135)
    )


def test_a_claim_left_by_a_dead_worker_is_taken_again_later(request_for_bob, clock, settings):
    settings.MAILERS = DOWN_MAILERS
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    settings.MAILERS = LOCMEM_MAILERS
    # A worker claimed it and died before recording the outcome.
    record.claim(timezone.now())
    record.save()
    assert delivery.attempt_email(record.pk) == "skipped"  # claimed: another worker has it
    clock(minutes=16)
    reminders()
    record.refresh_from_db()
    assert record.status == DeliveryStatus.SENT and len(mail.outbox) == 1


# --- resend --------------------------------------------------------------------------------


def test_a_superuser_resends_a_sent_email(team, request_for_bob, committed):
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    committed(email_delivery_resend, delivery_record=record, actor=team.root)
    record.refresh_from_db()
    assert (record.status, record.attempts, len(mail.outbox)) == (DeliveryStatus.SENT, 2, 2)
    assert record.history.first().history_change_reason == "Attempt 2 succeeded"


def test_resending_is_refused_to_others_and_for_pending_deliveries(team, request_for_bob, settings):
    settings.MAILERS = DOWN_MAILERS
    request_for_bob()
    [record] = EmailDelivery.objects.all()
    with pytest.raises(
        NotAllowed, match=SUPERUSERS_ONLY.format(verb="resend emails of", user="alice")
    ):
        email_delivery_resend(delivery_record=record, actor=team.alice)
    with pytest.raises(Conflict, match="it is waiting to retry"):
        email_delivery_resend(delivery_record=record, actor=team.root)
    assert NOT_RESENDABLE.startswith("Cannot resend")


def test_no_email_is_made_for_someone_without_an_address(team, request_for_bob):
    team.bob.email = ""
    team.bob.save()
    request_for_bob()
    assert Notification.objects.filter(recipient=team.bob).count() == 1
    assert not EmailDelivery.objects.exists() and mail.outbox == []


def run_database_worker():
    """Run django-tasks-db's worker (the loop of `db_worker --batch`) in this process."""
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=f"test-{os.getpid()}",
        excluded_queue_names=[],
    ).run()


@pytest.mark.slow
def test_with_the_database_queue_a_task_delivered_twice_sends_once(
    transactional_db, settings, team
):
    settings.TASKS = DATABASE_TASKS
    triangle = artefact_in(team.engagement, actor=team.carol, name="Paid claims triangle")
    # Autocommit: the request commits, its on-commit hook writes the announce task row.
    approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=triangle,
        actor=team.alice,
        designated_approver=team.bob,
    )
    assert list(DBTaskResult.objects.values_list("task_path", flat=True)) == [
        "notifications.tasks.announce"
    ]
    assert mail.outbox == []  # nothing is sent by the request itself

    run_database_worker()  # announces, then sends the email it queued

    [record] = EmailDelivery.objects.all()
    assert record.status == DeliveryStatus.SENT and [m.to for m in mail.outbox] == [
        [team.bob.email]
    ]
    tasks.send_email.enqueue(str(record.pk))  # the same task, delivered again
    tasks.announce.enqueue(str(record.notification.audit_event_id))
    run_database_worker()

    outcomes = [
        (row.task_path.rsplit(".", 1)[1], row.status, row.return_value)
        for row in DBTaskResult.objects.order_by("enqueued_at")
    ]
    assert [(name, status) for name, status, _value in outcomes] == [
        ("announce", "SUCCESSFUL"),
        ("send_email", "SUCCESSFUL"),
        ("send_email", "SUCCESSFUL"),
        ("announce", "SUCCESSFUL"),
    ]
    assert outcomes[2][2]["outcome"] == "skipped" and outcomes[3][2]["notifications"] == 0
    assert len(mail.outbox) == 1 and Notification.objects.count() == 1
