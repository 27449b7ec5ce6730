"""REST API of artefacts: multipart upload, size cap, versions, verified download, review moves."""

import hashlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.middleware.csrf import _get_new_csrf_string
from rest_framework.test import APIClient

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request
from artefacts.api.serializers import FILE_NOT_REPLACEABLE
from artefacts.models import Artefact
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    count_queries,
    ids,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    results,
    reviewer_client,
    reviewer_user,
    teammate,
    teammate_client,
)
from tests.factories import (
    TRIANGLE_CSV,
    ArtefactFactory,
    EngagementFactory,
    EngagementMemberFactory,
    UserFactory,
)
from tests.factories.states import NO_CONFLICT, artefact_in, audit_events_since, audit_mark

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "reviewer_client",
    "reviewer_user",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

ARTEFACTS = f"{API}/artefacts/"
NEW_TRIANGLE = b"origin,development,value\n2020,12,100\n2020,24,160\n2021,12,120\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def detail(artefact, suffix=""):
    return f"{ARTEFACTS}{artefact.pk}/{suffix}"


def csv_file(content=TRIANGLE_CSV, name="triangle.csv"):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def upload(client, engagement, content=TRIANGLE_CSV, name="triangle.csv", headers=None, **fields):
    data = {
        "file": csv_file(content, name),
        "engagement": str(engagement.pk),
        "artefact_type": "triangle",
        "name": "Paid triangle",
        **fields,
    }
    return client.post(ARTEFACTS, data, format="multipart", headers=headers)


def stored_files(media_root) -> list[Path]:
    return [path for path in Path(media_root).rglob("*") if path.is_file()]


def download_body(response) -> bytes:
    return b"".join(response.streaming_content)


# --- upload ---------------------------------------------------------------------------------


