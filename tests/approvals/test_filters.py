"""Filters, search and ordering of the approval and qualification lists."""

import datetime

import pytest
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject, approval_request
from tests.api_fixtures import (
    API,
    assert_error,
    certifier_client,
    certifier_user,
    ids,
    lead,
    lead_client,
    results,
    reviewer_user,
    teammate,
)
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
)
from tests.factories.states import NO_CONFLICT, artefact_in, run_in

__all__ = ("certifier_client", "certifier_user", "lead", "lead_client", "reviewer_user", "teammate")

pytestmark = pytest.mark.django_db

APPROVALS = f"{API}/approvals/"
QUALIFICATIONS = f"{API}/qualifications/"
LATER = b"origin,development,value\n2020,12,100\n2020,24,170\n2021,12,110\n"


@pytest.fixture
def approvals(engagement, lead, reviewer_user, teammate):
    """Approvals in two engagements of the lead that differ in every filtered field."""
    other = EngagementFactory(client_code="ZETA")
    EngagementMemberFactory(engagement=other, user=lead, role="lead")
    EngagementMemberFactory(engagement=other, user=reviewer_user, role="reviewer")
    artefact = artefact_in(engagement, actor=lead)
    review = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=artefact,
        actor=lead,
        request_notes="Check the tail factor",
        designated_approver=reviewer_user,
        expires_at=timezone.now() + datetime.timedelta(days=3),
    )
    review = approval_approve(
        approval=review, actor=reviewer_user, conflict_of_interest_statement=NO_CONFLICT
    )
    run = run_in(other, actor=lead, workflow_type="custom", start=True)
    workflow = approval_request(
        approval_type=ApprovalType.WORKFLOW_APPROVAL,
        workflow_run=run,
        actor=lead,
        trace_id="trace-wf",
    )
    workflow = approval_reject(
        approval=workflow,
        actor=reviewer_user,
        reason="no_support",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    peer = approval_request(
        approval_type=ApprovalType.PEER_REVIEW,
        artefact=artefact_in(other, actor=teammate_on(other, teammate), content=LATER),
        actor=teammate,
        expires_at=timezone.now() + datetime.timedelta(days=30),
    )
    peer.requested_at = timezone.now() - datetime.timedelta(days=5)
    peer.save()
    return {"review": review, "workflow": workflow, "peer": peer, "run": run, "artefact": artefact}


def teammate_on(engagement, user):
    EngagementMemberFactory(engagement=engagement, user=user, role="actuary")
    return user


def pks(approvals, *names):
    return {str(approvals[name].pk) for name in names}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "approved"}, ("review",)),
        ({"status": ["rejected", "pending"]}, ("workflow", "peer")),
        ({"approval_type": "workflow_approval"}, ("workflow",)),
        ({"client_code": "zeta"}, ("workflow", "peer")),
        ({"trace_id": "trace-wf"}, ("workflow",)),
        ({"search": "tail factor"}, ("review",)),
        ({"search": "no_support"}, ("workflow",)),
    ],
)
def test_approval_filters(approvals, lead_client, params, expected):
    assert ids(lead_client.get(APPROVALS, params)) == pks(approvals, *expected)


def test_subject_people_and_date_filters(
    approvals, engagement, lead, reviewer_user, teammate, lead_client
):
    def get(**params):
        return ids(lead_client.get(APPROVALS, params))

    assert get(engagement_id=engagement.pk) == pks(approvals, "review")
    assert get(artefact_id=approvals["artefact"].pk) == pks(approvals, "review")
    assert get(workflow_run_id=approvals["run"].pk) == pks(approvals, "workflow")
    assert get(requested_by_id=teammate.pk) == pks(approvals, "peer")
    assert get(approver_id=reviewer_user.pk) == pks(approvals, "review", "workflow")
    assert get(designated_approver_id=reviewer_user.pk) == pks(approvals, "review")
    day_ago = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert get(requested_before=day_ago) == pks(approvals, "peer")
    assert get(requested_after=day_ago) == pks(approvals, "review", "workflow")
    assert get(reviewed_after=day_ago) == pks(approvals, "review", "workflow")
    assert get(reviewed_before=day_ago) == set()
    week = (timezone.now() + datetime.timedelta(days=7)).isoformat()
    assert get(expires_before=week) == pks(approvals, "review")
    assert get(expires_after=week) == pks(approvals, "peer")


def test_approval_ordering(approvals, lead_client):
    rows = results(lead_client.get(APPROVALS, {"ordering": "requested_at"}))
    assert rows[0]["id"] == str(approvals["peer"].pk)


def test_bad_approval_filters_are_400(approvals, lead_client):
    body = assert_error(
        lead_client.get(APPROVALS, {"status": "maybe", "approver_id": "bob"}), 400, "invalid"
    )
    assert set(body["errors"]) == {"status", "approver_id"}


def test_qualification_filters(certifier_client, reviewer, engagement):
    lapsed = ProfessionalQualificationFactory(
        designation="FCAS",
        issuing_body="Casualty Actuarial Society",
        valid_from=datetime.date(2010, 1, 1),
        valid_until=datetime.date(2019, 12, 31),
    )

    def get(**params):
        return {row["id"] for row in results(certifier_client.get(QUALIFICATIONS, params))}

    current = str(reviewer.qualifications.get().pk)
    assert get(user_id=reviewer.pk) == {current}
    assert get(designation="FCAS") == {str(lapsed.pk)}
    assert get(issuing_body="casualty") == {str(lapsed.pk)}
    assert get(valid_on="2018-06-30") == {current, str(lapsed.pk)}
    assert get(valid_on="2024-06-30") == {current}
    assert get(search="casualty") == {str(lapsed.pk)}
    assert_error(certifier_client.get(QUALIFICATIONS, {"valid_on": "soon"}), 400, "invalid")
