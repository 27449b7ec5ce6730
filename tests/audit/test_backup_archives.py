"""Audit-log and artefact archives: a chain segment that proves nothing was rewritten, files."""

import hashlib
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from artefacts.files import artefact_storage
from artefacts.models import Artefact
from audit.chain import GENESIS_HASH
from audit.models import AuditChainHead, AuditLog, Backup, Recovery
from engagements.services import engagement_update
from tests.audit.backups import call
from tests.audit.test_commands import as_database_superuser
from tests.factories import AuditLogFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("backup_root")]


def latest(backup_type: str) -> Backup:
    return Backup.objects.filter(backup_type=backup_type).latest("created_at")


def manifest_of(backup: Backup) -> dict:
    with tarfile.open(backup.storage_path, "r:gz") as tar:
        return json.load(tar.extractfile("manifest.json"))


def rewrite_chain_from(sequence: int, description: str) -> None:
    """Change an entry and re-hash every entry after it, as a forger with DDL rights would."""
    entries = list(AuditLog.objects.filter(sequence__gte=sequence).order_by("sequence"))
    previous = (
        AuditLog.objects.filter(sequence=sequence - 1).values_list("entry_hash", flat=True).first()
        or GENESIS_HASH
    )
    with as_database_superuser() as cursor:
        for entry in entries:
            if entry.sequence == sequence:
                entry.description = description
            entry.previous_hash = previous
            entry.entry_hash = entry.compute_hash()
            cursor.execute(
                "UPDATE audit_auditlog SET description = %s, previous_hash = %s, "
                "entry_hash = %s WHERE id = %s",
                [entry.description, entry.previous_hash, entry.entry_hash, entry.pk.hex],
            )
            previous = entry.entry_hash
    head = AuditChainHead.objects.get()
    AuditChainHead.objects.filter(pk=head.pk).update(entry_hash=previous)


# --- Audit-log archives ---------------------------------------------------------------------


def test_an_audit_archive_holds_a_segment_with_its_hashes_before_and_after():
    entries = [AuditLogFactory(description=f"event {i}") for i in range(1, 6)]
    output = call("backup", "--audit-logs")
    backup = latest("audit_logs")
    segment = backup.metadata["audit_segment"]
    assert segment == {
        "from_sequence": 1,
        "to_sequence": 5,
        "head_hash_before": GENESIS_HASH,
        "head_hash_after": entries[-1].entry_hash,
    }
    assert f"audit entries 1..5, hash before {GENESIS_HASH}" in output
    manifest = manifest_of(backup)
    assert manifest["audit_segment"] == segment
    assert [table["label"] for table in manifest["tables"]] == ["audit.auditlog"]
    assert not manifest["files"]
    assert Path(backup.storage_path).name.startswith("backup-audit-logs-")

    output = call("verify_audit_log", "--archive", backup.storage_path)
    assert "intact: entries 1..5 (5)" in output
    assert "live chain: 5 entries identical, 0 no longer stored here" in output


def test_the_next_audit_archive_follows_the_last_and_is_verified_against_it():
    [AuditLogFactory() for _ in range(3)]
    call("backup", "--audit-logs")
    first = latest("audit_logs")
    # The backup's own data_export event and two more come after the first segment.
    [AuditLogFactory() for _ in range(2)]
    call("backup", "--audit-logs")
    second = latest("audit_logs")
    assert second.metadata["audit_segment"]["from_sequence"] == 4
    assert (
        second.metadata["audit_segment"]["head_hash_before"]
        == first.metadata["audit_segment"]["head_hash_after"]
    )

    output = call("verify_audit_log", "--archive", str(second.pk), "--previous", first.storage_path)
    assert f"follows {first.storage_path}" in output

    with pytest.raises(CommandError, match="does not follow"):
        call("verify_audit_log", "--archive", str(first.pk), "--previous", str(second.pk))


def test_an_audit_archive_from_a_sequence_and_a_missing_sequence():
    [AuditLogFactory() for _ in range(4)]
    call("backup", "--audit-logs", "--since", "2")
    segment = latest("audit_logs").metadata["audit_segment"]
    assert segment["from_sequence"] == 3
    assert segment["head_hash_before"] == AuditLog.objects.get(sequence=2).entry_hash
    with pytest.raises(CommandError, match="has no entry with sequence 99"):
        call("backup", "--audit-logs", "--since", "99")
    with pytest.raises(CommandError, match="--since SEQ"):
        call("backup", "--full", "--since", "2")