def test_upload_stores_the_bytes_with_their_hash_and_records_it(
    engagement, lead, lead_client, media_root
):
    mark = audit_mark()
    response = upload(
        lead_client,
        engagement,
        description="Paid claims, cumulative",
        metadata='{"lob": "motor"}',
        headers={"X-Trace-Id": "agent-7"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["content_hash"] == hashlib.sha256(TRIANGLE_CSV).hexdigest()
    assert (body["file_size"], body["mime_type"], body["file_name"]) == (
        len(TRIANGLE_CSV),
        "text/csv",
        "triangle.csv",
    )
    assert (body["status"], body["version"], body["previous_version"]) == ("draft", 1, None)
    assert body["metadata"] == {"lob": "motor"}
    assert body["trace_id"] == "agent-7"
    assert body["created_by"] == lead.pk
    assert body["download_url"].endswith(f"/api/v1/artefacts/{body['id']}/download/")
    assert "file" not in body  # the bytes are only served through the verified download
    artefact = Artefact.objects.get(pk=body["id"])
    (path,) = stored_files(media_root)
    assert path.read_bytes() == TRIANGLE_CSV
    assert Path(artefact.file.path) == path
    assert artefact.history.latest().history_user == lead
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.ARTEFACT_CREATE, lead)


def test_upload_name_defaults_to_the_file_name(engagement, lead_client):
    response = lead_client.post(
        ARTEFACTS,
        {"file": csv_file(), "engagement": str(engagement.pk), "artefact_type": "csv"},
        format="multipart",
    )
    assert response.json()["name"] == "triangle.csv"


def test_an_empty_file_is_refused(engagement, lead_client, media_root):
    body = assert_error(upload(lead_client, engagement, content=b""), 400, "invalid")
    assert set(body["errors"]) == {"file"}
    assert not Artefact.objects.exists()
    assert stored_files(media_root) == []


def test_a_format_the_type_does_not_allow_is_refused(engagement, lead_client, media_root):
    response = upload(lead_client, engagement, content=PNG, name="chart.png")
    body = assert_error(response, 400, "invalid", match="does not accept")
    assert body["errors"] == {"file": [body["detail"]]}  # the service names the input at fault
    assert not Artefact.objects.exists()
    assert stored_files(media_root) == []


def test_content_that_contradicts_its_name_is_refused(engagement, lead_client):
    response = upload(lead_client, engagement, content=PNG, name="triangle.csv")
    body = assert_error(response, 400, "invalid", match="does not match its name")
    assert set(body["errors"]) == {"file"}


def test_missing_fields_are_400_and_json_uploads_415(engagement, lead_client, media_root):
    body = assert_error(
        lead_client.post(ARTEFACTS, {"engagement": str(engagement.pk)}, format="multipart"),
        400,
        "invalid",
    )
    assert set(body["errors"]) == {"file", "artefact_type"}
    response = lead_client.post(
        ARTEFACTS, {"engagement": str(engagement.pk), "artefact_type": "csv", "file": "abc"}
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        match='"application/json" in request: this endpoint takes multipart/form-data',
    )
    assert stored_files(media_root) == []


def test_metadata_must_be_a_json_object(engagement, lead_client):
    body = assert_error(upload(lead_client, engagement, metadata="[1, 2"), 400, "invalid")
    assert set(body["errors"]) == {"metadata"}


def test_uploads_to_hidden_engagements_are_refused(outsider_client, media_root):
    hidden = EngagementFactory()
    body = assert_error(upload(outsider_client, hidden), 400, "invalid")
    assert "does not exist" in body["errors"]["engagement"][0]
    assert stored_files(media_root) == []


def test_uploads_need_a_working_role(engagement, outsider):
    EngagementMemberFactory(engagement=engagement, user=outsider, role="observer")
    response = upload(client_for(outsider), engagement)
    assert_error(response, 403, "not_allowed", match="may not upload artefacts")


def test_uploads_need_the_add_permission(engagement, viewer):
    assert_error(upload(viewer, engagement), 403, "permission_denied")


def test_an_oversize_upload_answers_413_and_stores_nothing(
    engagement, lead_client, settings, media_root
):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 32
    body = assert_error(upload(lead_client, engagement), 413, "file_too_large")
    assert body["max_size"] == 32
    assert "larger than the maximum upload size" in body["detail"]
    assert not Artefact.objects.exists()
    assert stored_files(media_root) == []


def test_an_oversize_upload_answers_413_through_a_session_with_csrf(
    engagement, lead, settings, media_root
):
    """The CSRF check reads the form before the view does: the cap must already be in place."""
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 32
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(lead)
    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    response = client.post(
        ARTEFACTS,
        {
            "csrfmiddlewaretoken": secret,
            "file": csv_file(),
            "engagement": str(engagement.pk),
            "artefact_type": "triangle",
        },
        format="multipart",
    )
    assert_error(response, 413, "file_too_large")
    assert stored_files(media_root) == []
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 1024
    response = client.post(
        ARTEFACTS,
        {
            "csrfmiddlewaretoken": secret,
            "file": csv_file(),
            "engagement": str(engagement.pk),
            "artefact_type": "triangle",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content


# --- reading, editing, deleting -------------------------------------------------------------


def test_list_and_detail_are_scoped(engagement, lead, lead_client, outsider_client):
    mine = artefact_in(engagement, actor=lead)
    hidden = ArtefactFactory(engagement=EngagementFactory())
    assert ids(lead_client.get(ARTEFACTS)) == {str(mine.pk)}
    assert ids(outsider_client.get(ARTEFACTS)) == set()
    for suffix in ("", "download/", "versions/"):
        assert_error(outsider_client.get(detail(mine, suffix)), 404, "not_found")
        assert_error(lead_client.get(detail(hidden, suffix)), 404, "not_found")


def test_edit_a_draft_and_record_it(engagement, lead, teammate, teammate_client):
    artefact = artefact_in(engagement, actor=lead)
    mark = audit_mark()
    response = teammate_client.patch(detail(artefact), {"name": "Incurred", "artefact_type": "csv"})
    assert response.status_code == 200, response.content
    artefact.refresh_from_db()
    assert (artefact.name, artefact.artefact_type, artefact.updated_by) == (
        "Incurred",
        "csv",
        teammate,
    )
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.ARTEFACT_UPDATE, teammate)


@pytest.mark.parametrize("method", ["patch", "put"])
def test_the_file_is_never_replaced(engagement, lead, lead_client, method):
    artefact = artefact_in(engagement, actor=lead)
    # Edits are JSON: a form carrying the bytes is not read at all.
    response = getattr(lead_client, method)(
        detail(artefact),
        {"file": csv_file(NEW_TRIANGLE), "name": "x"},
        format="multipart",
    )
    assert_error(
        response, 415, "unsupported_media_type", match="this endpoint takes application/json"
    )
    response = getattr(lead_client, method)(
        detail(artefact), {"file": "new.csv", "name": "x"}, format="json"
    )
    body = assert_error(response, 400, "invalid")
    assert body["errors"] == {"file": [FILE_NOT_REPLACEABLE]}
    assert "/versions/" in body["detail"]
    artefact.refresh_from_db()
    assert artefact.file.read() == TRIANGLE_CSV
    assert artefact.name != "x"


@pytest.mark.parametrize(
    "field",
    [
        "content_hash",
        "file_size",
        "mime_type",
        "file_name",
        "version",
        "previous_version",
        "status",
        "engagement",
        "workflow_run",
        "storage_bucket",
        "created_at",
    ],
)
def test_read_only_fields_are_refused(engagement, lead, lead_client, field):
    artefact = artefact_in(engagement, actor=lead)
    body = assert_error(lead_client.patch(detail(artefact), {field: "0"}), 400, "invalid")
    assert set(body["errors"]) == {field}


def test_only_drafts_are_edited(engagement, lead, lead_client):
    artefact = artefact_in(engagement, actor=lead)
    lead_client.post(detail(artefact, "submit/"))
    assert_error(
        lead_client.patch(detail(artefact), {"name": "x"}), 409, "conflict", match="only drafts"
    )


def test_delete_soft_deletes_but_never_an_approved_artefact(
    engagement, lead, reviewer_user, lead_client
):
    draft = artefact_in(engagement, actor=lead)
    mark = audit_mark()
    assert lead_client.delete(detail(draft)).status_code == 204
    assert Artefact.all_objects.get(pk=draft.pk).is_deleted
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.ARTEFACT_DELETE, lead)
    approved = artefact_in(engagement, actor=lead, content=NEW_TRIANGLE)
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=approved, actor=lead
    )
    approval_approve(
        approval=approval, actor=reviewer_user, conflict_of_interest_statement=NO_CONFLICT
    )
    assert_error(lead_client.delete(detail(approved)), 409, "conflict", match="it is approved")


