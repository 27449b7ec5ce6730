"""Artefact admin and its bytes: upload, size limit, no replacement, versions, download, preview."""

import hashlib
import struct
import zlib
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request, approval_revoke
from artefacts.admin import (
    CSV_PREVIEW_MAX_BYTES,
    PREVIEW_NOT_UTF8,
    ArtefactAdmin,
    csv_preview,
)
from artefacts.files import PNG_MAGIC
from artefacts.models import Artefact
from artefacts.services import EDITABLE_FIELDS, artefact_create
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from records.admin import NOT_SAVED
from tests.factories import TRIANGLE_CSV, SuperUserFactory, UserFactory
from tests.factories.states import (
    NO_CONFLICT,
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    grant,
    upload,
)

pytestmark = pytest.mark.django_db

ADD = reverse("admin:artefacts_artefact_add")
REVISED_CSV = TRIANGLE_CSV + b"2022,12,120\n"
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'


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


def change_url(artefact):
    return reverse("admin:artefacts_artefact_change", args=(artefact.pk,))


def move_url(artefact, move):
    return reverse("admin:artefacts_artefact_move", args=(artefact.pk, move))


def download_url(artefact):
    return reverse("admin:artefacts_artefact_download", args=(artefact.pk,))


def served(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def admin_user(db):
    return SuperUserFactory(username="admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def draft(engagement, actuary):
    return artefact_in(engagement, actor=actuary)


def add_data(client, engagement, file, **fields):
    """Return the add form as a user fills it: engagement, type and the file."""
    return admin_form_data(client.get(ADD)) | {
        "engagement": engagement.pk,
        "artefact_type": "triangle",
        "name": "",
        "metadata": "{}",
        "file": file,
        **fields,
    }


# --- upload through the add form ---------------------------------------------------------


def test_the_add_form_asks_for_a_file_with_the_limit(admin_client, settings):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 5 * 1024 * 1024
    page = admin_client.get(ADD)
    form = page.context["adminform"].form
    assert list(form.fields)[-1] == "file" and form.fields["file"].required
    assert "at most 5.0\xa0MB" in form.fields["file"].help_text
    # Everything about the bytes comes from them, never from the form.
    assert not {"content_hash", "file_size", "mime_type", "storage_bucket"} & set(form.fields)
    assert b'enctype="multipart/form-data"' in page.content


def test_an_upload_in_the_add_form_is_stored_hashed_and_recorded(
    admin_client, admin_user, engagement, media_root
):
    mark = audit_mark()
    response = admin_client.post(
        ADD, add_data(admin_client, engagement, SimpleUploadedFile("paid.csv", TRIANGLE_CSV))
    )

    assert response.status_code == 302
    artefact = Artefact.objects.get(engagement=engagement)
    assert artefact.content_hash == hashlib.sha256(TRIANGLE_CSV).hexdigest()
    assert (artefact.file_size, artefact.mime_type, artefact.file_name) == (
        len(TRIANGLE_CSV),
        "text/csv",
        "paid.csv",
    )
    [path] = stored_files(media_root)
    assert path.read_bytes() == TRIANGLE_CSV
    assert artefact.file.name == str(path.relative_to(media_root))
    [event] = audit_events_since(mark)
    assert (event.action, event.user, event.resource_id) == (
        AuditAction.ARTEFACT_CREATE,
        admin_user,
        artefact.pk,
    )


def test_the_upload_works_with_csrf_checks_enforced(admin_user, engagement):
    """The size-limit handler goes in before the CSRF check reads the body."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    data = add_data(client, engagement, SimpleUploadedFile("paid.csv", TRIANGLE_CSV))

    refused = client.post(ADD, data)
    assert refused.status_code == 403

    data["file"] = SimpleUploadedFile("paid.csv", TRIANGLE_CSV)
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    assert client.post(ADD, data).status_code == 302
    assert Artefact.objects.filter(engagement=engagement).count() == 1


@pytest.mark.parametrize("enforce_csrf", [False, True])
def test_an_oversize_upload_is_a_form_error_leaving_nothing(
    admin_user, engagement, media_root, settings, enforce_csrf
):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 1024
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(admin_user)
    data = add_data(
        client,
        engagement,
        SimpleUploadedFile("huge.csv", b"a,b\n" + b"1,2\n" * 1000),
        name="Huge",
    )
    if enforce_csrf:
        # First, as the admin form sends it: fields after a stopped file are never read.
        data = {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, **data}
    before = database_state()

    response = client.post(ADD, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["file"] == [
        "The file “huge.csv” is larger than the maximum upload size of 1 KB (1024 bytes)."
    ]
    # What came before the file in the form is kept for the next try.
    assert form["name"].value() == "Huge" and form["engagement"].value() == str(engagement.pk)
    assert database_state() == before
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    ("file", "artefact_type", "field_error", "message"),
    [
        (SimpleUploadedFile("empty.csv", b""), "triangle", "The submitted file is empty.", None),
        (
            SimpleUploadedFile("chart.png", png_bytes()),
            "csv",
            NOT_SAVED,
            "Artefact type “csv” does not accept PNG image (image/png) files (“chart.png”)",
        ),
        (
            SimpleUploadedFile("run.exe", b"MZ\x90\x00"),
            "triangle",
            NOT_SAVED,
            "does not accept “.exe”",
        ),
        (
            SimpleUploadedFile("paid.csv", png_bytes()),
            "triangle",
            NOT_SAVED,
            "does not match its name: the name says CSV (text/csv), the content is PNG image",
        ),
    ],
)
def test_an_empty_or_disallowed_file_is_refused_with_a_message(
    admin_client, engagement, media_root, file, artefact_type, field_error, message
):
    before = database_state()
    response = admin_client.post(
        ADD, add_data(admin_client, engagement, file, artefact_type=artefact_type)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field_error in errors.get("file", []) + errors.get("__all__", [])
    if message is not None:
        [(level, text)] = admin_messages(response)
        assert level == "error" and message in text
    assert database_state() == before
    assert stored_files(media_root) == []


def test_a_rollback_of_the_admins_transaction_takes_the_file_away(
    admin_client, engagement, media_root
):
    """A failure after the service returned (here: the admin log entry) leaves no bytes."""
    with (
        mock.patch.object(ArtefactAdmin, "log_addition", side_effect=RuntimeError("log")),
        pytest.raises(RuntimeError, match="log"),
    ):
        admin_client.post(
            ADD, add_data(admin_client, engagement, SimpleUploadedFile("paid.csv", TRIANGLE_CSV))
        )
    assert not Artefact.all_objects.exists()
    assert stored_files(media_root) == []


# --- the bytes never change in place ------------------------------------------------------


def test_the_change_form_cannot_replace_the_file(admin_client, draft, media_root):
    page = admin_client.get(change_url(draft))
    # Only a draft's description is editable; nothing about its bytes.
    assert set(page.context["adminform"].form.fields) == set(EDITABLE_FIELDS)
    files = stored_files(media_root)
    data = admin_form_data(page) | {
        "description": "Gross of RI",
        "file": SimpleUploadedFile("triangle.csv", REVISED_CSV),
        "content_hash": "0" * 64,
        "file_size": "1",
        "storage_bucket": "elsewhere",
    }

    assert admin_client.post(change_url(draft), data).status_code == 302

    artefact = Artefact.objects.get(pk=draft.pk)
    assert artefact.description == "Gross of RI"
    assert (artefact.file.name, artefact.content_hash, artefact.file_size) == (
        draft.file.name,
        draft.content_hash,
        draft.file_size,
    )
    assert artefact.storage_bucket == "artefacts"
    assert stored_files(media_root) == files
    assert files[0].read_bytes() == TRIANGLE_CSV


def test_a_new_version_through_the_admin_page_keeps_both_files(
    admin_client, admin_user, draft, media_root
):
    response = admin_client.post(
        move_url(draft, "new_version"),
        {"upload": SimpleUploadedFile("triangle.csv", REVISED_CSV), "description": "Adds 2022"},
    )

    assert response.status_code == 302
    draft.refresh_from_db()
    new = Artefact.objects.get(previous_version=draft)
    assert (draft.status, new.version, new.status, new.created_by) == (
        "superseded",
        2,
        "draft",
        admin_user,
    )
    assert new.content_hash == hashlib.sha256(REVISED_CSV).hexdigest()
    contents = {path.read_bytes() for path in stored_files(media_root)}
    assert contents == {TRIANGLE_CSV, REVISED_CSV}

    # Each version links to the other on its change page.
    old_page = admin_client.get(change_url(draft)).content.decode()
    new_page = admin_client.get(change_url(new)).content.decode()
    assert f'href="{change_url(new)}"' in old_page and "this version" in old_page
    assert f'href="{change_url(draft)}"' in new_page
    assert "v1 · Paid claims triangle · Superseded" in new_page


@pytest.mark.parametrize("enforce_csrf", [False, True])
def test_an_oversize_new_version_is_a_form_error(
    admin_user, draft, media_root, settings, enforce_csrf
):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = len(TRIANGLE_CSV)
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.force_login(admin_user)
    client.get(move_url(draft, "new_version"))
    data = {"description": "Too big", "upload": SimpleUploadedFile("triangle.csv", REVISED_CSV)}
    if enforce_csrf:
        data = {"csrfmiddlewaretoken": client.cookies["csrftoken"].value, **data}
    files = stored_files(media_root)
    before = database_state()

    response = client.post(move_url(draft, "new_version"), data)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["upload"] == [
        f"The file “triangle.csv” is larger than the maximum upload size of "
        f"{len(TRIANGLE_CSV)} bytes ({len(TRIANGLE_CSV)} bytes)."
    ]
    assert form["description"].value() == "Too big"
    assert database_state() == before
    assert stored_files(media_root) == files


def test_a_disallowed_new_version_is_refused_with_a_message(admin_client, engagement, actuary):
    triangle = artefact_in(engagement, actor=actuary, artefact_type="triangle")
    before = database_state()
    response = admin_client.post(
        move_url(triangle, "new_version"),
        {"upload": SimpleUploadedFile("chart.png", png_bytes())},
    )
    assert response.status_code == 302
    [(level, text)] = admin_messages(response)
    assert level == "error" and "Artefact type “triangle” does not accept PNG image" in text
    assert database_state() == before


# --- the change page ----------------------------------------------------------------------


def test_the_change_page_shows_hash_size_mime_and_a_download_link(admin_client, draft):
    html = admin_client.get(change_url(draft)).content.decode()
    assert draft.content_hash in html
    assert f'<div class="readonly">{len(TRIANGLE_CSV)}\xa0bytes</div>' in html
    assert "text/csv" in html
    assert f'href="{download_url(draft)}"' in html and "Download “triangle.csv”" in html
    # Never a link to the storage's own URL, which would skip the hash check.
    assert draft.file.url not in html


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0\xa0bytes"), (1023, "1023\xa0bytes"), (1536, "1.5\xa0KB (1,536 bytes)")],
)
def test_the_size_is_shown_for_people(size, shown):
    assert ArtefactAdmin.file_size_display(None, Artefact(file_size=size)) == shown


def test_the_change_page_lists_the_approvals(admin_client, draft, actuary, reviewer):
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=draft, actor=actuary
    )
    approval_approve(approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    approval_revoke(approval=approval, actor=reviewer, reason="Wrong cut-off date")
    pending = approval_request(
        approval_type=ApprovalType.PEER_REVIEW,
        artefact=draft,
        actor=actuary,
        designated_approver=reviewer,
    )

    html = admin_client.get(change_url(draft)).content.decode()

    approved_url = reverse("admin:approvals_approval_change", args=(approval.pk,))
    pending_url = reverse("admin:approvals_approval_change", args=(pending.pk,))
    assert f'<a href="{approved_url}">Artefact review</a>: Revoked, approver reviewer' in html
    assert f'<a href="{pending_url}">Peer review</a>: Pending, approver designated: reviewer' in (
        html
    )


def test_a_csv_artefact_shows_its_first_rows(admin_client, admin_user, engagement, actuary):
    content = b"origin,development,value\n" + b"".join(
        f"{2000 + row},12,{row}\n".encode() for row in range(30)
    )
    artefact = artefact_in(engagement, actor=actuary, content=content)
    mark = audit_mark()

    page = admin_client.get(change_url(artefact))

    preview = page.context["artefact_csv_preview"]
    assert preview.header == ["origin", "development", "value"]
    assert len(preview.rows) == 20 and preview.rows[-1] == ["2019", "12", "19"]
    html = page.content.decode()
    assert '<th scope="col">development</th>' in html
    assert "<td>2019</td>" in html and "<td>2020</td>" not in html
    assert "The first 20 rows; download the file for the rest." in html
    [event] = audit_events_since(mark)
    assert (event.action, event.user, event.metadata["purpose"]) == (
        AuditAction.ARTEFACT_ACCESS,
        admin_user,
        "preview",
    )


def test_the_csv_preview_escapes_the_content(admin_client, engagement, actuary):
    artefact = artefact_in(engagement, actor=actuary, content=b"a,b\n<script>x</script>,2\n")
    html = admin_client.get(change_url(artefact)).content.decode()
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_a_corrupted_csv_shows_no_rows_and_is_recorded(admin_client, draft, media_root):
    (media_root / draft.file.name).write_bytes(b"origin,value\n2020,tampered-figure\n")
    page = admin_client.get(change_url(draft))
    assert page.status_code == 200
    assert "artefact_csv_preview" not in page.context
    html = page.content.decode()
    assert "No preview: The file of artefact" in html and "does not match its record" in html
    assert "tampered-figure" not in html
    assert AuditLog.objects.filter(resource_id=draft.pk, severity=Severity.CRITICAL).exists()


@pytest.fixture
def png_chart(engagement, actuary):
    return artefact_create(
        engagement=engagement,
        upload=upload(png_bytes(), "loss ratios.png"),
        artefact_type="chart",
        actor=actuary,
    )


def test_a_png_artefact_shows_the_image_inline(admin_client, png_chart):
    html = admin_client.get(change_url(png_chart)).content.decode()
    image_url = f"{download_url(png_chart)}?inline=1"
    assert f'<img src="{image_url}"' in html

    response = admin_client.get(image_url)
    assert response.status_code == 200 and served(response) == png_bytes()
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline;")


def test_a_refused_inline_image_answers_409_without_bytes(admin_client, png_chart, media_root):
    (media_root / png_chart.file.name).unlink()
    response = admin_client.get(f"{download_url(png_chart)}?inline=1")
    assert response.status_code == 409
    assert "is missing from storage" in response.content.decode()
    assert AuditLog.objects.filter(resource_id=png_chart.pk, severity=Severity.CRITICAL).exists()


def test_an_svg_is_never_shown_inline(admin_client, engagement, actuary):
    svg = artefact_create(
        engagement=engagement, upload=upload(SVG, "chart.svg"), artefact_type="chart", actor=actuary
    )
    page = admin_client.get(change_url(svg))
    assert "artefact_image_url" not in page.context
    assert "?inline=1" not in page.content.decode()
    response = admin_client.get(f"{download_url(svg)}?inline=1")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"


# --- download -----------------------------------------------------------------------------


def test_download_serves_the_identical_bytes_with_name_and_etag(admin_client, admin_user, draft):
    mark = audit_mark()
    response = admin_client.get(download_url(draft))

    assert response.status_code == 200
    assert served(response) == TRIANGLE_CSV
    assert response["Content-Disposition"] == 'attachment; filename="triangle.csv"'
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Length"] == str(len(TRIANGLE_CSV))
    assert response["ETag"] == f'"{hashlib.sha256(TRIANGLE_CSV).hexdigest()}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    [event] = audit_events_since(mark)
    assert (event.action, event.severity, event.user, event.metadata["purpose"]) == (
        AuditAction.ARTEFACT_ACCESS,
        Severity.INFO,
        admin_user,
        "download",
    )


def test_a_non_ascii_file_name_is_kept_in_the_download(admin_client, engagement, actuary):
    artefact = artefact_create(
        engagement=engagement,
        upload=upload(TRIANGLE_CSV, "triangle_sinistres_réglés.csv"),
        actor=actuary,
    )
    response = admin_client.get(download_url(artefact))
    assert (
        "filename*=utf-8''triangle_sinistres_r%C3%A9gl%C3%A9s.csv"
        in (response["Content-Disposition"])
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [("delete", "is missing from storage"), ("change", "does not match its record")],
)
def test_a_missing_or_corrupted_file_is_never_downloaded(
    admin_client, admin_user, draft, media_root, damage, message
):
    path = media_root / draft.file.name
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(TRIANGLE_CSV.replace(b"100", b"900"))
    mark = audit_mark()

    response = admin_client.get(download_url(draft))

    assert response.status_code == 302 and response.url == change_url(draft)
    assert not getattr(response, "streaming", False)
    [(level, text)] = admin_messages(response)
    assert level == "error" and message in text
    [event] = audit_events_since(mark)
    assert (event.action, event.severity, event.user) == (
        AuditAction.ARTEFACT_ACCESS,
        Severity.CRITICAL,
        admin_user,
    )
    assert event.metadata["source"] == "download"


def test_staff_outside_the_engagement_cannot_download(draft):
    staff = grant(UserFactory(username="clerk", is_staff=True), "artefacts.view_artefact")
    client = Client()
    client.force_login(staff)
    mark = audit_mark()
    response = client.get(download_url(draft))
    assert response.status_code == 302 and response.url == reverse("admin:index")
    assert audit_events_since(mark) == []


def test_a_team_member_without_admin_view_permission_is_refused(draft, actuary):
    client = Client()
    client.force_login(actuary)
    response = client.get(download_url(draft))
    assert response.status_code == 403


# --- the CSV preview on its own -----------------------------------------------------------


class Reader:
    """A binary file that counts how much was read from it."""

    def __init__(self, content: bytes):
        self.content = content
        self.read_bytes = 0

    def read(self, size=-1):
        chunk = self.content[self.read_bytes : self.read_bytes + size]
        self.read_bytes += len(chunk)
        return chunk


def test_the_preview_reads_a_bounded_head_of_a_huge_file():
    huge = Reader(b"a,b\n" + b"1,2\n" * 1_000_000)
    preview = csv_preview(huge, rows=5)
    assert huge.read_bytes == CSV_PREVIEW_MAX_BYTES + 1
    assert preview.header == ["a", "b"] and len(preview.rows) == 5


def test_one_long_line_costs_no_more_than_the_limit():
    line = Reader(b"x," * (CSV_PREVIEW_MAX_BYTES * 4))
    preview = csv_preview(line)
    assert line.read_bytes == CSV_PREVIEW_MAX_BYTES + 1
    assert preview.header == [] and preview.rows == []
    assert "Only the first 256.0\xa0KB of the file were read" in preview.notes[0]


def test_text_that_is_not_utf8_is_shown_with_a_note():
    preview = csv_preview(Reader("région;montant\nÎle-de-France;12\n".encode("cp1252")))
    assert preview.header == ["région", "montant"]
    assert preview.rows == [["Île-de-France", "12"]]
    assert preview.notes == [PREVIEW_NOT_UTF8]


def test_a_utf8_character_cut_by_the_limit_is_not_an_error():
    content = b"a\n" + ("é" * CSV_PREVIEW_MAX_BYTES).encode()
    preview = csv_preview(Reader(content))
    assert preview.header == ["a"] and PREVIEW_NOT_UTF8 not in preview.notes


def test_long_cells_and_wide_rows_are_cut():
    wide = ",".join(f"c{i}" for i in range(80)) + "\n" + "y" * 500 + "\n"
    preview = csv_preview(Reader(wide.encode()))
    assert len(preview.header) == 50 and preview.rows[0][0] == "y" * 199 + "…"
    assert "Only the first 50 columns are shown." in preview.notes
