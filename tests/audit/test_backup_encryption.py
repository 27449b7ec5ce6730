"""Archives encrypted at rest: streamed AES-256-GCM, the key id on record, rotation, refusals."""

import base64
import os
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from audit.backup import crypto
from audit.models import Backup, Recovery
from engagements.models import Engagement
from engagements.services import engagement_update
from tests.audit.backups import call
from tests.audit.test_backup_restore import delete_for_real, scoped_state

pytestmark = pytest.mark.django_db


def new_key(key_id: str = "") -> str:
    encoded = base64.urlsafe_b64encode(os.urandom(32)).decode()
    return f"{key_id}:{encoded}" if key_id else encoded


@pytest.fixture(autouse=True)
def backup_root(settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path / "backups"
    settings.BACKUP_DECRYPTION_KEYS = []
    return settings.BACKUP_ROOT


def only_backup() -> Backup:
    (backup,) = Backup.objects.exclude(metadata__has_key="pre_recovery_snapshot")
    return backup


def test_an_encrypted_archive_restores_exactly_and_names_its_key(built, settings):
    settings.BACKUP_ENCRYPTION_KEY = new_key("2026-12")
    before = scoped_state(built.pk)
    call("backup", "--engagement", str(built.pk))
    backup = only_backup()
    path = Path(backup.storage_path)
    assert path.name.endswith(".tar.gz.enc")
    raw = path.read_bytes()
    assert raw.startswith(crypto.MAGIC) and b"manifest.json" not in raw
    assert b"Year-end reserving" not in raw
    assert backup.metadata["encryption"] == {"algorithm": crypto.ALGORITHM, "key_id": "2026-12"}
    assert crypto.read_key_id(path) == "2026-12"

    delete_for_real(built.pk)
    output = call("restore", str(backup.pk))

    assert "Restored" in output
    after = scoped_state(built.pk)
    for key, rows in before.items():
        if not key.endswith("history") and key != "audit":
            assert after[key] == rows, key
    # The pre-recovery snapshot is encrypted too.
    snapshot = Backup.objects.get(metadata__has_key="pre_recovery_snapshot")
    assert crypto.is_encrypted(Path(snapshot.storage_path))


def test_a_wrong_key_is_refused_with_the_key_id_and_nothing_changes(built, settings):
    settings.BACKUP_ENCRYPTION_KEY = new_key("2026-06")
    call("backup", "--engagement", str(built.pk))
    archive = only_backup().storage_path
    delete_for_real(built.pk)

    settings.BACKUP_ENCRYPTION_KEY = new_key("2026-12")
    with pytest.raises(CommandError, match="encrypted with key id “2026-06”") as refused:
        call("restore", archive)
    assert "the configured keys are “2026-12”" in str(refused.value)

    # A key under the right id, but not the right key.
    settings.BACKUP_ENCRYPTION_KEY = new_key("2026-06")
    with pytest.raises(CommandError, match="cannot be decrypted with the key “2026-06”"):
        call("restore", archive)

    settings.BACKUP_ENCRYPTION_KEY = ""
    with pytest.raises(CommandError, match="no key is configured"):
        call("restore", archive)
    assert not Engagement.all_objects.filter(pk=built.pk).exists()
    assert not Recovery.objects.exists()


def test_rotation_keeps_old_archives_readable(built, settings, actuary):
    old = new_key("2026-06")
    settings.BACKUP_ENCRYPTION_KEY = old
    call("backup", "--full")
    engagement_update(engagement=built, actor=actuary, data={"description": "After rotation"})

    settings.BACKUP_ENCRYPTION_KEY = new_key("2026-12")
    settings.BACKUP_DECRYPTION_KEYS = [old]
    call("backup", "--incremental")
    incremental = Backup.objects.get(backup_type="incremental")
    assert incremental.metadata["encryption"]["key_id"] == "2026-12"

    output = call("restore", str(incremental.pk), "--dry-run")
    assert "Chain of 2 archive(s)" in output and "Nothing to restore" in output


def test_an_altered_encrypted_archive_is_refused(built, settings, tmp_path):
    settings.BACKUP_ENCRYPTION_KEY = new_key()
    call("backup", "--engagement", str(built.pk))
    copy = tmp_path / "copy.tar.gz.enc"
    raw = bytearray(Path(only_backup().storage_path).read_bytes())
    raw[-40] ^= 0x01
    copy.write_bytes(bytes(raw))  # no .sha256 next to it: decryption itself must notice
    with pytest.raises(CommandError, match="the key is wrong or the archive was altered"):
        call("restore", str(copy))


def test_a_malformed_key_refuses_the_backup(engagement, settings):
    settings.BACKUP_ENCRYPTION_KEY = "too-short"
    with pytest.raises(CommandError, match="BACKUP_ENCRYPTION_KEY holds a key that is not 32"):
        call("backup", "--engagement", str(engagement.pk))
    assert not Backup.objects.exists()


@pytest.mark.parametrize("size", [0, 10, 64, 65, 640])
def test_the_stream_round_trips_and_refuses_a_cut_or_reordered_stream(size, tmp_path, settings):
    settings.BACKUP_ENCRYPTION_KEY = new_key("k")
    data = os.urandom(size)
    sealed = tmp_path / "sealed"
    with (
        sealed.open("wb") as raw,
        crypto.EncryptingWriter(raw, crypto.encryption_key(), chunk_size=64) as writer,
    ):
        for offset in range(0, size, 7):
            writer.write(data[offset : offset + 7])
    plain = tmp_path / "plain"
    assert crypto.decrypt_file(sealed, plain) == "k"
    assert plain.read_bytes() == data

    raw = sealed.read_bytes()
    header_size = len(crypto.MAGIC) + 2 + 1 + crypto.NONCE_PREFIX_SIZE + 4
    sealed_chunk = 64 + crypto.TAG_SIZE
    if size > 64:
        # Cut after the first chunk: that chunk was not sealed as the last one.
        sealed.write_bytes(raw[: header_size + sealed_chunk])
        with pytest.raises(crypto.RestoreRefused, match="chunk 0 failed"):
            crypto.decrypt_file(sealed, plain)
