"""backup and restore: archives that lose nothing, refused before any write when damaged.

The round trip builds an engagement through the services (runs, artefact files in two
versions, decided approvals, a chat, audit events, history), backs it up, deletes it
for real, restores it, and compares every row, history row, audit entry and file.
"""

import gzip
import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from approvals.models import Approval
from artefacts.files import artefact_storage
from artefacts.models import Artefact
from audit import backup as backups
from audit.choices import AuditAction
from audit.models import AuditChainHead, AuditLog, Backup, Recovery
from conversations.models import ChatMessage, Session
from engagements.models import Engagement, EngagementMember
from engagements.services import engagement_update
from records.exceptions import Conflict
from tests.audit.backups import call
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory
from tests.factories.states import active_engagement
from workflows.models import WorkflowRun

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("backup_root")]

# Live models of an engagement, with the lookup from each to the engagement.
SCOPED = (
    (Engagement, "pk"),
    (EngagementMember, "engagement_id"),
    (WorkflowRun, "engagement_id"),
    (Artefact, "engagement_id"),
    (Approval, "engagement_id"),
    (Session, "engagement_id"),
    (ChatMessage, "session__engagement_id"),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def other_engagement(db):
    """An engagement that is not part of the backup, with an artefact of its own."""
    other = EngagementFactory()
    return other


def scoped_state(engagement_id) -> dict:
    """Return every row of the engagement, its history, audit events and files."""
    state = {}
    session_ids = list(
        Session.history.filter(engagement_id=engagement_id).values_list("id", flat=True)
    )
    for model, lookup in SCOPED:
        rows = model._base_manager.filter(**{lookup: engagement_id}).order_by("pk")
        state[model._meta.label] = list(rows.values())
        history = model.history.model._base_manager
        if model is Engagement:
            history_rows = history.filter(id=engagement_id)
        elif model is ChatMessage:
            history_rows = history.filter(session_id__in=session_ids)
        else:
            history_rows = history.filter(engagement_id=engagement_id)
        state[f"{model._meta.label} history"] = list(history_rows.order_by("pk").values())
    state["audit"] = list(
        AuditLog.objects.filter(engagement_id=engagement_id).order_by("sequence").values()
    )
    storage = artefact_storage()
    state["files"] = {
        name: sha256(storage.open(name, "rb").read())
        for name in Artefact.all_objects.filter(engagement_id=engagement_id).values_list(
            "file", flat=True
        )
    }
    return state


def delete_for_real(engagement_id) -> None:
    """Hard-delete the engagement, its chats and its files (audit entries stay)."""
    names = list(
        Artefact.all_objects.filter(engagement_id=engagement_id).values_list("file", flat=True)
    )
    Session.all_objects.filter(engagement_id=engagement_id).delete()
    Engagement.all_objects.filter(pk=engagement_id).delete()
    storage = artefact_storage()
    for name in set(names):
        storage.delete(name)


def assert_restored(before: dict, after: dict) -> None:
    """Every row and file is back, identical; history only gained the deletion records."""
    for key, rows in before.items():
        if key == "files":
            assert after[key] == rows
        elif key.endswith("history"):
            restored = [
                row
                for row in after[key]
                if row["history_id"] in {old["history_id"] for old in rows}
            ]
            assert restored == rows, key
            added = [row for row in after[key] if row not in rows]
            # The hard delete wrote one "-" record per deleted row: history is the record.
            assert {row["history_type"] for row in added} <= {"-"}, key
        elif key == "audit":
            assert after[key][: len(rows)] == rows
        else:
            assert after[key] == rows, key


def only_backup() -> Backup:
    """Return the one backup written by the backup command (not a pre-recovery snapshot)."""
    (backup,) = [b for b in Backup.objects.all() if not b.metadata.get("pre_recovery_snapshot")]
    return backup


def test_an_engagement_survives_backup_hard_delete_and_restore(built, other_engagement):
    engagement_id = built.pk
    before = scoped_state(engagement_id)
    assert len(before["files"]) == 2
    assert len(before[f"{WorkflowRun._meta.label}"]) == 2
    assert len(before[f"{Approval._meta.label}"]) == 2
    assert len(before[f"{ChatMessage._meta.label}"]) == 2

    output = call("backup", "--engagement", str(engagement_id))
    backup = only_backup()
    assert f"Backup {backup.pk} completed" in output
    assert backup.status == "completed" and backup.backup_type == "engagement"
    assert backup.engagement_id == engagement_id
    assert backup.checksum == sha256(Path(backup.storage_path).read_bytes())
    assert backup.record_count > 0 and backup.file_size_bytes > 0
    assert "engagements.engagement" in backup.tables_included
    assert "audit.auditlog" in backup.tables_included
    export = AuditLog.objects.get(action=AuditAction.DATA_EXPORT)
    assert export.resource_id == backup.pk and export.engagement_id == engagement_id

    delete_for_real(engagement_id)
    assert not Engagement.all_objects.filter(pk=engagement_id).exists()
    assert not Artefact.all_objects.filter(engagement_id=engagement_id).exists()

    output = call("restore", str(backup.pk))

    after = scoped_state(engagement_id)
    assert_restored(before, after)
    recovery = Recovery.objects.get()
    assert recovery.status == "completed" and recovery.backup_id == backup.pk
    assert recovery.engagement_id == engagement_id
    assert recovery.records_recovered == sum(
        len(before[model._meta.label]) for model, _lookup in SCOPED
    )
    assert "engagements.engagement" in recovery.tables_recovered
    assert recovery.options == {
        "mode": "refuse",
        "overwrite": False,
        "merge": False,
        "source": backup.storage_path,
    }
    assert Path(recovery.pre_recovery_snapshot).is_file()
    assert f"recovery {recovery.pk}" in output
    imported = AuditLog.objects.get(action=AuditAction.DATA_IMPORT)
    assert imported.resource_id == recovery.pk and imported.engagement_id == engagement_id
    assert "Audit log intact" in call("verify_audit_log")
    assert "0 missing, 0 corrupted" in call("verify_artefacts")
    # The other engagement was never touched.
    assert Engagement.objects.filter(pk=other_engagement.pk).exists()


def test_restoring_again_changes_nothing(built):
    call("backup", "--engagement", str(built.pk))
    backup = only_backup()
    before = scoped_state(built.pk)
    events = AuditLog.objects.count()

    output = call("restore", str(backup.pk))

    assert "Nothing to restore" in output
    assert scoped_state(built.pk) == before
    assert AuditLog.objects.count() == events
    assert not Recovery.objects.exists()


def test_the_archive_holds_a_manifest_rows_and_files(built):
    call("backup", "--engagement", str(built.pk))
    backup = only_backup()
    with tarfile.open(backup.storage_path, "r:gz") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
        members = {
            name: sha256(tar.extractfile(name).read()) for name in names if name != "manifest.json"
        }
    assert names[-1] == "manifest.json"
    assert manifest["format"] == backups.FORMAT_NAME
    assert manifest["format_version"] == backups.FORMAT_VERSION
    assert manifest["app_version"] == backups.app_version() != "unknown"
    assert manifest["scope"] == {"type": "engagement", "engagement_id": str(built.pk)}
    assert {name: entry["sha256"] for name, entry in manifest["members"].items()} == members
    assert manifest["counts"]["engagements.engagement"] == 1
    assert manifest["counts"]["workflows.workflowrun"] == 2  # the soft-deleted one too
    assert manifest["counts"]["artefacts.artefact"] == 2
    assert manifest["counts"]["conversations.chatmessage"] == 2
    assert (
        manifest["counts"]["audit.auditlog"]
        == AuditLog.objects.filter(engagement_id=built.pk)
        .exclude(action=AuditAction.DATA_EXPORT)
        .count()
    )
    users = {
        json.loads(line)["fields"]["username"]
        for line in members_text(backup, "data/auth.user.jsonl").splitlines()
    }
    assert users == {"actuary", "reviewer"}
    assert len([name for name in names if name.startswith("files/")]) == 2
    # Timestamps keep their microseconds (Django's own JSON encoder cuts them).
    engagement_row = json.loads(members_text(backup, "data/engagements.engagement.jsonl"))
    assert engagement_row["fields"]["created_at"] == built.created_at.isoformat()
    assert (Path(backup.storage_path + ".sha256").read_text()).startswith(backup.checksum)


def members_text(backup, name) -> str:
    with tarfile.open(backup.storage_path, "r:gz") as tar:
        return tar.extractfile(name).read().decode()


def test_backup_dry_run_writes_nothing(built, backup_root):
    output = call("backup", "--engagement", str(built.pk), "--dry-run")
    assert f"Dry run: a backup of engagement {built.pk} would hold" in output
    assert not Backup.objects.exists()
    assert not backup_root.exists() or not any(backup_root.iterdir())


def test_backup_of_an_unknown_engagement_is_refused():
    with pytest.raises(CommandError, match="No engagement with id"):
        call("backup", "--engagement", "00000000-0000-0000-0000-000000000000")


# --- Refused before any write -----------------------------------------------------------------


def flip_one_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    index = len(data) // 2 if offset is None else offset
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_corrupted_archive_is_refused_before_any_write(built):
    call("backup", "--engagement", str(built.pk))
    backup = only_backup()
    delete_for_real(built.pk)
    flip_one_byte(Path(backup.storage_path))
    events = AuditLog.objects.count()

    with pytest.raises(CommandError, match="is corrupted or was changed: its SHA-256 is"):
        call("restore", str(backup.pk))

    assert not Engagement.all_objects.filter(pk=built.pk).exists()
    assert AuditLog.objects.count() == events
    assert not Recovery.objects.exists()
    assert Backup.objects.count() == 1  # no snapshot either


def test_a_corrupted_archive_without_a_checksum_is_refused_by_its_member_hashes(built, tmp_path):
    call("backup", "--engagement", str(built.pk))
    archive = Path(only_backup().storage_path)
    copy = tmp_path / "copy.tar.gz"
    # Rewrite one row inside a valid gzip stream: only the manifest's hashes can tell.
    raw = bytearray(gzip.decompress(archive.read_bytes()))
    marker = raw.find(b'"client_name": "')
    raw[marker + 16] ^= 0x01
    copy.write_bytes(gzip.compress(bytes(raw)))
    delete_for_real(built.pk)

    with pytest.raises(CommandError, match=r"is corrupted: member .data/engagements\.engagement"):
        call("restore", str(copy))

    assert not Engagement.all_objects.filter(pk=built.pk).exists()
    assert not Recovery.objects.exists()


def test_restore_dry_run_verifies_and_changes_nothing(built):
    call("backup", "--engagement", str(built.pk))
    backup = only_backup()
    delete_for_real(built.pk)
    events = AuditLog.objects.count()

    output = call("restore", str(backup.pk), "--dry-run")

    assert "Dry run: restoring" in output and "nothing was changed" in output
    assert "engagements.engagement: new 1" in output
    assert not Engagement.all_objects.filter(pk=built.pk).exists()
    assert AuditLog.objects.count() == events
    assert not Recovery.objects.exists()


# --- Existing rows: refuse, merge, overwrite ------------------------------------------------


@pytest.fixture
def diverged(built, actuary):
    """A backup, then a changed engagement name and one workflow run deleted for real."""
    call("backup", "--engagement", str(built.pk))
    engagement_update(engagement=built, actor=actuary, data={"name": "Renamed after backup"})
    run = WorkflowRun.all_objects.filter(engagement=built, is_deleted=True).get()
    WorkflowRun.all_objects.filter(pk=run.pk).delete()
    return {"backup": only_backup(), "engagement": built, "run": run}


def test_restore_refuses_rows_that_exist_with_other_values(diverged):
    engagement = diverged["engagement"]
    with pytest.raises(CommandError) as refused:
        call("restore", str(diverged["backup"].pk))

    assert str(refused.value).startswith("Restore refused, nothing was changed:")
    assert f"engagements.engagement {engagement.pk}: exists with other values (" in str(
        refused.value
    )
    assert "name" in str(refused.value)
    assert Engagement.objects.get(pk=engagement.pk).name == "Renamed after backup"
    assert not WorkflowRun.all_objects.filter(pk=diverged["run"].pk).exists()
    assert not Recovery.objects.exists()


def test_merge_adds_only_the_missing_rows(diverged):
    engagement = diverged["engagement"]

    output = call("restore", str(diverged["backup"].pk), "--merge")

    assert Engagement.objects.get(pk=engagement.pk).name == "Renamed after backup"
    assert WorkflowRun.all_objects.filter(pk=diverged["run"].pk, is_deleted=True).exists()
    recovery = Recovery.objects.get()
    assert recovery.status == "completed" and recovery.options["merge"] is True
    assert recovery.records_recovered == 1
    assert recovery.tables_recovered == ["workflows.workflowrun"]
    assert recovery.metadata["tables"]["engagements.engagement"]["kept"] == 1
    assert "kept 1" in output
    # Merging again finds nothing missing.
    assert "Nothing to restore" in call("restore", str(diverged["backup"].pk), "--merge")


def test_overwrite_replaces_rows_with_the_archived_ones(diverged):
    engagement = diverged["engagement"]
    archived_name = Engagement.history.filter(id=engagement.pk).order_by("history_id")
    archived_name = [row.name for row in archived_name][-2]
    updated_at = Engagement.history.filter(id=engagement.pk).order_by("history_id")
    updated_at = [row.updated_at for row in updated_at][-2]

    call("restore", str(diverged["backup"].pk), "--overwrite")

    restored = Engagement.objects.get(pk=engagement.pk)
    assert restored.name == archived_name != "Renamed after backup"
    assert restored.updated_at == updated_at  # raw save: auto_now not applied
    assert WorkflowRun.all_objects.filter(pk=diverged["run"].pk).exists()
    recovery = Recovery.objects.get()
    assert recovery.metadata["tables"]["engagements.engagement"]["replaced"] == 1
    # The snapshot holds the engagement as it was before the overwrite.
    snapshot = Backup.objects.get(metadata__pre_recovery_snapshot=True)
    assert recovery.pre_recovery_snapshot == snapshot.storage_path
    with tarfile.open(snapshot.storage_path, "r:gz") as tar:
        row = json.loads(tar.extractfile("data/engagements.engagement.jsonl").read())
    assert row["fields"]["name"] == "Renamed after backup"
    assert "Audit log intact" in call("verify_audit_log")


def test_a_failed_restore_leaves_the_database_as_it_was(diverged, monkeypatch, media_root):
    engagement = diverged["engagement"]
    WorkflowRun.all_objects.filter(engagement=engagement).delete()
    storage = artefact_storage()
    names = set(Artefact.all_objects.filter(engagement=engagement).values_list("file", flat=True))
    Artefact.all_objects.filter(engagement=engagement).delete()
    for name in names:
        storage.delete(name)
    before = scoped_state(engagement.pk)
    real_save = backups._RestoreWalk._save

    def fail_on_approvals(self, table, records, *, insert):
        if self.write and table.label == "approvals.approval" and records:
            raise RuntimeError("disk full")
        return real_save(self, table, records, insert=insert)

    monkeypatch.setattr(backups._RestoreWalk, "_save", fail_on_approvals)

    with pytest.raises(CommandError, match="failed and was rolled back: RuntimeError: disk full"):
        call("restore", str(diverged["backup"].pk), "--overwrite")

    after = scoped_state(engagement.pk)
    assert {key: value for key, value in after.items() if key != "audit"} == {
        key: value for key, value in before.items() if key != "audit"
    }
    assert not any(storage.exists(name) for name in names)  # files written were removed
    recovery = Recovery.objects.get()
    assert recovery.status == "failed"
    assert recovery.error_message == "RuntimeError: disk full"
    failure = AuditLog.objects.get(action=AuditAction.DATA_IMPORT)
    assert failure.severity == "error" and failure.resource_id == recovery.pk
    assert "Audit log intact" in call("verify_audit_log")


# --- The audit chain ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_engagement_archive_never_fabricates_audit_entries_it_cannot_link(
    built, actuary, reviewer
):
    # Another engagement's event comes between this engagement's events in the chain, so
    # the engagement's events are a subset that cannot be linked from the genesis.
    other = EngagementFactory(lead_actuary=actuary, reviewer=reviewer)
    EngagementMemberFactory(engagement=other, user=actuary, role="lead")
    active_engagement(other, actor=actuary)
    engagement_update(engagement=built, actor=actuary, data={"description": "Later"})
    call("backup", "--engagement", str(built.pk))
    archive = only_backup().storage_path
    call_command("flush", "--no-input", verbosity=0)

    with pytest.raises(CommandError, match="does not link to the chain head") as refused:
        call("restore", archive)

    assert "an audit entry is never re-linked or fabricated" in str(refused.value)
    assert not Engagement.all_objects.exists()
    assert not AuditLog.objects.exists()
    assert not Recovery.objects.exists() and not Backup.objects.exists()


