"""Artefact admin: upload, new version page, review/archive buttons and actions, via services."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_request
from artefacts.models import Artefact
from artefacts.services import artefact_archive, artefact_submit_for_review
from audit.choices import AuditAction
from tests.factories import TRIANGLE_CSV, SuperUserFactory
from tests.factories.states import (
    NO_CONFLICT,
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
)

pytestmark = pytest.mark.django_db

ADD = reverse("admin:artefacts_artefact_add")
CHANGELIST = reverse("admin:artefacts_artefact_changelist")
MOVES = ("submit_for_review", "new_version", "archive")


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


def change_url(artefact):
    return reverse("admin:artefacts_artefact_change", args=(artefact.pk,))


def move_url(artefact, move):
    return reverse("admin:artefacts_artefact_move", args=(artefact.pk, move))


def test_uploading_in_the_admin_goes_through_the_service(admin_client, admin_user, engagement):
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        "artefact_type": "triangle",
        "name": "",
        "metadata": "{}",
        "file": SimpleUploadedFile("incurred.csv", TRIANGLE_CSV, content_type="text/csv"),
    }
    mark = audit_mark()
    response = admin_client.post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    artefact = Artefact.objects.get(engagement=engagement)
    assert artefact.name == artefact.file_name == "incurred.csv"
    assert artefact.content_hash == hashlib.sha256(TRIANGLE_CSV).hexdigest()
    assert artefact.created_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_CREATE and event.user == admin_user


def test_an_upload_needs_a_file(admin_client, engagement):
    data = admin_form_data(admin_client.get(ADD)) | {
        "engagement": engagement.pk,
        "artefact_type": "csv",
        "metadata": "{}",
    }
    response = admin_client.post(ADD, data)
    assert response.status_code == 200
    assert "file" in response.context["adminform"].form.errors
    assert not Artefact.objects.exists()


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("draft", {"submit_for_review", "new_version", "archive"}),
        ("pending_review", {"new_version", "archive"}),
        ("archived", set()),
    ],
)
def test_the_change_page_shows_only_the_moves_valid_now(admin_client, draft, actuary, state, shown):
    if state == "pending_review":
        artefact_submit_for_review(artefact=draft, actor=actuary)
    elif state == "archived":
        artefact_archive(artefact=draft, actor=actuary)
    page = admin_client.get(change_url(draft))
    html = page.content.decode()
    for move in MOVES:
        assert (move_url(draft, move) in html) == (move in shown), move
    # The stored bytes are never edited in the form.
    assert "file" not in page.context["adminform"].form.fields


def test_submit_for_review_button_and_action(admin_client, admin_user, draft, engagement, actuary):
    response = admin_client.post(move_url(draft, "submit_for_review"))
    draft.refresh_from_db()
    assert draft.status == "pending_review" and draft.updated_by == admin_user
    assert admin_messages(response)[0][0] == "success"

    other = artefact_in(engagement, actor=actuary, content=b"other", name="Other")
    response = admin_client.post(
        CHANGELIST, {"action": "move_submit_for_review", "_selected_action": [draft.pk, other.pk]}
    )
    other.refresh_from_db()
    assert other.status == "pending_review"
    messages = admin_messages(response)
    assert ("success", "Submit for review: done for 1 artefact.") in messages
    assert any(level == "error" and "it is pending review" in text for level, text in messages)


def test_the_new_version_page_asks_for_the_file(admin_client, draft):
    page = admin_client.get(move_url(draft, "new_version"))
    assert page.status_code == 200
    assert "admin/artefacts/move_form.html" in [t.name for t in page.templates]
    assert b'enctype="multipart/form-data"' in page.content

    before = database_state()
    response = admin_client.post(move_url(draft, "new_version"), {})
    assert response.status_code == 200 and "upload" in response.context["form"].errors
    assert database_state() == before


def test_a_new_version_is_uploaded_through_the_service(admin_client, admin_user, draft):
    mark = audit_mark()
    response = admin_client.post(
        move_url(draft, "new_version"),
        {"upload": SimpleUploadedFile("triangle.csv", TRIANGLE_CSV + b"2023,12,1\n")},
    )
    assert response.status_code == 302 and response.url == change_url(draft)
    draft.refresh_from_db()
    new = Artefact.objects.get(previous_version=draft)
    assert draft.status == "superseded" and new.version == 2 and new.created_by == admin_user
    assert new.description == draft.description
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_CREATE and event.resource_id == new.pk


def test_identical_bytes_are_refused_as_a_new_version(admin_client, draft):
    before = database_state()
    response = admin_client.post(
        move_url(draft, "new_version"), {"upload": SimpleUploadedFile("same.csv", TRIANGLE_CSV)}
    )
    [(level, text)] = admin_messages(response)
    assert level == "error" and "a new version needs changed content" in text
    assert database_state() == before


def test_a_draft_is_described_through_the_service(admin_client, admin_user, draft):
    data = admin_form_data(admin_client.get(change_url(draft))) | {"description": "Gross of RI"}
    assert admin_client.post(change_url(draft), data).status_code == 302
    draft.refresh_from_db()
    assert draft.description == "Gross of RI" and draft.updated_by == admin_user
    assert draft.history.latest().history_change_reason == "Edited: description"


def test_an_approved_artefact_cannot_be_deleted(admin_client, draft, actuary, reviewer):
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=draft, actor=actuary
    )
    approval_approve(approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    before = database_state()
    response = admin_client.post(
        reverse("admin:artefacts_artefact_delete", args=(draft.pk,)), {"post": "yes"}
    )
    [(level, text)] = admin_messages(response)
    assert level == "error" and "it is approved (signed-off work is kept" in text
    assert database_state() == before


def test_a_draft_is_soft_deleted_through_the_service(admin_client, admin_user, draft):
    mark = audit_mark()
    admin_client.post(reverse("admin:artefacts_artefact_delete", args=(draft.pk,)), {"post": "yes"})
    assert Artefact.all_objects.get(pk=draft.pk).deleted_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_DELETE and event.user == admin_user
