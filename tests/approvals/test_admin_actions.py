"""Approval admin: decision pages asking for notes / a reason, bulk decisions, refusals."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.models import Approval, ProfessionalQualification
from approvals.services import approval_approve, approval_reject, approval_request
from audit.choices import AuditAction
from tests.factories import SuperUserFactory
from tests.factories.states import (
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    grant,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:approvals_approval_changelist")
ADD = reverse("admin:approvals_approval_add")
# Every decision records the decider's conflict-of-interest statement.
STATEMENT = "No conflict: I took no part in this work."
APPROVAL_PERMISSIONS = (
    "approvals.view_approval",
    "approvals.add_approval",
    "approvals.change_approval",
)


@pytest.fixture
def artefact(engagement, actuary):
    return artefact_in(engagement, actor=actuary)


@pytest.fixture
def review(artefact, actuary):
    return approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=actuary
    )


@pytest.fixture
def reviewer_client(client, reviewer):
    client.force_login(grant(reviewer, *APPROVAL_PERMISSIONS))
    return client


@pytest.fixture
def actuary_client(client, actuary):
    client.force_login(grant(actuary, *APPROVAL_PERMISSIONS))
    return client


def change_url(approval):
    return reverse("admin:approvals_approval_change", args=(approval.pk,))


def move_url(approval, move):
    return reverse("admin:approvals_approval_move", args=(approval.pk, move))


def test_a_pending_approval_offers_approve_and_reject(reviewer_client, review, reviewer):
    html = reviewer_client.get(change_url(review)).content.decode()
    assert move_url(review, "approve") in html and move_url(review, "reject") in html
    assert move_url(review, "revoke") not in html
    assert move_url(review, "expire") not in html  # no expiry date has passed

    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=STATEMENT)
    html = reviewer_client.get(change_url(review)).content.decode()
    assert move_url(review, "revoke") in html and move_url(review, "approve") not in html


def test_expire_is_offered_once_the_date_has_passed(
    monkeypatch, reviewer_client, artefact, actuary
):
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=artefact,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
        actor=actuary,
    )
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(hours=2))
    assert (
        move_url(approval, "expire") in reviewer_client.get(change_url(approval)).content.decode()
    )
    response = reviewer_client.post(move_url(approval, "expire"))
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "expired"


def test_approve_asks_for_notes_then_calls_the_service(reviewer_client, review, reviewer, artefact):
    page = reviewer_client.get(move_url(review, "approve"))
    assert page.status_code == 200
    assert "admin/approvals/move_form.html" in [t.name for t in page.templates]
    assert list(page.context["form"].fields) == ["conflict_of_interest_statement", "notes"]
    mark = audit_mark()

    response = reviewer_client.post(
        move_url(review, "approve"),
        {"notes": "Reasonable tail", "conflict_of_interest_statement": STATEMENT},
    )

    assert response.status_code == 302 and response.url == change_url(review)
    review.refresh_from_db()
    artefact.refresh_from_db()
    assert review.status == "approved" and review.approver == reviewer
    assert review.decision_notes == "Reasonable tail"
    assert review.conflict_of_interest_statement == STATEMENT
    assert review.approver_qualifications["qualifications"][0]["designation"] == "FIA"
    assert artefact.status == "approved"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_APPROVE and event.user == reviewer


def test_reject_needs_a_reason_on_its_page(reviewer_client, review, artefact):
    page = reviewer_client.get(move_url(review, "reject"))
    assert list(page.context["form"].fields) == [
        "reason",
        "conflict_of_interest_statement",
        "notes",
    ]
    before = database_state()
    response = reviewer_client.post(move_url(review, "reject"), {"reason": "", "notes": "x"})
    errors = response.context["form"].errors
    assert response.status_code == 200 and {"reason", "conflict_of_interest_statement"} <= set(
        errors
    )
    assert database_state() == before

    response = reviewer_client.post(
        move_url(review, "reject"),
        {"reason": "Cut-off wrong", "conflict_of_interest_statement": STATEMENT},
    )
    assert response.status_code == 302
    review.refresh_from_db()
    artefact.refresh_from_db()
    assert (review.status, review.rejection_reason, artefact.status) == (
        "rejected",
        "Cut-off wrong",
        "rejected",
    )


def test_a_decision_without_a_statement_asks_again(reviewer_client, review):
    before = database_state()
    response = reviewer_client.post(
        move_url(review, "approve"), {"notes": "Fine", "conflict_of_interest_statement": "  "}
    )
    assert response.status_code == 200
    assert "conflict_of_interest_statement" in response.context["form"].errors
    assert database_state() == before


def test_revoke_asks_for_a_reason(reviewer_client, review, reviewer, artefact):
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=STATEMENT)
    mark = audit_mark()
    response = reviewer_client.post(move_url(review, "revoke"), {"reason": "Restated data"})
    assert response.status_code == 302
    review.refresh_from_db()
    artefact.refresh_from_db()
    assert review.status == "revoked" and review.revocation_reason == "Restated data"
    assert artefact.status == "pending_review"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_REVOKE and event.user == reviewer


def test_deciding_your_own_request_is_refused_with_the_message(actuary_client, review):
    before = database_state()
    response = actuary_client.post(
        move_url(review, "approve"), {"notes": "", "conflict_of_interest_statement": STATEMENT}
    )
    assert response.status_code == 302
    [(level, text)] = admin_messages(response)
    assert level == "error"
    assert text == (
        f"actuary may not decide approval “{review}”: they requested it "
        "(reviews must be independent)."
    )
    assert database_state() == before


def test_bulk_approve_asks_once_then_decides_each(
    reviewer_client, review, reviewer, engagement, actuary
):
    own = approval_request(
        approval_type=ApprovalType.DATA_VALIDATION, engagement=engagement, actor=reviewer
    )
    selection = {"action": "move_approve", "_selected_action": [review.pk, own.pk]}

    page = reviewer_client.post(CHANGELIST, selection)
    assert page.status_code == 200 and page.context["bulk"] is True
    assert {obj.pk for obj in page.context["objects"]} == {review.pk, own.pk}
    assert Approval.objects.filter(status="pending").count() == 2

    response = reviewer_client.post(
        CHANGELIST,
        selection | {"apply": "1", "notes": "Batch", "conflict_of_interest_statement": STATEMENT},
    )

    assert response.status_code == 302
    review.refresh_from_db()
    own.refresh_from_db()
    assert (review.status, review.decision_notes, own.status) == ("approved", "Batch", "pending")
    messages = admin_messages(response)
    assert ("success", "Approve: done for 1 approval.") in messages
    assert any(level == "error" and "they requested it" in text for level, text in messages)


def test_bulk_reject_without_a_reason_asks_again(reviewer_client, review):
    selection = {"action": "move_reject", "_selected_action": [review.pk], "apply": "1"}
    before = database_state()
    page = reviewer_client.post(CHANGELIST, selection | {"reason": ""})
    assert page.status_code == 200 and "reason" in page.context["form"].errors
    assert database_state() == before


def test_requesting_in_the_admin_goes_through_the_service(reviewer_client, reviewer, artefact):
    data = admin_form_data(reviewer_client.get(ADD)) | {
        "approval_type": "artefact_review",
        "artefact": artefact.pk,
        "request_notes": "Second pair of eyes",
        "metadata": "{}",
    }
    response = reviewer_client.post(ADD, data)
    assert response.status_code == 302, admin_messages(response)
    approval = Approval.objects.get(artefact=artefact)
    artefact.refresh_from_db()
    assert approval.requested_by == reviewer and approval.engagement == artefact.engagement
    assert approval.artefact_content_hash == artefact.content_hash
    assert artefact.status == "pending_review"


def test_a_refused_request_redisplays_the_form(reviewer_client, reviewer, artefact):
    data = admin_form_data(reviewer_client.get(ADD)) | {
        "approval_type": "artefact_review",
        "artefact": artefact.pk,
        "designated_approver": reviewer.pk,
        "metadata": "{}",
    }
    before = database_state()
    response = reviewer_client.post(ADD, data)
    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "reviewer may not be the designated approver" in text
    assert database_state() == before


def test_decided_approvals_are_read_only_and_never_deleted(reviewer_client, review, reviewer):
    approval_reject(
        approval=review, actor=reviewer, reason="No", conflict_of_interest_statement=STATEMENT
    )
    page = reviewer_client.get(change_url(review))
    assert "request_notes" not in page.context["adminform"].form.fields
    client_admin = SuperUserFactory()
    reviewer_client.force_login(client_admin)
    delete = reverse("admin:approvals_approval_delete", args=(review.pk,))
    assert reviewer_client.post(delete, {"post": "yes"}).status_code == 403
    assert Approval.objects.filter(pk=review.pk).exists()


def test_qualifications_are_recorded_through_the_service(client, reviewer, actuary):
    registrar = SuperUserFactory(username="registrar")
    client.force_login(registrar)
    add = reverse("admin:approvals_professionalqualification_add")
    data = admin_form_data(client.get(add)) | {
        "designation": "FSA",
        "issuing_body": "Society of Actuaries",
        "valid_from": "2020-01-01",
    }
    mark = audit_mark()
    response = client.post(add, data | {"user": actuary.pk}, follow=True)  # shows its message
    assert response.redirect_chain[0][1] == 302
    assert ProfessionalQualification.objects.get(user=actuary).created_by == registrar
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.PERMISSION_CHANGE and event.user == registrar

    before = database_state()
    response = client.post(add, data | {"user": registrar.pk})
    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "may not record or change their own" in text
    assert database_state() == before
