"""Incremental and differential backups: chains that restore exactly, links that are checked.

The round trip: a full backup, changes (an update, a soft delete, hard deletes, new
files), an incremental, more changes, a differential, more changes, a second
incremental; then the database and the files are wiped and each chain restored: every
row, history row, audit entry and file is what it was when the chain's last archive
was written. It runs on SQLite and, with DATABASE_URL, on PostgreSQL.
"""

import datetime
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from approvals.models import Approval
from artefacts.files import artefact_storage
from artefacts.models import Artefact
from artefacts.services import artefact_delete, artefact_new_version
from audit import backup as backups
from audit.choices import AuditAction
from audit.models import AuditLog, Backup, Recovery
from audit.services import audit_record
from conversations.models import Session
from engagements.models import Engagement
from engagements.services import engagement_update
from tests.audit.backups import call
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import active_engagement, artefact_in, upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("backup_root")]


@pytest.fixture(autouse=True)
def no_margin(monkeypatch):
    """Find changes from the history and the audit log alone, not the safety margin."""
    monkeypatch.setattr("audit.backup.changes.CHANGE_MARGIN", datetime.timedelta(0))


def database_state() -> dict:
    """Return every row a full backup holds, table by table, and every stored file's hash."""
    state = {}
    for table in backups.scope_tables(backups.BackupScope()):
        rows = list(table.queryset.values())
        if table.label == "auth.group":
            # Groups are known by name: `migrate` (and flush) makes Certifiers anew.
            rows = sorted(row["name"] for row in rows)
        state[table.label] = rows
    media = Path(settings.MEDIA_ROOT)
    state["files"] = {
        str(path.relative_to(media)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(media.rglob("*"))
        if path.is_file()
    }
    return state


def assert_same(before: dict, after: dict) -> None:
    for label, rows in before.items():
        if label == "audit.auditlog":
            # The restore appends its own events after the restored chain.
            assert after[label][: len(rows)] == rows, label
        else:
            assert after[label] == rows, label


def wipe() -> None:
    """Empty the database and the file storage."""
    call_command("flush", "--no-input", verbosity=0)
    for path in sorted(Path(settings.MEDIA_ROOT).rglob("*"), reverse=True):
        if path.is_file():
            path.unlink()


def latest(backup_type: str) -> Backup:
    return (
        Backup.objects.filter(backup_type=backup_type)
        .exclude(metadata__has_key="pre_recovery_snapshot")
        .latest("created_at")
    )


def manifest_of(backup: Backup) -> dict:
    with tarfile.open(backup.storage_path, "r:gz") as tar:
        return json.load(tar.extractfile("manifest.json"))


def table_entry(manifest: dict, label: str) -> dict:
    (entry,) = [table for table in manifest["tables"] if table["label"] == label]
    return entry


@pytest.fixture
def chain(built, actuary, reviewer):
    """full → changes → incremental → changes → differential → changes → incremental.

    Return the database states at the differential and at the last incremental.
    """
    doomed = EngagementFactory(lead_actuary=actuary, reviewer=reviewer, created_by=actuary)
    EngagementMemberFactory(engagement=doomed, user=actuary, role="lead")
    active_engagement(doomed, actor=actuary)
    artefact_in(doomed, actor=actuary, content=b"origin,value\n2019,1\n")
    call("backup", "--full")

    # An update, a soft delete, a hard delete (with its rows and history kept as "-").
    engagement_update(engagement=built, actor=actuary, data={"description": "After the full"})
    spare = artefact_in(built, actor=actuary, content=b"origin,value\n2021,7\n", name="Spare")
    artefact_delete(artefact=Artefact.objects.get(pk=spare.pk), actor=actuary)
    doomed_files = list(
        Artefact.all_objects.filter(engagement=doomed).values_list("file", flat=True)
    )
    Engagement.all_objects.filter(pk=doomed.pk).delete()
    for name in doomed_files:
        artefact_storage().delete(name)
    call("backup", "--incremental")

    artefact = Artefact.objects.filter(engagement=built).order_by("-created_at").first()
    artefact_new_version(
        artefact=artefact,
        upload=upload(b"origin,development,value\n2020,24,150\n", "triangle.csv"),
        actor=actuary,
    )
    Session.all_objects.filter(engagement=built).delete()
    # What the archive holds is the database before its own data_export event.
    at_differential = database_state()
    call("backup", "--differential")

    engagement_update(
        engagement=Engagement.objects.get(pk=built.pk),
        actor=actuary,
        data={"description": "After the differential"},
    )
    at_last = database_state()
    call("backup", "--incremental")
    return {"differential": at_differential, "last": at_last, "doomed": doomed.pk}


def test_incremental_and_differential_archives_hold_the_changes_and_name_their_base(chain):
    full, differential = latest("full"), latest("differential")
    first, last = Backup.objects.filter(backup_type="incremental").order_by("created_at")
    assert [first.metadata["base"]["backup_id"], differential.metadata["base"]["backup_id"]] == [
        str(full.pk),
        str(full.pk),
    ]
    assert last.metadata["base"]["backup_id"] == str(differential.pk)
    manifest = manifest_of(first)
    assert manifest["backup_type"] == "incremental"
    assert manifest["base"] == {
        "backup_id": str(full.pk),
        "backup_type": "full",
        "archive_name": Path(full.storage_path).name,
        "archive_sha256": full.checksum,
        "manifest_sha256": full.metadata["manifest_sha256"],
    }
    engagements = table_entry(manifest, "engagements.engagement")
    # The updated engagement only, and the hard delete named.
    assert engagements["rows"] == 1 and engagements["complete"] is False
    assert engagements["deleted"] == [str(chain["doomed"])]
    artefacts = table_entry(manifest, "artefacts.artefact")
    assert artefacts["rows"] == 1  # the soft-deleted spare, with its deleted_at
    assert str(chain["doomed"]) not in json.dumps(table_entry(manifest, "auth.user"))
    # The full backup's rows are not repeated.
    assert (
        manifest_of(first)["counts"]["audit.auditlog"]
        < manifest_of(full)["counts"]["audit.auditlog"]
    )
    # The differential holds everything since the full, the first incremental's changes too.
    diff_engagements = table_entry(manifest_of(differential), "engagements.engagement")
    assert diff_engagements["deleted"] == [str(chain["doomed"])]
    with tarfile.open(last.storage_path, "r:gz") as tar:
        manifest_bytes = tar.extractfile("manifest.json").read()
    assert last.metadata["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()


def test_a_wiped_database_comes_back_from_each_chain_exactly(chain):
    differential = latest("differential")
    last = latest("incremental")

    wipe()
    output = call("restore", differential.storage_path)
    assert "Chain of 2 archive(s)" in output and "Restored" in output
    assert_same(chain["differential"], database_state())
    assert "Audit log intact" in call("verify_audit_log")
    assert "0 missing, 0 corrupted" in call("verify_artefacts")

    wipe()
    output = call("restore", last.storage_path)
    assert "Chain of 3 archive(s)" in output
    assert_same(chain["last"], database_state())
    assert "Audit log intact" in call("verify_audit_log")
    recovery = Recovery.objects.get()
    assert [link["backup_type"] for link in recovery.metadata["chain"]] == [
        "full",
        "differential",
        "incremental",
    ]


def test_restoring_a_chain_over_the_database_it_came_from_changes_nothing(chain):
    output = call("restore", str(latest("incremental").pk))
    assert "Nothing to restore" in output
    assert not Recovery.objects.exists()


def test_a_dry_run_lists_the_chain_in_restore_order(chain):
    full, differential, last = latest("full"), latest("differential"), latest("incremental")
    output = call("restore", str(last.pk), "--dry-run")
    lines = [line for line in output.splitlines() if line.startswith("  ") and "backup" in line]
    assert [line.split()[1:4] for line in lines[:3]] == [
        ["full", "backup", str(full.pk)],
        ["differential", "backup", str(differential.pk)],
        ["incremental", "backup", str(last.pk)],
    ]
    assert not Recovery.objects.exists()


def test_a_missing_link_refuses_the_restore_and_changes_nothing(chain):
    last = latest("incremental")
    differential = latest("differential")
    Path(differential.storage_path).rename(Path(differential.storage_path).with_suffix(".moved"))
    wipe()
    with pytest.raises(CommandError, match="which is missing"):
        call("restore", last.storage_path)
    assert not AuditLog.objects.exists() and not Engagement.all_objects.exists()
    assert not Recovery.objects.exists()


def test_an_altered_link_refuses_the_restore_and_changes_nothing(chain):
    last = latest("incremental")
    full = latest("full")
    # Another full archive in the place of the real one: valid, but not the base named.
    call("backup", "--full")
    Path(latest("full").storage_path).replace(full.storage_path)
    wipe()
    with pytest.raises(CommandError, match="is not that backup") as refused:
        call("restore", last.storage_path)
    assert "Nothing was restored" in str(refused.value)
    assert not AuditLog.objects.exists() and not Engagement.all_objects.exists()
    assert not Recovery.objects.exists()


def test_an_incremental_without_a_full_backup_is_refused(engagement):
    with pytest.raises(CommandError, match="run `backup --full` first"):
        call("backup", "--incremental")
    assert not Backup.objects.exists()


def test_an_incremental_dry_run_counts_the_changes(built, actuary):
    call("backup", "--full")
    engagement_update(engagement=built, actor=actuary, data={"description": "Changed"})
    output = call("backup", "--incremental", "--dry-run")
    assert "  engagements.engagement: 1 row(s)" in output
    assert "the changes since full backup" in output
    assert Backup.objects.count() == 1


def test_prune_keeps_a_base_while_an_archive_builds_on_it(built, actuary):
    call("backup", "--full")
    engagement_update(engagement=built, actor=actuary, data={"description": "Changed"})
    call("backup", "--incremental")
    full, incremental = latest("full"), latest("incremental")
    past = timezone.now() - datetime.timedelta(days=1)
    Backup.objects.filter(pk=full.pk).update(expires_at=past)

    output = call("prune_backups")

    assert f"Skipped backup {full.pk}" in output and "builds on it" in output
    assert Path(full.storage_path).is_file()
    Backup.objects.filter(pk=incremental.pk).update(expires_at=past)
    # The incremental goes, and then (in the same run or the next) its base.
    call("prune_backups")
    call("prune_backups")
    assert Backup.objects.get(pk=incremental.pk).status == "expired"
    assert Backup.objects.get(pk=full.pk).status == "expired"
    assert not Path(full.storage_path).exists()


def raw_update(model, pk, **values) -> None:
    """Change a row in SQL, as a data fix would: no history row, no updated_at."""
    fields = [model._meta.get_field(name) for name in values]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    params = [f.get_db_prep_value(values[f.name], connection) for f in fields]
    pk_value = model._meta.pk.get_db_prep_value(pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET {assignments} WHERE "
            f"{connection.ops.quote_name(model._meta.pk.column)} = %s",
            [*params, pk_value],
        )


def test_a_row_written_by_a_transaction_open_while_the_base_was_read_is_not_missed(
    built, actuary, monkeypatch
):
    """The base saw a later history id but not this row: the margin takes it again."""
    monkeypatch.setattr("audit.backup.changes.CHANGE_MARGIN", datetime.timedelta(minutes=10))
    call("backup", "--full")
    full = latest("full")
    taken_at = datetime.datetime.fromisoformat(full.metadata["watermark"]["taken_at"])
    engagement_update(engagement=built, actor=actuary, data={"description": "Late commit"})
    history = Engagement.history.filter(id=built.pk).latest("history_id")
    # As a transaction open during the base would have left it: stamped before the base
    # was read, with an id the base's watermark already passed.
    before = taken_at - datetime.timedelta(minutes=1)
    Engagement.history.filter(history_id=history.history_id).update(history_date=before)
    raw_update(Engagement, built.pk, updated_at=before)
    watermark = full.metadata["watermark"]
    watermark["history"]["engagements.historicalengagement"] = history.history_id
    watermark["audit_sequence"] = AuditLog.objects.latest("sequence").sequence
    Backup.objects.filter(pk=full.pk).update(metadata={**full.metadata, "watermark": watermark})

    call("backup", "--incremental")

    manifest = manifest_of(latest("incremental"))
    assert table_entry(manifest, "engagements.engagement")["rows"] == 1


def test_a_change_known_only_from_the_audit_log_is_archived(built, actuary):
    """A row changed without history or updated_at (a raw update), but on record."""
    call("backup", "--full")
    approval = Approval.objects.filter(engagement=built).first()
    raw_update(Approval, approval.pk, request_notes="Amended by a data fix")
    audit_record(
        action=AuditAction.APPROVAL_UPDATE,
        resource=approval,
        user=actuary,
        description="Notes amended by a data fix",
    )

    call("backup", "--incremental")

    manifest = manifest_of(latest("incremental"))
    assert table_entry(manifest, "approvals.approval")["rows"] == 1
    with tarfile.open(latest("incremental").storage_path, "r:gz") as tar:
        rows = tar.extractfile("data/approvals.approval.jsonl").read().decode()
    assert "Amended by a data fix" in rows
