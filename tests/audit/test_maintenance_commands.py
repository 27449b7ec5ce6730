"""purge_deleted, prune_backups and the backup command: normal run, dry run, second run.

Records are soft-deleted through the services and time is let pass (the commands and
the services read the clock through django.utils.timezone), so no state is fabricated.
"""

import datetime
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request
from artefacts.files import artefact_storage
from artefacts.models import Artefact
from artefacts.services import artefact_delete, artefact_new_version
from audit.choices import AuditAction
from audit.models import AuditLog, Backup
from conversations.models import ChatMessage, Session
from conversations.services import chat_message_add, session_create, session_delete
from engagements.models import Engagement
from engagements.services import (
    engagement_cancel,
    engagement_complete,
    engagement_delete,
)
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import (
    NO_CONFLICT,
    active_engagement,
    artefact_in,
    database_state,
    final_sign_off,
    run_in,
    upload,
)
from workflows.models import WorkflowRun
from workflows.services import workflow_run_cancel, workflow_run_complete, workflow_run_delete

pytestmark = pytest.mark.django_db

REVIEW = ApprovalType.ARTEFACT_REVIEW


def call(name, *args, verbosity=1) -> str:
    stdout = io.StringIO()
    call_command(
        name, *args, "--no-progress", verbosity=verbosity, stdout=stdout, stderr=io.StringIO()
    )
    return stdout.getvalue()


