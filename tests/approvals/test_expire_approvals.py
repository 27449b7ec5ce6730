"""expire_approvals: pending approvals past their expiry date expire through the service."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.management.commands import expire_approvals
from approvals.models import Approval
from approvals.services import approval_request
from audit.choices import AuditAction
from audit.models import AuditLog
from records.exceptions import Conflict
from tests.factories.states import active_engagement, artefact_in, database_state

pytestmark = pytest.mark.django_db

REVIEW = ApprovalType.ARTEFACT_REVIEW


def run(*args) -> str:
    stdout = io.StringIO()
    call_command("expire_approvals", *args, "--no-progress", stdout=stdout, stderr=io.StringIO())
    return stdout.getvalue()


@pytest.fixture
def approvals(engagement, actuary):
    """Three pending approvals: due in one hour, due in five hours, and never due."""
    engagement = active_engagement(engagement, actor=actuary)
    now = timezone.now()
    made = {}
    for key, expires_at in (
        ("soon", now + datetime.timedelta(hours=1)),
        ("later", now + datetime.timedelta(hours=5)),
        ("never", None),
    ):
        artefact = artefact_in(engagement, actor=actuary, content=f"a,b\n{key},1\n".encode())
        made[key] = approval_request(
            approval_type=REVIEW, artefact=artefact, actor=actuary, expires_at=expires_at
        )
    return made


@pytest.fixture
def two_hours_later(monkeypatch):
    """Let two hours pass (for the command and the services alike)."""
    later = timezone.now() + datetime.timedelta(hours=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    return later


def expire_events():
    return AuditLog.objects.filter(action=AuditAction.APPROVAL_EXPIRE)


def test_due_approvals_expire_with_history_and_an_audit_event(approvals, two_hours_later):
    output = run()

    assert "Expired 1 approval(s) past their expiry date; skipped 0." in output
    soon = Approval.objects.get(pk=approvals["soon"].pk)
    assert soon.status == "expired"
    assert soon.history.first().history_change_reason == "Expire"
    assert Approval.objects.get(pk=approvals["later"].pk).status == "pending"
    assert Approval.objects.get(pk=approvals["never"].pk).status == "pending"
    (event,) = expire_events()
    assert event.resource_id == soon.pk and event.user is None
    assert event.old_value == {"status": "pending"} and event.new_value == {"status": "expired"}


def test_a_dry_run_lists_what_would_expire_and_changes_nothing(approvals, two_hours_later):
    before = database_state()

    output = run("--dry-run")

    assert f"Would expire approval {approvals['soon'].pk}" in output
    assert "Dry run: 1 pending approval(s) are past their expiry date" in output
    assert database_state() == before


def test_a_second_run_is_a_no_op(approvals, two_hours_later):
    run()
    before = database_state()

    output = run()

    assert "Expired 0 approval(s) past their expiry date; skipped 0." in output
    assert database_state() == before
    assert expire_events().count() == 1


def test_nothing_is_due_before_the_expiry_date(approvals):
    assert "Expired 0 approval(s)" in run()
    assert not expire_events().exists()


def test_an_approval_the_service_refuses_is_skipped_with_its_reason(
    approvals, two_hours_later, monkeypatch
):
    def refuse(*, approval, actor):
        raise Conflict("Cannot expire approval: it was decided meanwhile.")

    monkeypatch.setattr(expire_approvals, "approval_expire", refuse)

    output = run()

    assert "Skipped approval" in output and "it was decided meanwhile" in output
    assert "Expired 0 approval(s) past their expiry date; skipped 1." in output
    assert Approval.objects.get(pk=approvals["soon"].pk).status == "pending"


def test_each_expired_approval_is_listed_at_verbosity_two(approvals, two_hours_later):
    stdout = io.StringIO()
    call_command("expire_approvals", "--no-progress", verbosity=2, stdout=stdout)
    assert f"Expired approval {approvals['soon'].pk}" in stdout.getvalue()