def test_a_rewritten_live_chain_is_caught_by_the_archive():
    [AuditLogFactory(description=f"event {i}") for i in range(1, 6)]
    call("backup", "--audit-logs")
    archive = latest("audit_logs").storage_path
    rewrite_chain_from(3, "nothing happened")
    # The rewritten chain is consistent in itself: only the archive shows the rewrite.
    assert "Audit log intact" in call("verify_audit_log")

    with pytest.raises(CommandError, match="does not match the live chain at sequence 3"):
        call("verify_audit_log", "--archive", archive)


def test_an_archive_that_is_not_an_audit_archive_is_refused(engagement):
    call("backup", "--engagement", str(engagement.pk))
    with pytest.raises(CommandError, match="not an audit-log archive"):
        call("verify_audit_log", "--archive", latest("engagement").storage_path)
    with pytest.raises(CommandError, match="--previous goes with --archive"):
        call("verify_audit_log", "--previous", latest("engagement").storage_path)


# --- Artefact archives ----------------------------------------------------------------------


def stored_files(engagement_id) -> dict:
    storage = artefact_storage()
    return {
        name: hashlib.sha256(storage.open(name, "rb").read()).hexdigest()
        for name in Artefact.all_objects.filter(engagement_id=engagement_id).values_list(
            "file", flat=True
        )
    }


def test_an_artefact_archive_holds_the_files_only_and_restores_them(built):
    files = stored_files(built.pk)
    assert len(files) == 2
    call("backup", "--artefacts", "--engagement", str(built.pk))
    backup = latest("artefacts")
    assert backup.engagement_id == built.pk
    manifest = manifest_of(backup)
    assert manifest["tables"] == []
    assert set(manifest["files"]) == set(files)
    for name, info in manifest["files"].items():
        assert info["sha256"] == files[name] == info["recorded_sha256"]
        assert info["field"] == "artefacts.artefact.file"
    assert Path(backup.storage_path).name.startswith(f"backup-artefacts-engagement-{built.pk}-")

    for name in files:
        artefact_storage().delete(name)
    output = call("restore", str(backup.pk))

    assert "Restored 0 row(s) into 0 tables and 2 file(s)" in output
    assert stored_files(built.pk) == files
    recovery = Recovery.objects.get()
    snapshot = Backup.objects.get(pk=recovery.metadata["snapshot_backup_id"])
    assert snapshot.backup_type == "artefacts"
    assert "Nothing to restore" in call("restore", str(backup.pk))


def test_an_artefact_archive_refuses_a_file_stored_with_other_bytes(built):
    call("backup", "--artefacts")
    backup = latest("artefacts")
    assert backup.engagement_id is None
    name = Artefact.objects.filter(engagement=built).values_list("file", flat=True).first()
    with artefact_storage().open(name, "wb") as handle:
        handle.write(b"tampered")
    with pytest.raises(CommandError, match=f"file {name}: exists in storage with other bytes"):
        call("restore", str(backup.pk))


def test_a_file_that_no_longer_matches_its_record_is_reported_as_it_is_archived(built, actuary):
    name = Artefact.objects.filter(engagement=built).values_list("file", flat=True).first()
    with artefact_storage().open(name, "wb") as handle:
        handle.write(b"changed behind our back")
    output = call("backup", "--artefacts", "--engagement", str(built.pk))
    assert f"Warning: file {name}: SHA-256" in output
    assert "does not match its record" in output
    engagement_update(engagement=built, actor=actuary, data={"description": "x"})


def test_the_backup_kinds_are_checked_and_counted_in_a_dry_run(engagement):
    AuditLogFactory()
    with pytest.raises(CommandError, match="Say what to back up"):
        call("backup")
    with pytest.raises(CommandError, match="--engagement goes alone"):
        call("backup", "--engagement", str(engagement.pk), "--incremental")
    output = call("backup", "--audit-logs", "--dry-run")
    assert "  audit.auditlog:" in output and "the audit entries 1.." in output
    output = call("backup", "--artefacts", "--engagement", str(engagement.pk), "--dry-run")
    assert f"the artefact files of engagement {engagement.pk}" in output
    assert not Backup.objects.exists()
