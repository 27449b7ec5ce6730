"""REST API of approvals and qualifications: requests, decisions, revocations, independence."""

import datetime

import pytest
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.models import Approval, ProfessionalQualification
from approvals.services import approval_approve, approval_request
from audit.choices import AuditAction
from engagements.services import engagement_activate
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    certifier_client,
    certifier_user,
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
    superuser_client,
    teammate,
    teammate_client,
)
from tests.factories import (
    ApprovalFactory,
    ArtefactFactory,
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    UserFactory,
)
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    final_sign_off_request,
    run_in,
)

__all__ = (
    "api_client",
    "certifier_client",
    "certifier_user",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "reviewer_client",
    "reviewer_user",
    "superuser_client",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

APPROVALS = f"{API}/approvals/"
QUALIFICATIONS = f"{API}/qualifications/"


# The statement every decision needs.
COI = {"conflict_of_interest_statement": NO_CONFLICT}


def detail(approval, suffix=""):
    return f"{APPROVALS}{approval.pk}/{suffix}"


@pytest.fixture
def artefact(engagement, lead):
    """A draft artefact uploaded by the lead."""
    return artefact_in(engagement, actor=lead)


@pytest.fixture
def pending(artefact, lead):
    """A pending review of the lead's artefact, requested by the lead."""
    return approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=lead
    )


@pytest.fixture
def approved(pending, reviewer_user):
    return approval_approve(
        approval=pending,
        actor=reviewer_user,
        notes="Checked",
        conflict_of_interest_statement=NO_CONFLICT,
    )


# --- requesting -----------------------------------------------------------------------------


def test_request_a_review_of_an_artefact(artefact, lead, lead_client):
    mark = audit_mark()
    response = lead_client.post(
        APPROVALS,
        {
            "approval_type": "artefact_review",
            "artefact": str(artefact.pk),
            "request_notes": "Please check the tail",
            "expires_at": (timezone.now() + datetime.timedelta(days=7)).isoformat(),
        },
        headers={"X-Trace-Id": "agent-1"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["requested_by"], body["engagement"]) == (
        "pending",
        lead.pk,
        str(artefact.engagement_id),
    )
    assert (body["artefact_version"], body["artefact_content_hash"]) == (
        1,
        artefact.content_hash,
    )
    assert body["available_moves"] == ["approve", "reject", "expire"]
    assert body["trace_id"] == "agent-1"
    artefact.refresh_from_db()
    assert artefact.status == "pending_review"
    events = [e for e in audit_events_since(mark) if e.resource_type == "approval"]
    assert [(e.action, e.user) for e in events] == [(AuditAction.APPROVAL_REQUEST, lead)]


def test_request_needs_a_subject(lead_client):
    body = assert_error(
        lead_client.post(APPROVALS, {"approval_type": "peer_review"}), 400, "invalid"
    )
    assert body["errors"] == {"non_field_errors": [body["detail"]]}
    assert "needs a subject" in body["detail"]


def test_request_on_hidden_subjects_is_refused(outsider_client):
    hidden = ArtefactFactory(engagement=EngagementFactory())
    response = outsider_client.post(
        APPROVALS, {"approval_type": "artefact_review", "artefact": str(hidden.pk)}
    )
    assert "does not exist" in assert_error(response, 400, "invalid")["errors"]["artefact"][0]


def test_a_second_pending_request_is_a_conflict(pending, artefact, lead_client):
    response = lead_client.post(
        APPROVALS, {"approval_type": "artefact_review", "artefact": str(artefact.pk)}
    )
    assert_error(response, 409, "conflict", match="is still pending")


def test_request_with_a_designated_approver_off_the_team_is_refused(artefact, lead_client):
    stranger = UserFactory()
    response = lead_client.post(
        APPROVALS,
        {
            "approval_type": "artefact_review",
            "artefact": str(artefact.pk),
            "designated_approver": stranger.pk,
        },
    )
    assert_error(response, 403, "not_allowed", match="not on its team")


# --- reading and editing --------------------------------------------------------------------


def test_list_and_detail_are_scoped(pending, lead_client, outsider_client):
    hidden = ApprovalFactory()
    assert ids(lead_client.get(APPROVALS)) == {str(pending.pk)}
    assert ids(outsider_client.get(APPROVALS)) == set()
    assert_error(outsider_client.get(detail(pending)), 404, "not_found")
    assert_error(lead_client.get(detail(hidden)), 404, "not_found")
    assert_error(outsider_client.post(detail(pending, "approve/"), COI), 404, "not_found")
    # Hidden first, then the body: no input check tells an outsider the approval exists.
    assert_error(outsider_client.post(detail(pending, "approve/")), 404, "not_found")


def test_the_requester_edits_a_pending_request(pending, lead, lead_client, teammate):
    mark = audit_mark()
    response = lead_client.patch(
        detail(pending), {"request_notes": "Focus on 2021", "designated_approver": teammate.pk}
    )
    assert response.status_code == 200, response.content
    pending.refresh_from_db()
    assert (pending.request_notes, pending.designated_approver) == ("Focus on 2021", teammate)
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.APPROVAL_UPDATE, lead)