def test_restored_audit_rows_refuse_a_broken_link():
    head = AuditChainHead.objects.locked()
    entry = AuditLog(
        action=AuditAction.LOGIN,
        resource_type="user",
        sequence=head.sequence + 2,
        previous_hash="a" * 64,
    )
    entry.entry_hash = entry.compute_hash()
    with pytest.raises(Conflict, match="does not link to the chain head"), transaction.atomic():
        AuditLog.objects.append_restored([entry])
    assert not AuditLog.objects.filter(pk=entry.pk).exists()


# --- A full backup into an emptied database ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_full_backup_restores_an_emptied_database_with_its_chain(built, reviewer, backup_root):
    group = Group.objects.create(name="Reviewers")
    group.permissions.add(Permission.objects.get(codename="view_engagement"))
    reviewer.groups.add(group)
    reviewer.user_permissions.add(Permission.objects.get(codename="view_artefact"))
    chain = list(AuditLog.objects.order_by("sequence").values())
    before = scoped_state(built.pk)
    users = list(type(reviewer).objects.order_by("pk").values())
    call("backup", "--full")
    archive = Path(only_backup().storage_path)

    call_command("flush", "--no-input", verbosity=0)
    assert not AuditLog.objects.exists() and not Engagement.all_objects.exists()

    output = call("restore", str(archive))

    assert "Restored" in output
    after = scoped_state(built.pk)
    assert_restored(before, after)
    restored_chain = list(AuditLog.objects.order_by("sequence").values())
    assert restored_chain[: len(chain)] == chain
    assert list(type(reviewer).objects.order_by("pk").values()) == users
    restored_reviewer = type(reviewer).objects.get(pk=reviewer.pk)
    assert list(restored_reviewer.groups.values_list("name", flat=True)) == ["Reviewers"]
    assert restored_reviewer.has_perm("artefacts.view_artefact")
    assert restored_reviewer.has_perm("engagements.view_engagement")
    assert "Audit log intact" in call("verify_audit_log")
    assert "0 missing, 0 corrupted" in call("verify_artefacts")
    # New rows after the restore get fresh ids (sequences moved past the restored ones).
    UserFactory(username="after-restore")
    engagement_update(
        engagement=Engagement.objects.get(pk=built.pk),
        actor=restored_reviewer if False else type(reviewer).objects.get(username="actuary"),
        data={"description": "After the restore"},
    )
    recovery = Recovery.objects.get()
    assert recovery.backup.metadata["imported"] is True
    assert connection.vendor in {"sqlite", "postgresql"}


