import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals.models import (
    REJECTION_REASON_REQUIRED,
    REVOCATION_REASON_REQUIRED,
    Approval,
    ProfessionalQualification,
)
from records.exceptions import InvalidInput, InvalidTransition
from tests.factories import ApprovalFactory, ProfessionalQualificationFactory, UserFactory
from tests.lifecycle import check_every_move

pytestmark = pytest.mark.django_db

STATES = ("pending", "approved", "rejected", "revoked", "expired")
ALLOWED = {
    "approve": {"pending": "approved"},
    "reject": {"pending": "rejected"},
    "revoke": {"approved": "revoked"},
    "expire": {"pending": "expired"},
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(ALLOWED))
def test_approval_lifecycle(state, move):
    approval = ApprovalFactory(rejection_reason="stale data", revocation_reason="error found")
    decider = UserFactory()
    calls = {
        "approve": lambda a: a.approve(approver=decider, notes="Looks right"),
        "reject": lambda a: a.reject(approver=decider, reason="Tail factor unsupported"),
        "revoke": lambda a: a.revoke(user=decider, reason="Data error found"),
        "expire": lambda a: a.expire(),
    }
    check_every_move(approval, state, move, ALLOWED[move].get(state), calls[move])


def test_approval_defaults():
    approval = Approval.objects.get(pk=ApprovalFactory().pk)
    assert approval.status == "pending"
    assert approval.requested_at is not None
    assert approval.metadata == {} and approval.approver_qualifications == {}
    assert approval.is_pending and not approval.is_approved and not approval.is_expired


def test_decisions_stamp_who_and_when():
    approval = ApprovalFactory()
    decider = UserFactory()
    approval.approve(approver=decider, notes="OK", qualifications={"designations": ["FIA"]})
    assert approval.approver == decider and approval.reviewed_at is not None
    assert approval.approver_qualifications == {"designations": ["FIA"]}
    approval.revoke(user=decider, reason="Superseded figures")
    assert approval.revoked_by == decider and approval.revoked_at is not None
    assert approval.revocation_reason == "Superseded figures"


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_reject_needs_a_reason(reason):
    approval = ApprovalFactory()
    with pytest.raises(InvalidInput, match=REJECTION_REASON_REQUIRED):
        approval.reject(approver=UserFactory(), reason=reason)
    assert approval.status == "pending"


def test_revoke_needs_a_reason():
    approval = ApprovalFactory()
    approval.approve(approver=UserFactory())
    with pytest.raises(InvalidInput, match=REVOCATION_REASON_REQUIRED):
        approval.revoke(user=UserFactory(), reason="")
    assert approval.status == "approved"


def test_refused_move_is_reported_before_a_missing_reason():
    approval = ApprovalFactory()
    approval.approve(approver=UserFactory())
    with pytest.raises(InvalidTransition, match="it is approved"):
        approval.reject(approver=UserFactory(), reason="")


def test_is_expired_by_status_or_date():
    approval = ApprovalFactory(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert approval.is_expired
    future = ApprovalFactory(expires_at=timezone.now() + datetime.timedelta(days=1))
    assert not future.is_expired
    future.expire()
    assert future.is_expired


def test_approval_needs_an_artefact_or_an_engagement():
    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalFactory(artefact=None, engagement=None)


def test_engagement_approval_without_artefact_is_accepted(engagement):
    approval = ApprovalFactory(artefact=None, engagement=engagement, approval_type="final_sign_off")
    assert approval.engagement == engagement


@pytest.mark.parametrize(
    ("status", "field"), [("rejected", "rejection_reason"), ("revoked", "revocation_reason")]
)
def test_database_refuses_decisions_without_reasons(status, field):
    approval = ApprovalFactory()
    approval.status = status
    setattr(approval, field, "")
    with pytest.raises(IntegrityError), transaction.atomic():
        approval.save()


def test_qualification_validity_window():
    qualification = ProfessionalQualificationFactory(
        valid_from=datetime.date(2020, 1, 1), valid_until=datetime.date(2024, 12, 31)
    )
    assert qualification.is_valid_on(datetime.date(2022, 5, 1))
    assert not qualification.is_valid_on(datetime.date(2019, 12, 31))
    assert not qualification.is_valid_on(datetime.date(2025, 1, 1))
    snapshot = qualification.snapshot()
    assert snapshot["designation"] == "FIA" and snapshot["valid_until"] == "2024-12-31"


def test_qualification_until_before_from_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        ProfessionalQualificationFactory(
            valid_from=datetime.date(2024, 1, 1), valid_until=datetime.date(2023, 1, 1)
        )


def test_qualification_history_records_user(user):
    qualification = ProfessionalQualificationFactory()
    qualification.designation = "FSA"
    qualification._history_user = user
    qualification.save()
    assert ProfessionalQualification.history.filter(history_user=user).count() == 1