def test_others_do_not_edit_a_request(pending, teammate_client):
    response = teammate_client.patch(detail(pending), {"request_notes": "mine"})
    assert_error(response, 403, "not_allowed")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("status", "approved", "transition actions"),
        ("approver", 1, "read-only"),
        ("reviewed_at", "2026-01-01T00:00:00Z", "read-only"),
        ("approver_qualifications", {}, "read-only"),
        ("artefact_content_hash", "0" * 64, "read-only"),
        ("artefact", None, "set when the object is created"),
        ("approval_type", "final_sign_off", "set when the object is created"),
    ],
)
def test_read_only_and_create_only_fields_are_refused(pending, lead_client, field, value, message):
    body = assert_error(lead_client.patch(detail(pending), {field: value}), 400, "invalid")
    assert set(body["errors"]) == {field}
    assert message in body["errors"][field][0]


def test_approvals_are_never_deleted(pending, lead_client):
    assert_error(lead_client.delete(detail(pending)), 405, "method_not_allowed")


# --- deciding -------------------------------------------------------------------------------


def test_approve_records_the_decision_and_approves_the_artefact(
    pending, artefact, reviewer_user, reviewer_client
):
    mark = audit_mark()
    response = reviewer_client.post(detail(pending, "approve/"), {"notes": "Tail is fine", **COI})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["approver"], body["decision_notes"]) == (
        "approved",
        reviewer_user.pk,
        "Tail is fine",
    )
    assert body["conflict_of_interest_statement"] == NO_CONFLICT
    assert body["approver_qualifications"]["qualifications"][0]["designation"] == "FIA"
    artefact.refresh_from_db()
    assert artefact.status == "approved"
    events = [e for e in audit_events_since(mark) if e.resource_type == "approval"]
    assert [(e.action, e.user) for e in events] == [(AuditAction.APPROVAL_APPROVE, reviewer_user)]


def test_approve_without_notes(pending, reviewer_client):
    assert reviewer_client.post(detail(pending, "approve/"), COI).json()["status"] == "approved"


@pytest.mark.parametrize("move", ["approve", "reject"])
@pytest.mark.parametrize("statement", [None, "", "   "])
def test_a_decision_needs_a_conflict_of_interest_statement(
    pending, reviewer_client, move, statement
):
    body = {"reason": "wrong_tail"} if move == "reject" else {}
    if statement is not None:
        body["conflict_of_interest_statement"] = statement
    errors = assert_error(reviewer_client.post(detail(pending, f"{move}/"), body), 400, "invalid")[
        "errors"
    ]
    assert set(errors) == {"conflict_of_interest_statement"}
    assert "conflict-of-interest statement" in errors["conflict_of_interest_statement"][0]
    pending.refresh_from_db()
    assert (pending.status, pending.approver) == ("pending", None)


def test_approving_twice_is_an_invalid_transition(approved, reviewer_client):
    body = assert_error(
        reviewer_client.post(detail(approved, "approve/"), COI), 409, "invalid_transition"
    )
    assert body["status"] == "approved"


