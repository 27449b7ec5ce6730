"""Artefact services and their bytes: checked uploads, no leftovers, verified downloads."""

import hashlib
import struct
import zlib
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction

from artefacts import services
from artefacts.files import FILE_CORRUPTED_MESSAGE, PNG_MAGIC, ArtefactFileUnavailable, FileTooLarge
from artefacts.models import Artefact
from artefacts.services import (
    ACCESS_PREVIEW,
    ARTEFACT_DOWNLOAD_NOT_ALLOWED,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    artefact_open_for_download,
)
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from engagements.choices import TeamRole
from engagements.selectors import VIEW_ALL_PERMISSION
from records.exceptions import Conflict, InvalidInput, NotAllowed
from tests.factories import TRIANGLE_CSV, EngagementMemberFactory, UserFactory
from tests.factories.states import (
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    grant,
    upload,
)

pytestmark = pytest.mark.django_db

REVISED_CSV = TRIANGLE_CSV + b"2022,12,120\n"


def png_bytes() -> bytes:
    """Return a valid 1×1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0"))


def stored_files(media_root):
    """Return every file under MEDIA_ROOT (walks the whole tree)."""
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role=TeamRole.OBSERVER)
    return observer


@pytest.fixture
def draft(engagement, actuary):
    return artefact_in(engagement, actor=actuary)


# --- upload: checked bytes ---------------------------------------------------------------


def test_the_row_takes_everything_from_the_stored_bytes(engagement, actuary, media_root):
    artefact = artefact_create(
        engagement=engagement,
        upload=upload(png_bytes(), "loss ratio.png"),
        artefact_type="chart",
        actor=actuary,
    )
    artefact.refresh_from_db()
    [path] = stored_files(media_root)
    assert path.read_bytes() == png_bytes()
    assert artefact.file.name == artefact.storage_path == str(path.relative_to(media_root))
    assert artefact.content_hash == hashlib.sha256(png_bytes()).hexdigest()
    assert (artefact.file_size, artefact.mime_type) == (len(png_bytes()), "image/png")
    assert (artefact.file_name, artefact.name, artefact.storage_bucket) == (
        "loss ratio.png",
        "loss ratio.png",
        "artefacts",
    )


@pytest.mark.parametrize(
    ("content", "file_name", "artefact_type", "error", "match"),
    [
        (b"", "triangle.csv", "triangle", InvalidInput, "The file “triangle.csv” is empty"),
        (TRIANGLE_CSV, "triangle.exe", "triangle", InvalidInput, "does not accept “.exe”"),
        (png_bytes(), "chart.png", "csv", InvalidInput, "does not accept PNG image"),
        (png_bytes(), "triangle.csv", "triangle", InvalidInput, "the content is PNG image"),
        (TRIANGLE_CSV, "triangle.csv", "scroll", InvalidInput, "artefact_type: Value 'scroll'"),
    ],
)
def test_refused_uploads_leave_no_row_and_no_file(
    engagement, actuary, media_root, content, file_name, artefact_type, error, match
):
    before = database_state()
    with pytest.raises(error, match=match):
        artefact_create(
            engagement=engagement,
            upload=upload(content, file_name),
            artefact_type=artefact_type,
            actor=actuary,
        )
    assert database_state() == before
    assert stored_files(media_root) == []


def test_an_oversize_upload_is_refused_with_the_limit(engagement, actuary, media_root, settings):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = len(TRIANGLE_CSV) - 1
    before = database_state()
    with pytest.raises(FileTooLarge, match=r"larger than the maximum upload size of 60 bytes"):
        artefact_create(engagement=engagement, upload=upload(), actor=actuary)
    with pytest.raises(FileTooLarge, match=r"maximum upload size of 10 bytes"):
        artefact_create(engagement=engagement, upload=upload(), actor=actuary, max_size=10)
    assert database_state() == before
    assert stored_files(media_root) == []


def test_a_new_version_must_keep_to_the_formats_of_its_type(engagement, actuary, media_root):
    triangle = artefact_in(engagement, actor=actuary, artefact_type="triangle")
    files = stored_files(media_root)
    before = database_state()
    with pytest.raises(InvalidInput, match="Artefact type “triangle” does not accept PNG"):
        artefact_new_version(artefact=triangle, upload=upload(png_bytes(), "t.png"), actor=actuary)
    assert database_state() == before
    assert stored_files(media_root) == files


# --- upload: nothing left behind --------------------------------------------------------


def test_a_failure_after_the_row_was_saved_removes_row_and_file(
    engagement, actuary, media_root, monkeypatch
):
    """The audit event is the last write: its failure must still take the bytes away."""
    monkeypatch.setattr(services, "audit_record", mock.Mock(side_effect=RuntimeError("disk")))
    before = database_state()
    with pytest.raises(RuntimeError, match="disk"):
        artefact_create(engagement=engagement, upload=upload(), actor=actuary)
    assert database_state() == before
    assert stored_files(media_root) == []


def test_a_refused_new_version_keeps_the_bytes_it_shares(draft, actuary, media_root):
    """Identical bytes under the same name are the previous version's file: it stays."""
    [shared] = stored_files(media_root)
    with pytest.raises(Conflict, match="a new version needs changed content"):
        artefact_new_version(artefact=draft, upload=upload(TRIANGLE_CSV), actor=actuary)
    # Under another name the bytes were stored apart, then removed again.
    with pytest.raises(Conflict, match="a new version needs changed content"):
        artefact_new_version(artefact=draft, upload=upload(TRIANGLE_CSV, "v2.csv"), actor=actuary)
    assert stored_files(media_root) == [shared]
    assert shared.read_bytes() == TRIANGLE_CSV


