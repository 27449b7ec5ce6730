"""Artefact services: upload (hash, size), versions, edit, review submission, archive, delete."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject, approval_request
from artefacts.models import Artefact
from artefacts.services import (
    artefact_archive,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    artefact_submit_for_review,
    artefact_update,
)
from audit.choices import AuditAction
from engagements.choices import TeamRole
from records.exceptions import Conflict, InvalidInput, InvalidTransition, NotAllowed
from tests.factories import TRIANGLE_CSV, EngagementFactory, EngagementMemberFactory, UserFactory
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
    upload,
)

pytestmark = pytest.mark.django_db

REVISED_CSV = TRIANGLE_CSV + b"2022,12,120\n"


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role=TeamRole.OBSERVER)
    return observer


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def draft(engagement, actuary):
    return artefact_in(engagement, actor=actuary)


def stored_files(media_root):
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def approved(artefact, *, requester, approver):
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=requester
    )
    approval_approve(approval=approval, actor=approver, conflict_of_interest_statement=NO_CONFLICT)
    artefact.refresh_from_db()
    return artefact


# --- create -------------------------------------------------------------------------------


def test_upload_stores_the_bytes_with_their_sha256_and_size(engagement, actuary, media_root):
    run = run_in(engagement, actor=actuary)
    mark = audit_mark()

    artefact = artefact_create(
        engagement=engagement,
        upload=upload(TRIANGLE_CSV, "paid triangle.csv"),
        artefact_type="triangle",
        workflow_run=run,
        actor=actuary,
    )

    artefact.refresh_from_db()
    assert artefact.status == "draft" and artefact.version == 1
    assert artefact.name == artefact.file_name == "paid triangle.csv"
    assert artefact.content_hash == hashlib.sha256(TRIANGLE_CSV).hexdigest()
    assert artefact.file_size == len(TRIANGLE_CSV)
    assert artefact.mime_type == "text/csv"
    assert artefact.storage_path == artefact.file.name
    assert f"{engagement.pk}/{artefact.content_hash[:2]}/{artefact.content_hash}/" in (
        artefact.file.name
    )
    with artefact.file.open("rb") as stored:
        assert stored.read() == TRIANGLE_CSV
    assert artefact.created_by == actuary
    assert artefact.history.latest().history_change_reason == "Uploaded"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_CREATE and event.user == actuary
    assert event.resource_id == artefact.pk and event.engagement_id == engagement.pk
    assert event.new_value["content_hash"] == artefact.content_hash
    assert event.new_value["workflow_run"] == str(run.pk)
    assert len(stored_files(media_root)) == 1


def test_the_mime_type_comes_from_the_bytes_not_the_client(engagement, actuary):
    file = SimpleUploadedFile("triangle.csv", TRIANGLE_CSV, content_type="application/x-model")
    artefact = artefact_create(
        engagement=engagement, upload=file, actor=actuary, name="Model", mime_type="image/png"
    )
    assert artefact.mime_type == "text/csv" and artefact.name == "Model"


@pytest.mark.parametrize(
    ("who", "kwargs", "error", "match"),
    [
        ("outsider", {}, NotAllowed, "may not upload artefacts to engagement .*not on its team"),
        ("observer", {}, NotAllowed, "role on its team is observer"),
        ("actuary", {"content": b""}, InvalidInput, "“triangle.csv” is empty"),
        ("actuary", {"other_run": True}, InvalidInput, "belongs to another engagement"),
        ("actuary", {"name": "x" * 300}, InvalidInput, "name: Ensure this value has at most 255"),
        ("actuary", {"artefact_type": "scroll"}, InvalidInput, "artefact_type: Value 'scroll'"),
    ],
)
def test_create_refusals_store_and_change_nothing(
    request, engagement, actuary, media_root, who, kwargs, error, match
):
    actor = request.getfixturevalue(who)
    content = kwargs.pop("content", TRIANGLE_CSV)
    if kwargs.pop("other_run", False):
        kwargs["workflow_run"] = run_in(
            EngagementFactory(), actor=UserFactory(is_superuser=True, username="su")
        )
    before = database_state()
    with pytest.raises(error, match=match):
        artefact_create(engagement=engagement, upload=upload(content), actor=actor, **kwargs)
    assert database_state() == before
    assert stored_files(media_root) == []


# --- new version --------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "pending_review", "approved", "rejected"])
def test_a_new_version_supersedes_the_previous_one(engagement, actuary, reviewer, draft, state):
    previous = draft
    if state == "pending_review":
        previous = artefact_submit_for_review(artefact=previous, actor=actuary)
    elif state == "approved":
        previous = approved(previous, requester=actuary, approver=reviewer)
    elif state == "rejected":
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=previous, actor=actuary
        )
        approval_reject(
            approval=approval,
            actor=reviewer,
            reason="Wrong cut-off",
            conflict_of_interest_statement=NO_CONFLICT,
        )
    mark = audit_mark()

    new = artefact_new_version(
        artefact=previous, upload=upload(REVISED_CSV), actor=reviewer, description="Adds 2022"
    )

    previous.refresh_from_db()
    new.refresh_from_db()
    assert previous.status == "superseded"
    assert previous.content_hash == hashlib.sha256(TRIANGLE_CSV).hexdigest()
    with previous.file.open("rb") as stored:
        assert stored.read() == TRIANGLE_CSV  # the old bytes never change
    assert (new.version, new.previous_version, new.status) == (2, previous, "draft")
    assert new.content_hash == hashlib.sha256(REVISED_CSV).hexdigest()
    assert (new.name, new.artefact_type, new.engagement) == (
        previous.name,
        previous.artefact_type,
        engagement,
    )
    assert new.description == "Adds 2022" and new.created_by == reviewer
    assert previous.history.latest().history_change_reason == "Supersede"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_CREATE and event.resource_id == new.pk
    assert event.metadata == {"previous_version_id": str(previous.pk)}
    assert event.new_value["version"] == 2


def test_new_version_refusals_change_nothing(engagement, actuary, draft, outsider, media_root):
    v2 = artefact_new_version(artefact=draft, upload=upload(REVISED_CSV), actor=actuary)
    artefact_submit_for_review(artefact=v2, actor=actuary)
    approval_request(approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=v2, actor=actuary)
    files = stored_files(media_root)
    before = database_state()

    cases = [
        (draft, REVISED_CSV + b"x", actuary, InvalidTransition, "Cannot supersede .*superseded"),
        (v2, REVISED_CSV + b"x", actuary, Conflict, "is still pending; have it decided first"),
        (v2, REVISED_CSV + b"x", outsider, NotAllowed, "not on its team"),
    ]
    for artefact, content, actor, error, match in cases:
        with pytest.raises(error, match=match):
            artefact_new_version(artefact=artefact, upload=upload(content), actor=actor)

    assert database_state() == before
    assert stored_files(media_root) == files


def test_a_new_version_needs_changed_bytes(draft, actuary, media_root):
    files = stored_files(media_root)
    before = database_state()
    with pytest.raises(Conflict, match=r"identical to artefact .* a new version needs changed"):
        artefact_new_version(artefact=draft, upload=upload(TRIANGLE_CSV), actor=actuary)
    assert database_state() == before
    assert stored_files(media_root) == files


# --- edit, submit, archive, delete --------------------------------------------------------


def test_a_draft_can_be_described(draft, actuary):
    mark = audit_mark()
    artefact = artefact_update(
        artefact=draft, actor=actuary, data={"name": "Incurred triangle", "metadata": {"lob": 1}}
    )
    artefact.refresh_from_db()
    assert (artefact.name, artefact.metadata) == ("Incurred triangle", {"lob": 1})
    assert artefact.history.latest().history_change_reason == "Edited: metadata, name"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_UPDATE and event.user == actuary
    assert event.new_value == {"name": "Incurred triangle", "metadata": {"lob": 1}}


@pytest.mark.parametrize(
    ("data", "submitted", "error", "match"),
    [
        ({"name": "x"}, True, Conflict, "it is pending review \\(only drafts may be edited"),
        ({"content_hash": "0" * 64}, False, InvalidInput, "Cannot change content_hash"),
        ({"file_size": 1}, False, InvalidInput, "they come from its file or its review"),
        ({"status": "approved"}, False, InvalidInput, "Cannot change status"),
    ],
)
def test_edit_refusals_change_nothing(draft, actuary, data, submitted, error, match):
    if submitted:
        artefact_submit_for_review(artefact=draft, actor=actuary)
    before = database_state()
    with pytest.raises(error, match=match):
        artefact_update(artefact=draft, actor=actuary, data=data)
    assert database_state() == before


def test_submit_for_review_is_on_record(draft, actuary):
    mark = audit_mark()
    artefact = artefact_submit_for_review(artefact=draft, actor=actuary)
    artefact.refresh_from_db()
    assert artefact.status == "pending_review" and artefact.updated_by == actuary
    assert artefact.history.latest().history_change_reason == "Submit for review"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_UPDATE and event.user == actuary
    assert event.old_value == {"status": "draft"}
    assert event.new_value == {"status": "pending_review"}


@pytest.mark.parametrize(
    ("who", "submitted", "error", "match"),
    [
        ("actuary", True, InvalidTransition, "Cannot submit for review .*: it is pending review"),
        ("observer", False, NotAllowed, "may not submit artefacts of engagement"),
    ],
)
def test_submit_refusals_change_nothing(request, draft, actuary, who, submitted, error, match):
    actor = request.getfixturevalue(who)
    if submitted:
        artefact_submit_for_review(artefact=draft, actor=actuary)
    before = database_state()
    with pytest.raises(error, match=match):
        artefact_submit_for_review(artefact=draft, actor=actor)
    assert database_state() == before


def test_archive(draft, actuary):
    mark = audit_mark()
    assert artefact_archive(artefact=draft, actor=actuary).status == "archived"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_UPDATE and event.new_value == {"status": "archived"}
    with pytest.raises(InvalidTransition, match=r"Cannot archive .*: it is archived"):
        artefact_archive(artefact=draft, actor=actuary)


def test_archive_waits_for_a_pending_approval(draft, actuary):
    approval_request(approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=draft, actor=actuary)
    before = database_state()
    with pytest.raises(Conflict, match=r"Cannot archive artefact .* is still pending"):
        artefact_archive(artefact=draft, actor=actuary)
    assert database_state() == before


def test_delete_hides_the_artefact_and_records_it(draft, actuary):
    mark = audit_mark()
    artefact_delete(artefact=draft, actor=actuary)
    assert not Artefact.objects.filter(pk=draft.pk).exists()
    assert Artefact.all_objects.get(pk=draft.pk).deleted_by == actuary
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ARTEFACT_DELETE and event.user == actuary
    assert event.new_value["is_deleted"] is True


def test_delete_refusals_change_nothing(engagement, draft, actuary, reviewer, outsider):
    signed = approved(artefact_in(engagement, actor=actuary), requester=actuary, approver=reviewer)
    approval_request(approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=draft, actor=actuary)
    before = database_state()
    cases = [
        (signed, actuary, Conflict, "it is approved \\(signed-off work is kept"),
        (draft, actuary, Conflict, "Cannot delete artefact .* is still pending"),
        (draft, outsider, NotAllowed, "may not delete artefacts of engagement"),
    ]
    for artefact, actor, error, match in cases:
        with pytest.raises(error, match=match):
            artefact_delete(artefact=artefact, actor=actor)
    assert database_state() == before