# --- Scope and sources ----------------------------------------------------------------------


def test_every_project_model_is_placed_in_or_out_of_the_engagement_scope():
    labels = {model._meta.label_lower for model in backups.record_models()}
    placed = set(backups.ENGAGEMENT_SCOPE) | set(backups.NOT_ENGAGEMENT_SCOPED)
    assert labels == placed, "add the new model to ENGAGEMENT_SCOPE or NOT_ENGAGEMENT_SCOPED"


def test_the_full_scope_holds_accounts_every_record_table_its_history_and_the_chain():
    labels = [table.label for table in backups.scope_tables(backups.BackupScope())]
    assert labels[:2] == ["auth.group", "auth.user"] and labels[-1] == "audit.auditlog"
    assert not set(labels) & backups.CATALOGUE_LABELS
    for model in backups.record_models():
        assert model._meta.label_lower in labels
        assert model.history.model._meta.label_lower in labels
    # Parents come before the rows that point to them.
    assert labels.index("engagements.engagement") < labels.index("artefacts.artefact")
    assert labels.index("workflows.workflowrun") < labels.index("artefacts.artefact")


def test_backup_writes_to_the_output_dir_given(engagement, tmp_path):
    target = tmp_path / "elsewhere"
    call("backup", "--engagement", str(engagement.pk), "--output-dir", str(target))
    backup = only_backup()
    assert Path(backup.storage_path).parent == target.resolve()
    assert Path(backup.storage_path).name.startswith(f"backup-engagement-{engagement.pk}-")