# --- review moves ---------------------------------------------------------------------------


def test_submit_then_archive(engagement, lead, teammate, teammate_client):
    artefact = artefact_in(engagement, actor=lead)
    mark = audit_mark()
    response = teammate_client.post(detail(artefact, "submit/"))
    assert response.json()["status"] == "pending_review"
    body = assert_error(
        teammate_client.post(detail(artefact, "submit/")), 409, "invalid_transition"
    )
    assert body["status"] == "pending_review"
    assert teammate_client.post(detail(artefact, "archive/")).json()["status"] == "archived"
    body = assert_error(
        teammate_client.post(detail(artefact, "archive/")), 409, "invalid_transition"
    )
    assert body["status"] == "archived"
    events = audit_events_since(mark)
    assert [(event.metadata["move"], event.user) for event in events] == [
        ("submit_for_review", teammate),
        ("archive", teammate),
    ]


def test_archive_waits_for_a_pending_approval(engagement, lead, lead_client):
    artefact = artefact_in(engagement, actor=lead)
    approval_request(approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=lead)
    assert_error(
        lead_client.post(detail(artefact, "archive/")), 409, "conflict", match="still pending"
    )


@pytest.fixture
def viewer(engagement):
    """An actuary on the team who holds only view permissions."""
    user = UserFactory(username="viewer")
    EngagementMemberFactory(engagement=engagement, user=user, role="actuary")
    return client_for(reader(user))