def test_nobody_approves_their_own_request(pending, lead_client):
    response = lead_client.post(detail(pending, "approve/"), COI)
    assert_error(response, 403, "not_allowed", match="they requested it")
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_only_the_designated_approver_decides(pending, lead, teammate, reviewer_client):
    pending.designated_approver = teammate
    pending.save()
    response = reviewer_client.post(detail(pending, "approve/"), COI)
    assert_error(response, 403, "not_allowed", match="only its designated approver")


def test_sign_offs_need_a_valid_qualification(engagement, lead, teammate_client):
    engagement_activate(engagement=engagement, actor=lead)
    sign_off = final_sign_off_request(engagement, requester=lead)
    response = teammate_client.post(detail(sign_off, "approve/"), COI)
    assert_error(response, 403, "not_allowed", match="qualification")


def test_reject_needs_a_reason(pending, reviewer_client):
    for body in (COI, {"reason": "  ", **COI}, {"reason": "", **COI}):
        errors = assert_error(
            reviewer_client.post(detail(pending, "reject/"), body), 400, "invalid"
        )["errors"]
        assert errors == {"reason": ["Say why: a reason is required."]}
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_reject_with_a_reason(pending, artefact, reviewer_user, reviewer_client):
    mark = audit_mark()
    response = reviewer_client.post(
        detail(pending, "reject/"),
        {"reason": "wrong_tail", "notes": "Tail of 1.05 is too low", **COI},
    )
    body = response.json()
    assert (body["status"], body["rejection_reason"], body["decision_notes"]) == (
        "rejected",
        "wrong_tail",
        "Tail of 1.05 is too low",
    )
    artefact.refresh_from_db()
    assert artefact.status == "rejected"
    events = [e for e in audit_events_since(mark) if e.resource_type == "approval"]
    assert [(e.action, e.user) for e in events] == [(AuditAction.APPROVAL_REJECT, reviewer_user)]


def test_decision_bodies_refuse_unknown_fields(pending, reviewer_client):
    body = assert_error(
        reviewer_client.post(detail(pending, "approve/"), {"notes": "ok", "approver": 1, **COI}),
        400,
        "invalid",
    )
    assert set(body["errors"]) == {"approver"}


def test_revoke_needs_a_reason_and_sends_the_artefact_back(
    approved, artefact, reviewer_user, reviewer_client
):
    body = assert_error(reviewer_client.post(detail(approved, "revoke/"), {}), 400, "invalid")
    assert set(body["errors"]) == {"reason"}
    mark = audit_mark()
    response = reviewer_client.post(detail(approved, "revoke/"), {"reason": "Data restated"})
    body = response.json()
    assert (body["status"], body["revoked_by"], body["revocation_reason"]) == (
        "revoked",
        reviewer_user.pk,
        "Data restated",
    )
    artefact.refresh_from_db()
    assert artefact.status == "pending_review"
    events = [e for e in audit_events_since(mark) if e.resource_type == "approval"]
    assert [(e.action, e.user) for e in events] == [(AuditAction.APPROVAL_REVOKE, reviewer_user)]


def test_revoke_of_a_pending_approval_is_an_invalid_transition(pending, lead_client):
    body = assert_error(
        lead_client.post(detail(pending, "revoke/"), {"reason": "x"}), 409, "invalid_transition"
    )
    assert body["status"] == "pending"


def test_only_the_approver_lead_or_reviewer_revoke(approved, teammate_client):
    response = teammate_client.post(detail(approved, "revoke/"), {"reason": "x"})
    assert_error(response, 403, "not_allowed")


def test_decisions_need_the_change_permission(pending, engagement):
    viewer = UserFactory(username="viewer")
    EngagementMemberFactory(engagement=engagement, user=viewer, role="reviewer")
    ProfessionalQualificationFactory(user=viewer)
    response = client_for(reader(viewer)).post(detail(pending, "approve/"), COI)
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize(("move", "run_status"), [("approve", "completed"), ("reject", "failed")])
def test_a_workflow_approval_releases_its_run(engagement, lead, reviewer_client, move, run_status):
    run = run_in(engagement, actor=lead, workflow_type="custom", start=True)
    approval = approval_request(
        approval_type=ApprovalType.WORKFLOW_APPROVAL, workflow_run=run, actor=lead
    )
    run.refresh_from_db()
    assert run.status == "waiting_approval"
    response = reviewer_client.post(
        detail(approval, f"{move}/"), {"reason": "Bad fit", **COI} if move == "reject" else COI
    )
    assert response.status_code == 200, response.content
    run.refresh_from_db()
    assert run.status == run_status