def test_identical_bytes_are_stored_once_and_survive_a_failed_sharer(
    engagement, actuary, media_root, monkeypatch
):
    first = artefact_in(engagement, actor=actuary)
    monkeypatch.setattr(services, "audit_record", mock.Mock(side_effect=RuntimeError("disk")))
    with pytest.raises(RuntimeError):
        artefact_in(engagement, actor=actuary, name="Same bytes again")
    [path] = stored_files(media_root)
    assert str(path.relative_to(media_root)) == first.file.name
    assert path.read_bytes() == TRIANGLE_CSV


@pytest.mark.django_db(transaction=True)
def test_a_failed_commit_removes_the_stored_file(engagement, actuary, media_root):
    """The service's own transaction fails at COMMIT, after every step succeeded."""
    real_commit = connection.commit

    def failing_commit():
        raise DatabaseError("could not serialize access")

    connection.commit = failing_commit
    try:
        with pytest.raises(DatabaseError, match="could not serialize"):
            artefact_create(engagement=engagement, upload=upload(), actor=actuary)
    finally:
        connection.commit = real_commit
    assert not Artefact.all_objects.exists()
    assert stored_files(media_root) == []


def test_an_outer_rollback_leaves_an_unreferenced_file_that_a_retry_reuses(
    engagement, actuary, media_root
):
    """The documented limit: no rollback hook, so the bytes stay, harmless and reusable."""
    with pytest.raises(RuntimeError), transaction.atomic():
        artefact_create(engagement=engagement, upload=upload(), actor=actuary)
        raise RuntimeError("the caller's own step failed")
    [orphan] = stored_files(media_root)
    assert not Artefact.all_objects.exists()

    artefact = artefact_create(engagement=engagement, upload=upload(), actor=actuary)
    assert stored_files(media_root) == [orphan]
    assert artefact.file.name == str(orphan.relative_to(media_root))


# --- open for download -------------------------------------------------------------------


@pytest.mark.parametrize("who", ["actuary", "reviewer", "observer", "superuser", "global_viewer"])
def test_anyone_who_sees_the_engagement_gets_the_verified_bytes(request, draft, who):
    if who == "global_viewer":
        actor = grant(UserFactory(username="auditor"), VIEW_ALL_PERMISSION)
    else:
        actor = request.getfixturevalue(who)
    mark = audit_mark()

    with artefact_open_for_download(artefact=draft, actor=actor) as handle:
        assert handle.read() == TRIANGLE_CSV

    [event] = audit_events_since(mark)
    assert (event.action, event.severity, event.user) == (
        AuditAction.ARTEFACT_ACCESS,
        Severity.INFO,
        actor,
    )
    assert (event.resource_type, event.resource_id, event.engagement_id) == (
        "artefact",
        draft.pk,
        draft.engagement_id,
    )
    assert event.metadata == {
        "purpose": "download",
        "content_hash": draft.content_hash,
        "file_name": "triangle.csv",
        "file_size": len(TRIANGLE_CSV),
        "version": 1,
    }


