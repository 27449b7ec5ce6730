"""restore --rollback: a restore undone from its snapshot, or refused over later work."""

import pytest
from django.core.management.base import CommandError

from audit.choices import AuditAction
from audit.models import AuditLog, Backup, Recovery
from conversations.models import Session
from engagements.models import Engagement
from engagements.services import engagement_update
from tests.audit.backups import call
from tests.audit.test_backup_restore import scoped_state

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("backup_root")]


@pytest.fixture
def restored(built, actuary):
    """An engagement backed up, then changed (an update, a chat deleted), then restored."""
    call("backup", "--engagement", str(built.pk))
    backup = Backup.objects.get()
    engagement_update(
        engagement=built, actor=actuary, data={"description": "Changed after the backup"}
    )
    Session.all_objects.filter(engagement=built).delete()
    before_restore = scoped_state(built.pk)
    call("restore", str(backup.pk), "--overwrite")
    assert Engagement.objects.get(pk=built.pk).description == "Year-end reserving, Q4"
    assert Session.all_objects.filter(engagement=built).exists()
    return {"recovery": Recovery.objects.get(), "before": before_restore, "id": built.pk}


def assert_state(expected: dict, actual: dict) -> None:
    for key, rows in expected.items():
        if key == "audit":
            assert actual[key][: len(rows)] == rows
        else:
            assert actual[key] == rows, key


def test_a_rollback_puts_the_pre_recovery_snapshot_back(restored):
    recovery = restored["recovery"]
    output = call("restore", "--rollback", str(recovery.pk))

    assert f"Rolled back recovery {recovery.pk}" in output
    assert "row(s) removed" in output
    assert_state(restored["before"], scoped_state(restored["id"]))
    assert Engagement.objects.get(pk=restored["id"]).description == "Changed after the backup"
    assert not Session.all_objects.filter(engagement_id=restored["id"]).exists()
    recovery.refresh_from_db()
    assert recovery.status == "rolled_back"
    assert recovery.metadata["rollback"]["forced"] is False
    assert recovery.metadata["rollback"]["rows_removed"]["conversations.session"] == 1
    assert recovery.history.first().history_change_reason == "Rolled back"
    event = AuditLog.objects.filter(action=AuditAction.DATA_IMPORT).latest("sequence")
    assert event.resource_id == recovery.pk and event.metadata["rollback"] is True
    assert event.engagement_id == restored["id"]
    assert "Audit log intact" in call("verify_audit_log")

    with pytest.raises(CommandError, match="is rolled_back: only a completed restore"):
        call("restore", "--rollback", str(recovery.pk))


def test_a_rollback_over_later_changes_is_refused_then_forced(restored, actuary):
    recovery = restored["recovery"]
    engagement_update(
        engagement=Engagement.objects.get(pk=restored["id"]),
        actor=actuary,
        data={"description": "Work after the restore"},
    )
    with pytest.raises(CommandError, match="would be lost") as refused:
        call("restore", "--rollback", str(recovery.pk))
    message = str(refused.value)
    assert f"engagements.engagement {restored['id']}: changed at" in message
    assert "engagement_update of engagement" in message
    recovery.refresh_from_db()
    assert recovery.status == "completed"
    assert Engagement.objects.get(pk=restored["id"]).description == "Work after the restore"

    output = call("restore", "--rollback", str(recovery.pk), "--force")

    assert "Overridden: engagements.engagement" in output
    assert Engagement.objects.get(pk=restored["id"]).description == "Changed after the backup"
    recovery.refresh_from_db()
    assert recovery.status == "rolled_back" and recovery.metadata["rollback"]["forced"] is True
    event = AuditLog.objects.filter(action=AuditAction.DATA_IMPORT).latest("sequence")
    assert event.severity == "warning" and event.metadata["later_changes"]


def test_the_rollback_arguments_are_checked(restored):
    with pytest.raises(CommandError, match="Name a backup to restore, or --rollback"):
        call("restore")
    with pytest.raises(CommandError, match="--force goes with --rollback only"):
        call("restore", str(Backup.objects.first().pk), "--force")
    with pytest.raises(CommandError, match="No recovery with id"):
        call("restore", "--rollback", "00000000-0000-0000-0000-000000000000")