# --- qualifications -------------------------------------------------------------------------


def qualification_detail(qualification):
    return f"{QUALIFICATIONS}{qualification.pk}/"


def test_qualifications_of_you_and_your_colleagues(engagement, reviewer, actuary):
    stranger = ProfessionalQualificationFactory()
    viewer = reader(actuary)  # view only: not a certifier
    rows = results(client_for(viewer).get(QUALIFICATIONS))
    assert {row["user"] for row in rows} == {reviewer.pk}
    assert stranger.pk
    assert_error(client_for(viewer).get(qualification_detail(stranger)), 404, "not_found")


def test_certifiers_see_everyone(engagement, reviewer, certifier_client):
    stranger = ProfessionalQualificationFactory()
    users = {row["user"] for row in results(certifier_client.get(QUALIFICATIONS))}
    assert users == {reviewer.pk, stranger.user_id}


def test_a_certifier_records_someone_elses_qualification(
    certifier_user, certifier_client, teammate
):
    mark = audit_mark()
    response = certifier_client.post(
        QUALIFICATIONS,
        {
            "user": teammate.pk,
            "designation": "FSA",
            "issuing_body": "Society of Actuaries",
            "valid_from": "2020-07-01",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["is_valid_today"] is True
    qualification = ProfessionalQualification.objects.get(user=teammate)
    assert qualification.created_by == certifier_user
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.PERMISSION_CHANGE, certifier_user)


def test_nobody_certifies_themselves(certifier_user, certifier_client):
    response = certifier_client.post(
        QUALIFICATIONS,
        {
            "user": certifier_user.pk,
            "designation": "FIA",
            "issuing_body": "IFoA",
            "valid_from": "2020-01-01",
        },
    )
    assert_error(response, 403, "not_allowed", match="their own professional qualification")


def test_certifying_needs_the_add_permission(engagement, actuary, teammate):
    response = client_for(reader(actuary)).post(
        QUALIFICATIONS,
        {
            "user": teammate.pk,
            "designation": "FIA",
            "issuing_body": "IFoA",
            "valid_from": "2020-01-01",
        },
    )
    assert_error(response, 403, "permission_denied")


def test_a_qualification_ends_but_never_changes_hands(reviewer, certifier_client):
    qualification = reviewer.qualifications.get()
    response = certifier_client.patch(
        qualification_detail(qualification), {"valid_until": "2025-12-31"}
    )
    assert response.json()["is_valid_today"] is False
    body = assert_error(
        certifier_client.patch(qualification_detail(qualification), {"user": 1}), 400, "invalid"
    )
    assert set(body["errors"]) == {"user"}
    assert_error(
        certifier_client.patch(qualification_detail(qualification), {"valid_until": "2000-01-01"}),
        400,
        "invalid",
    )
    assert_error(
        certifier_client.delete(qualification_detail(qualification)), 405, "method_not_allowed"
    )


# --- query counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "client_name"), [(APPROVALS, "lead_client"), (QUALIFICATIONS, "certifier_client")]
)
def test_lists_run_a_fixed_number_of_queries(
    engagement, lead, request, django_assert_max_num_queries, url, client_name
):
    lead_client = request.getfixturevalue(client_name)
    for _ in range(100):
        artefact = ArtefactFactory(engagement=engagement)
        ApprovalFactory(artefact=artefact, requested_by=lead)
        ProfessionalQualificationFactory()
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(7):
            assert len(results(lead_client.get(url, {"page_size": page_size}))) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(url, {"page_size": s})
        )
    assert counts[1] == counts[100]


def test_superusers_see_every_approval(superuser_client):
    """Superusers see every approval."""
    hidden = ApprovalFactory()
    assert str(hidden.pk) in ids(superuser_client.get(APPROVALS))
    assert Approval.objects.count() == 1