@pytest.fixture(autouse=True)
def backup_root(settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path / "backups"
    return settings.BACKUP_ROOT


@pytest.fixture
def clock(monkeypatch):
    """Move the clock of the commands and services forward by a number of days."""

    def advance(days: int):
        later = timezone.now() + datetime.timedelta(days=days)
        monkeypatch.setattr(timezone, "now", lambda: later)
        return later

    return advance


def team_engagement(actuary, reviewer):
    """A draft engagement with the same team as the `engagement` fixture."""
    engagement = EngagementFactory(lead_actuary=actuary, reviewer=reviewer, created_by=actuary)
    EngagementMemberFactory(engagement=engagement, user=actuary, role="lead")
    EngagementMemberFactory(engagement=engagement, user=reviewer, role="reviewer")
    return engagement


def approved(artefact, *, actuary, reviewer):
    review = approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    return Artefact.objects.get(pk=artefact.pk)


def file_exists(name: str) -> bool:
    return artefact_storage().exists(name)


def exists(model, pk) -> bool:
    return model._base_manager.filter(pk=pk).exists()


# --- purge_deleted -----------------------------------------------------------------------------


@pytest.fixture
def deleted(engagement, actuary, reviewer):
    """Soft-deleted records of every kind, purgeable ones and ones that must stay."""
    engagement = active_engagement(engagement, actor=actuary)
    rows = {}
    # A draft artefact with its own bytes: purged, file removed.
    rows["draft"] = artefact_in(engagement, actor=actuary, content=b"a,b\n1,1\n")
    artefact_delete(artefact=rows["draft"], actor=actuary)
    # The same bytes as a live artefact: purged, the shared file stays.
    rows["live_twin"] = artefact_in(engagement, actor=actuary, content=b"a,b\n2,2\n", name="Twin")
    rows["twin"] = artefact_in(engagement, actor=actuary, content=b"a,b\n2,2\n", name="Twin copy")
    assert rows["twin"].file.name == rows["live_twin"].file.name
    artefact_delete(artefact=rows["twin"], actor=actuary)
    # Approved, then superseded: its sign-off keeps it.
    signed = approved(
        artefact_in(engagement, actor=actuary, content=b"a,b\n3,3\n"),
        actuary=actuary,
        reviewer=reviewer,
    )
    rows["signed_v2"] = artefact_new_version(
        artefact=signed, upload=upload(b"a,b\n3,4\n"), actor=actuary
    )
    rows["signed"] = Artefact.objects.get(pk=signed.pk)
    artefact_delete(artefact=rows["signed"], actor=actuary)
    # A version an approved artefact builds on: kept.
    base = artefact_in(engagement, actor=actuary, content=b"a,b\n5,5\n")
    rows["approved_v2"] = approved(
        artefact_new_version(artefact=base, upload=upload(b"a,b\n5,6\n"), actor=actuary),
        actuary=actuary,
        reviewer=reviewer,
    )
    rows["base"] = Artefact.all_objects.get(pk=base.pk)
    artefact_delete(artefact=rows["base"], actor=actuary)
    # A finished run nobody names: purged. A run an artefact names: kept.
    rows["run"] = workflow_run_cancel(run=run_in(engagement, actor=actuary), actor=actuary)
    workflow_run_delete(run=rows["run"], actor=actuary)
    source = run_in(engagement, actor=actuary, start=True, name="Source run")
    rows["source_run"] = workflow_run_complete(run=source, actor=actuary)
    artefact_in(engagement, actor=actuary, content=b"a,b\n7,7\n", workflow_run=source)
    workflow_run_delete(run=rows["source_run"], actor=actuary)
    # A chat: purged with its messages.
    rows["session"] = session_create(actor=actuary, engagement=engagement, title="Old chat")
    rows["message"] = chat_message_add(
        session=rows["session"], role="user", content="Hello", actor=actuary
    )
    session_delete(session=Session.objects.get(pk=rows["session"].pk), actor=actuary)

    # A deleted draft engagement: purged with everything in it.
    doomed = team_engagement(actuary, reviewer)
    doomed_active = active_engagement(doomed, actor=actuary)
    rows["doomed_artefact"] = artefact_in(doomed_active, actor=actuary, content=b"a,b\n8,8\n")
    engagement_cancel(engagement=doomed_active, actor=actuary)
    rows["doomed"] = engagement_delete(
        engagement=Engagement.objects.get(pk=doomed.pk), actor=actuary
    )

    # A deleted cancelled engagement holding approved work: kept.
    keeper = active_engagement(team_engagement(actuary, reviewer), actor=actuary)
    approved(
        artefact_in(keeper, actor=actuary, content=b"a,b\n9,9\n"),
        actuary=actuary,
        reviewer=reviewer,
    )
    engagement_cancel(engagement=keeper, actor=actuary)
    rows["keeper"] = engagement_delete(
        engagement=Engagement.objects.get(pk=keeper.pk), actor=actuary
    )

    # An artefact deleted in a completed engagement: kept.
    closed = active_engagement(team_engagement(actuary, reviewer), actor=actuary)
    rows["closed_artefact"] = artefact_in(closed, actor=actuary, content=b"a,b\n10,10\n")
    artefact_delete(artefact=rows["closed_artefact"], actor=actuary)
    final_sign_off(closed, requester=actuary, approver=reviewer)
    engagement_complete(engagement=Engagement.objects.get(pk=closed.pk), actor=actuary)
    return rows


PURGED = ("draft", "twin", "run", "session", "doomed", "doomed_artefact", "message")
KEPT = ("signed", "base", "source_run", "keeper", "closed_artefact")


def model_of(row):
    return type(row)


def test_purge_removes_old_soft_deleted_rows_and_only_their_files(deleted, clock):
    clock(31)
    files = {key: deleted[key].file.name for key in ("draft", "twin", "doomed_artefact")}

    output = call("purge_deleted", "--older-than", "30")

    assert "Purged 5 soft-deleted record(s) deleted before" in output, output
    assert "1 engagement(s), 1 workflow run(s), 2 artefact(s), 1 chat session(s)" in output
    assert "removed 2 file(s); kept 5 protected record(s)." in output
    for key in PURGED:
        assert not exists(model_of(deleted[key]), deleted[key].pk), key
    for key in KEPT:
        assert exists(model_of(deleted[key]), deleted[key].pk), key
    assert not file_exists(files["draft"]) and not file_exists(files["doomed_artefact"])
    assert file_exists(files["twin"])  # still the bytes of the live twin
    for key in ("signed", "base", "closed_artefact"):
        assert file_exists(deleted[key].file.name)
    # History rows stay: they are the record (and the purge added the deletion).
    history = Artefact.history.filter(id=deleted["draft"].pk)
    assert history.filter(history_type="+").exists() and history.filter(history_type="-").exists()
    assert ChatMessage.history.filter(id=deleted["message"].pk).exists()
    events = AuditLog.objects.filter(metadata__purged=True)
    assert {(event.action, event.resource_id) for event in events} == {
        (AuditAction.ARTEFACT_DELETE, deleted["draft"].pk),
        (AuditAction.ARTEFACT_DELETE, deleted["twin"].pk),
        (AuditAction.ARTEFACT_DELETE, deleted["doomed_artefact"].pk),
        (AuditAction.SESSION_DELETE, deleted["session"].pk),
        (AuditAction.ENGAGEMENT_DELETE, deleted["doomed"].pk),
    }
    engagement_event = events.get(action=AuditAction.ENGAGEMENT_DELETE)
    assert engagement_event.metadata["contents"]["artefacts"] == 1
    assert engagement_event.old_value["name"] == deleted["doomed"].name
    assert "Audit log intact" in call("verify_audit_log")


def test_purge_explains_what_it_keeps(deleted, clock):
    clock(31)
    output = call("purge_deleted", "--older-than", "30")
    assert f"“{deleted['signed']}”: it carries an approved sign-off" in output
    assert f"“{deleted['base']}”: version 2 ({deleted['approved_v2'].pk}) builds on it" in output
    assert "“Source run”: 1 artefact(s) or approval(s) name it as their source" in output
    assert f"“{deleted['keeper']}”: it holds approved work" in output
    assert f"“{deleted['closed_artefact']}”: its engagement is completed" in output


def test_purge_dry_run_lists_and_changes_nothing(deleted, clock):
    clock(31)
    before = database_state()
    names = set(Artefact.all_objects.values_list("file", flat=True))

    output = call("purge_deleted", "--older-than", "30", "--dry-run")

    assert "Dry run: would purge 5 soft-deleted record(s)" in output
    assert "would remove 2 file(s)" in output and "Nothing was changed." in output
    assert f"Would purge artefact {deleted['draft'].pk}" in output
    assert database_state() == before
    assert all(file_exists(name) for name in names)


def test_purge_twice_is_a_no_op_the_second_time(deleted, clock):
    clock(31)
    call("purge_deleted", "--older-than", "30")
    before = database_state()

    output = call("purge_deleted", "--older-than", "30")

    assert "Purged 0 soft-deleted record(s)" in output and "kept 5 protected" in output
    assert database_state() == before


def test_purge_leaves_rows_deleted_within_the_retention_period(deleted, clock):
    clock(10)
    before = database_state()
    assert "Purged 0 soft-deleted record(s)" in call("purge_deleted", "--older-than", "30")
    assert database_state() == before


def test_purge_refuses_a_negative_period():
    with pytest.raises(CommandError, match="--older-than must be 0 or more days"):
        call("purge_deleted", "--older-than", "-1")


# --- prune_backups ----------------------------------------------------------------------------


@pytest.fixture
def written_backups(engagement):
    """Three backups of the engagement: kept 1 day, 10 days, and until removed by hand."""
    made = {}
    for key, days in (("short", "1"), ("long", "10"), ("forever", "0")):
        call("backup", "--engagement", str(engagement.pk), "--keep-days", days)
        made[key] = Backup.objects.order_by("-created_at").first()
    assert made["forever"].expires_at is None
    return made


def test_prune_removes_expired_archives_and_marks_their_rows(written_backups, clock):
    clock(2)
    short = written_backups["short"]
    archive = Path(short.storage_path)

    output = call("prune_backups")

    assert "Pruned 1 expired backup(s): 1 archive(s) removed, 0 already gone; skipped 0." in output
    short.refresh_from_db()
    assert short.status == "expired"
    assert short.history.first().history_change_reason == "Expired"
    assert not archive.exists() and not Path(f"{archive}.sha256").exists()
    for key in ("long", "forever"):
        backup = Backup.objects.get(pk=written_backups[key].pk)
        assert backup.status == "completed" and Path(backup.storage_path).is_file()
    event = AuditLog.objects.get(metadata__pruned=True)
    assert event.action == AuditAction.DATA_EXPORT and event.resource_id == short.pk
    assert event.metadata["archive_removed"] is True


def test_prune_dry_run_changes_nothing(written_backups, clock):
    clock(2)
    before = list(Backup.objects.order_by("pk").values())

    output = call("prune_backups", "--dry-run")

    assert f"Would prune backup {written_backups['short'].pk}" in output
    assert "Dry run: 1 backup(s) are past their expiry date" in output
    assert list(Backup.objects.order_by("pk").values()) == before
    assert Path(written_backups["short"].storage_path).is_file()


def test_prune_twice_and_with_the_archive_already_gone(written_backups, clock):
    Path(written_backups["short"].storage_path).unlink()
    clock(2)
    assert "1 archive(s) removed" not in (first := call("prune_backups"))
    assert "Pruned 1 expired backup(s): 0 archive(s) removed, 1 already gone" in first
    events = AuditLog.objects.count()

    second = call("prune_backups")

    assert "Pruned 0 expired backup(s)" in second
    assert AuditLog.objects.count() == events


def test_an_expired_backup_cannot_be_restored(written_backups, clock):
    clock(2)
    call("prune_backups")
    with pytest.raises(CommandError, match="is expired: only a completed backup can be restored"):
        call("restore", str(written_backups["short"].pk))


# --- backup ------------------------------------------------------------------------------------


def test_backing_up_twice_writes_two_archives(engagement, backup_root):
    call("backup", "--engagement", str(engagement.pk))
    call("backup", "--engagement", str(engagement.pk))
    first, second = Backup.objects.order_by("created_at")
    assert first.status == second.status == "completed"
    assert first.storage_path != second.storage_path
    assert Path(first.storage_path).is_file() and Path(second.storage_path).is_file()
    assert AuditLog.objects.filter(action=AuditAction.DATA_EXPORT).count() == 2


def test_a_full_backup_dry_run_counts_and_writes_nothing(engagement, backup_root):
    before = database_state()
    output = call("backup", "--full", "--dry-run", verbosity=2)
    assert "auth.user: 2 row(s)" in output and "engagements.engagement: 1 row(s)" in output
    assert (
        "Dry run: a backup of everything would hold" in output and "nothing was written" in output
    )
    assert database_state() == before
    assert not Backup.objects.exists()
    assert not backup_root.exists()


def test_a_failed_backup_leaves_a_failed_row_and_no_archive(engagement, backup_root, monkeypatch):
    from audit.backup import create as backups

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(backups, "_add_member", broken)

    with pytest.raises(CommandError, match="failed: No space left on device"):
        call("backup", "--engagement", str(engagement.pk))

    backup = Backup.objects.get()
    assert backup.status == "failed" and backup.error_message == "No space left on device"
    assert not any(backup_root.iterdir())
    event = AuditLog.objects.get(action=AuditAction.DATA_EXPORT)
    assert event.severity == "error"


def test_the_backup_command_options(engagement):
    with pytest.raises(CommandError, match="--keep-days must be 0"):
        call("backup", "--full", "--keep-days", "-3")
    with pytest.raises(CommandError):
        call("backup")  # neither --full nor --engagement
    assert WorkflowRun.objects.count() == 0


def test_a_purge_that_is_refused_midway_keeps_the_row_and_its_files(deleted, clock, monkeypatch):
    from django.db.models import ProtectedError

    from audit.management.commands import purge_deleted

    real_record = purge_deleted.audit_record

    def protect_engagements(**kwargs):
        if kwargs["action"] == AuditAction.ENGAGEMENT_DELETE:
            raise ProtectedError("Cannot delete: a record protects it", set())
        return real_record(**kwargs)

    monkeypatch.setattr(purge_deleted, "audit_record", protect_engagements)
    clock(31)

    output = call("purge_deleted", "--older-than", "30")

    assert f"Kept engagement {deleted['doomed'].pk}" in output
    assert "other records protect it (Cannot delete: a record protects it)" in output
    assert "0 engagement(s)" in output and "kept 6 protected record(s)" in output
    assert exists(Engagement, deleted["doomed"].pk)
    assert exists(Artefact, deleted["doomed_artefact"].pk)
    assert file_exists(deleted["doomed_artefact"].file.name)


def test_no_progress_bar_off_a_terminal(engagement, capsys):
    call_command("backup", "--engagement", str(engagement.pk), stdout=io.StringIO())
    call_command("purge_deleted", "--older-than", "0", stdout=io.StringIO())
    call_command("prune_backups", stdout=io.StringIO())
    call_command("expire_approvals", stdout=io.StringIO())
    assert capsys.readouterr().err == ""