def test_a_path_without_a_backup_row_is_checked_against_its_sha256_file(built, tmp_path):
    call("backup", "--engagement", str(built.pk))
    source = Path(only_backup().storage_path)
    copy = tmp_path / "copied.tar.gz"
    copy.write_bytes(source.read_bytes())
    checksum = Path(f"{source}.sha256").read_text().split()[0]
    Path(f"{copy}.sha256").write_text(f"{checksum}  copied.tar.gz\n")
    flip_one_byte(copy, offset=len(copy.read_bytes()) - 3)  # the gzip trailer

    with pytest.raises(CommandError, match=r"copied\.tar\.gz\.sha256 records"):
        call("restore", str(copy))
    assert not Recovery.objects.exists()


def test_an_archive_from_elsewhere_is_recorded_as_an_imported_backup(built, tmp_path):
    call("backup", "--engagement", str(built.pk))
    source = Path(only_backup().storage_path)
    copy = tmp_path / "from-another-office.tar.gz"
    copy.write_bytes(source.read_bytes())
    delete_for_real(built.pk)

    call("restore", str(copy))

    recovery = Recovery.objects.get()
    imported = recovery.backup
    assert imported.storage_path == str(copy) and imported.status == "completed"
    assert imported.metadata["imported"] is True and imported.expires_at is None
    assert imported.checksum == sha256(copy.read_bytes())
    assert Engagement.objects.filter(pk=built.pk).exists()


def test_a_dry_run_of_a_restore_that_would_be_refused_fails(diverged):
    with pytest.raises(CommandError, match="Restore refused, nothing was changed"):
        call("restore", str(diverged["backup"].pk), "--dry-run")
    assert not Recovery.objects.exists()