def test_moves_need_the_change_permission(engagement, lead, viewer):
    artefact = artefact_in(engagement, actor=lead)
    assert_error(viewer.post(detail(artefact, "submit/")), 403, "permission_denied")


# --- versions -------------------------------------------------------------------------------


def test_a_new_version_supersedes_the_old_one(engagement, lead, lead_client, media_root):
    first = artefact_in(engagement, actor=lead)
    mark = audit_mark()
    response = lead_client.post(
        detail(first, "versions/"), {"file": csv_file(NEW_TRIANGLE)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["version"], body["previous_version"], body["name"]) == (
        2,
        str(first.pk),
        first.name,
    )
    assert body["content_hash"] == hashlib.sha256(NEW_TRIANGLE).hexdigest()
    first.refresh_from_db()
    assert first.status == "superseded"
    assert first.file.read() == TRIANGLE_CSV  # the old bytes stay as they were
    assert len(stored_files(media_root)) == 2
    events = audit_events_since(mark)
    assert [(e.action, e.user) for e in events if e.action == AuditAction.ARTEFACT_CREATE] == [
        (AuditAction.ARTEFACT_CREATE, lead)
    ]
    second = Artefact.objects.get(pk=body["id"])
    third = lead_client.post(
        detail(second, "versions/"),
        {"file": csv_file(TRIANGLE_CSV + b"2022,12,130\n"), "name": "Paid v3"},
        format="multipart",
    ).json()
    for artefact in (first, second):
        chain = lead_client.get(detail(artefact, "versions/")).json()
        assert [(row["version"], row["status"]) for row in chain] == [
            (1, "superseded"),
            (2, "superseded"),
            (3, "draft"),
        ]
        assert chain[-1]["id"] == third["id"]


def test_a_version_with_the_same_bytes_is_a_conflict(engagement, lead, lead_client, media_root):
    first = artefact_in(engagement, actor=lead)
    response = lead_client.post(
        detail(first, "versions/"), {"file": csv_file()}, format="multipart"
    )
    assert_error(response, 409, "conflict", match="identical")
    first.refresh_from_db()
    assert first.status == "draft"
    assert len(stored_files(media_root)) == 1


def test_an_oversize_version_answers_413(engagement, lead, lead_client, settings):
    first = artefact_in(engagement, actor=lead)
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 16
    response = lead_client.post(
        detail(first, "versions/"), {"file": csv_file(NEW_TRIANGLE)}, format="multipart"
    )
    assert_error(response, 413, "file_too_large")
    assert Artefact.objects.count() == 1


def test_versions_need_the_add_permission(engagement, lead, viewer):
    first = artefact_in(engagement, actor=lead)
    assert viewer.get(detail(first, "versions/")).status_code == 200
    response = viewer.post(
        detail(first, "versions/"), {"file": csv_file(NEW_TRIANGLE)}, format="multipart"
    )
    assert_error(response, 403, "permission_denied")


# --- download -------------------------------------------------------------------------------


def test_download_serves_the_verified_bytes_and_records_the_access(
    engagement, lead, teammate, teammate_client
):
    artefact = artefact_in(engagement, actor=lead)
    mark = audit_mark()
    response = teammate_client.get(detail(artefact, "download/"))
    assert response.status_code == 200
    assert download_body(response) == TRIANGLE_CSV
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"] == 'attachment; filename="triangle.csv"'
    assert response["ETag"] == f'"{hashlib.sha256(TRIANGLE_CSV).hexdigest()}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert int(response["Content-Length"]) == len(TRIANGLE_CSV)
    (event,) = audit_events_since(mark)
    assert (event.action, event.severity, event.user, event.resource_id) == (
        AuditAction.ARTEFACT_ACCESS,
        Severity.INFO,
        teammate,
        artefact.pk,
    )


def test_download_whatever_the_client_accepts(engagement, lead, lead_client):
    artefact = artefact_in(engagement, actor=lead)
    response = lead_client.get(detail(artefact, "download/"), HTTP_ACCEPT="application/pdf")
    assert download_body(response) == TRIANGLE_CSV


def test_observers_with_the_view_permission_download(engagement, lead, outsider):
    artefact = artefact_in(engagement, actor=lead)
    EngagementMemberFactory(engagement=engagement, user=outsider, role="observer")
    response = client_for(outsider).get(detail(artefact, "download/"))
    assert download_body(response) == TRIANGLE_CSV


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("{etag}", 304),
        ("W/{etag}", 304),
        ('"other", {etag}', 304),
        ("*", 304),
        ('"0000"', 200),
    ],
)
def test_if_none_match(engagement, lead, lead_client, header, status):
    artefact = artefact_in(engagement, actor=lead)
    etag = f'"{artefact.content_hash}"'
    mark = audit_mark()
    response = lead_client.get(
        detail(artefact, "download/"), HTTP_IF_NONE_MATCH=header.format(etag=etag)
    )
    assert response.status_code == status
    assert response["ETag"] == etag
    if status == 304:
        assert response.content == b""
        assert audit_events_since(mark) == []  # nothing was read, nothing was served