def test_a_preview_is_recorded_as_such(draft, actuary):
    mark = audit_mark()
    artefact_open_for_download(artefact=draft, actor=actuary, purpose=ACCESS_PREVIEW).close()
    [event] = audit_events_since(mark)
    assert event.metadata["purpose"] == "preview"


@pytest.mark.parametrize("who", ["outsider", "inactive", "anonymous"])
def test_who_cannot_see_the_engagement_gets_nothing(draft, outsider, who):
    from django.contrib.auth.models import AnonymousUser

    actor = {
        "outsider": outsider,
        "inactive": UserFactory(username="gone", is_active=False),
        "anonymous": AnonymousUser(),
    }[who]
    before = database_state()
    with pytest.raises(NotAllowed, match=r"may not download artefact .* cannot see engagement"):
        artefact_open_for_download(artefact=draft, actor=actor)
    assert database_state() == before


def test_the_refusal_names_user_artefact_and_engagement(draft, outsider):
    expected = ARTEFACT_DOWNLOAD_NOT_ALLOWED.format(
        user=outsider, artefact=draft, engagement=draft.engagement
    )
    with pytest.raises(NotAllowed) as refusal:
        artefact_open_for_download(artefact=draft, actor=outsider)
    assert refusal.value.message == expected


def test_a_missing_file_is_refused_and_recorded_as_critical(draft, actuary, media_root):
    (media_root / draft.file.name).unlink()
    mark = audit_mark()

    with pytest.raises(ArtefactFileUnavailable, match="is missing from storage") as refusal:
        artefact_open_for_download(artefact=draft, actor=actuary)

    assert refusal.value.check.status == "missing"
    [event] = audit_events_since(mark)
    assert (event.action, event.severity, event.user) == (
        AuditAction.ARTEFACT_ACCESS,
        Severity.CRITICAL,
        actuary,
    )
    assert event.resource_id == draft.pk and event.description == refusal.value.message
    assert event.metadata["integrity_check"] == "missing"
    assert event.metadata["source"] == "download"


def test_corrupted_bytes_are_refused_and_recorded_as_critical(draft, actuary, media_root):
    tampered = TRIANGLE_CSV.replace(b"150", b"999")
    (media_root / draft.file.name).write_bytes(tampered)
    mark = audit_mark()

    with pytest.raises(ArtefactFileUnavailable, match="does not match its record") as refusal:
        artefact_open_for_download(artefact=draft, actor=actuary)

    assert refusal.value.message == FILE_CORRUPTED_MESSAGE.format(
        artefact=draft,
        artefact_id=draft.pk,
        expected_hash=draft.content_hash,
        expected_size=len(TRIANGLE_CSV),
        actual_hash=hashlib.sha256(tampered).hexdigest(),
        actual_size=len(tampered),
    )
    [event] = audit_events_since(mark)
    assert event.severity == Severity.CRITICAL
    assert event.metadata["actual_hash"] == hashlib.sha256(tampered).hexdigest()


def test_the_check_uses_the_stored_record_not_the_callers_copy(draft, actuary, media_root):
    tampered = b"origin,value\n2020,1\n"
    (media_root / draft.file.name).write_bytes(tampered)
    # A caller's instance that claims the tampered bytes changes nothing.
    draft.content_hash = hashlib.sha256(tampered).hexdigest()
    draft.file_size = len(tampered)
    with pytest.raises(ArtefactFileUnavailable, match="does not match its record"):
        artefact_open_for_download(artefact=draft, actor=actuary)


@pytest.mark.django_db(transaction=True)
def test_the_critical_event_is_committed_although_the_refusal_propagates(
    draft, actuary, media_root
):
    (media_root / draft.file.name).unlink()
    with pytest.raises(ArtefactFileUnavailable):
        artefact_open_for_download(artefact=draft, actor=actuary)
    assert not connection.in_atomic_block
    # Read on a fresh connection state: the event is in the database, not in a
    # transaction that the exception rolled back.
    connection.close()
    assert AuditLog.objects.filter(
        resource_id=draft.pk, severity=Severity.CRITICAL, action=AuditAction.ARTEFACT_ACCESS
    ).exists()


def test_a_deleted_artefact_is_not_served(draft, actuary):
    artefact_delete(artefact=draft, actor=actuary)
    mark = audit_mark()
    with pytest.raises(Conflict, match=r"no longer exists .* it cannot be served"):
        artefact_open_for_download(artefact=draft, actor=actuary)
    assert audit_events_since(mark) == []
