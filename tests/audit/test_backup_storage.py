"""Archives in S3-compatible object storage: against a local S3 server the test starts (moto)."""

import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from audit.models import Backup
from engagements.services import engagement_update
from tests.artefacts.test_files import load_settings
from tests.audit.backups import call
from tests.audit.test_backup_chain import assert_same, database_state, wipe

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "actuary-backups"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A local S3-compatible server (moto in server mode) for the tests of this module."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, settings, tmp_path):
    """BACKUP_STORAGE=s3 with an empty bucket; return a client to look into it."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    settings.BACKUP_ROOT = tmp_path / "backups"
    settings.BACKUP_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "location": "backups",
                "endpoint_url": s3_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    yield client
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    for entry in objects:
        client.delete_object(Bucket=BUCKET, Key=entry["Key"])
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> list[str]:
    return sorted(
        entry["Key"] for entry in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    )


def test_a_chain_in_object_storage_restores_a_wiped_database(bucket, built, actuary, settings):
    call("backup", "--full")
    engagement_update(engagement=built, actor=actuary, data={"description": "In the bucket"})
    before = database_state()
    call("backup", "--incremental")

    full = Backup.objects.get(backup_type="full")
    incremental = Backup.objects.get(backup_type="incremental")
    assert full.storage_provider == incremental.storage_provider == "s3"
    assert keys(bucket) == sorted(
        f"backups/{name}"
        for backup in (full, incremental)
        for name in (backup.storage_path, backup.storage_path + ".sha256")
    )
    # Nothing is left on the local disk.
    assert not settings.BACKUP_ROOT.exists() or not any(settings.BACKUP_ROOT.iterdir())

    wipe()
    output = call("restore", incremental.storage_path)

    assert "Chain of 2 archive(s)" in output and "Restored" in output
    assert_same(before, database_state())
    assert "Audit log intact" in call("verify_audit_log")
    snapshot = Backup.objects.get(metadata__has_key="pre_recovery_snapshot")
    assert snapshot.storage_provider == "s3"
    assert f"backups/{snapshot.storage_path}" in keys(bucket)


def test_a_damaged_object_is_refused_and_prune_removes_expired_objects(bucket, engagement):
    call("backup", "--engagement", str(engagement.pk))
    backup = Backup.objects.get()
    key = f"backups/{backup.storage_path}"
    original = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    bucket.put_object(Bucket=BUCKET, Key=key, Body=bytes(damaged))
    with pytest.raises(Exception, match="is corrupted or was changed"):
        call("restore", str(backup.pk))

    Backup.objects.filter(pk=backup.pk).update(
        expires_at=timezone.now() - datetime.timedelta(days=1)
    )
    output = call("prune_backups")
    assert "1 archive(s) removed" in output
    assert keys(bucket) == []
    assert Backup.objects.get().status == "expired"


def test_the_backup_storage_settings(monkeypatch):
    for name in ("BACKUP_STORAGE", "BACKUP_S3_BUCKET_NAME", "BACKUP_S3_LOCATION"):
        monkeypatch.delenv(name, raising=False)
    assert "backups" not in load_settings(monkeypatch)["STORAGES"]
    loaded = load_settings(
        monkeypatch,
        BACKUP_STORAGE="S3",
        BACKUP_S3_BUCKET_NAME="actuary-backups",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
    )
    storage = loaded["STORAGES"]["backups"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "actuary-backups"
    assert storage["OPTIONS"]["location"] == "backups"
    assert storage["OPTIONS"]["endpoint_url"] == "http://127.0.0.1:9000"
    assert storage["OPTIONS"]["file_overwrite"] is False
    # The artefacts stay local: the two storages are configured apart.
    assert loaded["STORAGES"]["default"]["BACKEND"].endswith("FileSystemStorage")
    with pytest.raises(ImproperlyConfigured, match="neither BACKUP_S3_BUCKET_NAME"):
        load_settings(monkeypatch, BACKUP_STORAGE="s3", BACKUP_S3_BUCKET_NAME="")
    with pytest.raises(ImproperlyConfigured, match="BACKUP_STORAGE must be 'local' or 's3'"):
        load_settings(monkeypatch, BACKUP_STORAGE="ftp")