def test_a_corrupted_file_is_never_served(engagement, lead, lead_client):
    artefact = artefact_in(engagement, actor=lead)
    path = Path(artefact.file.path)
    damaged = bytearray(path.read_bytes())
    damaged[0] ^= 0x01
    path.write_bytes(bytes(damaged))
    response = lead_client.get(detail(artefact, "download/"))
    body = assert_error(response, 409, "artefact_file_unavailable", match="does not match")
    assert str(bytes(damaged[:5])) not in str(response.content)
    event = AuditLog.objects.get(severity=Severity.CRITICAL)
    assert (event.action, event.user, event.resource_id) == (
        AuditAction.ARTEFACT_ACCESS,
        lead,
        artefact.pk,
    )
    assert event.metadata["integrity_check"] == "corrupted"
    assert body["detail"].startswith("The file of artefact")


def test_a_missing_file_is_never_served(engagement, lead, lead_client):
    artefact = artefact_in(engagement, actor=lead)
    Path(artefact.file.path).unlink()
    assert_error(
        lead_client.get(detail(artefact, "download/")),
        409,
        "artefact_file_unavailable",
        match="missing from storage",
    )
    event = AuditLog.objects.get(severity=Severity.CRITICAL)
    assert (event.action, event.user, event.metadata["integrity_check"]) == (
        AuditAction.ARTEFACT_ACCESS,
        lead,
        "missing",
    )


def test_download_needs_authentication_and_the_view_permission(engagement, lead, api_client):
    artefact = artefact_in(engagement, actor=lead)
    assert_error(api_client.get(detail(artefact, "download/")), 401, "not_authenticated")
    member = UserFactory(username="no-permissions")
    EngagementMemberFactory(engagement=engagement, user=member, role="actuary")
    response = client_for(member).get(detail(artefact, "download/"))
    assert_error(response, 403, "permission_denied")


# --- query counts ---------------------------------------------------------------------------


def test_list_runs_a_fixed_number_of_queries(
    engagement, lead_client, django_assert_max_num_queries
):
    for index in range(100):
        ArtefactFactory(engagement=engagement, content=f"a,b\n{index},1\n".encode())
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(6):
            rows = results(lead_client.get(ARTEFACTS, {"page_size": page_size}))
        assert len(rows) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(ARTEFACTS, {"page_size": s})
        )
    assert counts[1] == counts[100]
