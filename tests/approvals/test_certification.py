"""Who may certify qualifications (hardening finding 1): a role apart, never self-made.

The outside test: Alice requested an actuarial sign-off designated to Dave, who holds
no qualification; Dave's approve was refused; Alice then POSTed a made-up FIA for Dave
to /qualifications/ (201) and Dave's approve went through. These tests replay it.
"""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.utils import timezone

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.errors import APPROVAL_QUALIFICATION_TOO_NEW, QUALIFICATION_NOT_ALLOWED
from approvals.models import ProfessionalQualification
from approvals.services import CERTIFIERS_GROUP, approval_request, qualification_create
from audit.choices import AuditAction
from records.exceptions import NotAllowed
from records.formatting import format_date, format_datetime
from tests.api_fixtures import (
    API,
    assert_error,
    certifier,
    certifier_client,
    certifier_user,
    client_for,
    lead,
    lead_client,
    outsider,
    worker,
)
from tests.factories import EngagementMemberFactory, ProfessionalQualificationFactory, UserFactory
from tests.factories.states import NO_CONFLICT, artefact_in, audit_events_since, audit_mark

__all__ = ("certifier_client", "certifier_user", "lead", "lead_client", "outsider")

pytestmark = pytest.mark.django_db

QUALIFICATIONS = f"{API}/qualifications/"
MADE_UP_FIA = {
    "designation": "FIA",
    "issuing_body": "Made up by alice",
    "valid_from": "2020-01-01",
}


@pytest.fixture
def dave(engagement):
    """An actuary on the team with the worker permissions and no qualification."""
    user = UserFactory(username="dave", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=user, role="actuary")
    return worker(user)


@pytest.fixture
def sign_off(engagement, lead, dave):
    """Alice (the lead) asks Dave for the actuarial sign-off of her triangle."""
    return approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF,
        artefact=artefact_in(engagement, actor=lead),
        designated_approver=dave,
        actor=lead,
    )


def approve(client, approval):
    return client.post(
        f"{API}/approvals/{approval.pk}/approve/",
        {"notes": "Fine", "conflict_of_interest_statement": NO_CONFLICT},
    )


def test_the_requester_cannot_make_her_approver_qualified(sign_off, lead_client, dave):
    dave_client = client_for(dave)
    assert_error(approve(dave_client, sign_off), 403, "not_allowed", match="they hold none")

    response = lead_client.post(QUALIFICATIONS, {"user": dave.pk, **MADE_UP_FIA})

    assert_error(response, 403, "not_allowed", match="only certifiers may")
    assert not ProfessionalQualification.objects.filter(user=dave).exists()
    assert_error(approve(dave_client, sign_off), 403, "not_allowed", match="they hold none")
    sign_off.refresh_from_db()
    assert sign_off.status == ApprovalStatus.PENDING


def test_a_qualification_certified_after_the_request_does_not_count_for_it(
    sign_off, certifier_client, dave, engagement, lead
):
    response = certifier_client.post(QUALIFICATIONS, {"user": dave.pk, **MADE_UP_FIA})
    assert response.status_code == 201, response.content

    body = assert_error(approve(client_for(dave), sign_off), 403, "not_allowed")
    assert "recorded or changed after that and does not count" in body["detail"]
    assert "FIA (Made up by alice)" in body["detail"]
    sign_off.refresh_from_db()
    assert sign_off.status == ApprovalStatus.PENDING

    # A request made after the certification counts it.
    later = approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF,
        artefact=artefact_in(engagement, actor=lead, name="Incurred triangle"),
        designated_approver=dave,
        actor=lead,
    )
    response = approve(client_for(dave), later)
    assert response.status_code == 200, response.content
    qualifications = response.json()["approver_qualifications"]["qualifications"]
    assert [q["issuing_body"] for q in qualifications] == ["Made up by alice"]


def test_a_qualification_changed_after_the_request_does_not_count_for_it(
    engagement, lead, reviewer_user_qualified, certifier_user
):
    pending = approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF,
        artefact=artefact_in(engagement, actor=lead),
        actor=lead,
    )
    qualification = reviewer_user_qualified.qualifications.get()
    client_for(certifier_user).patch(
        f"{QUALIFICATIONS}{qualification.pk}/", {"membership_number": "FIA-99"}
    )

    body = assert_error(approve(client_for(reviewer_user_qualified), pending), 403, "not_allowed")

    assert body["detail"] == APPROVAL_QUALIFICATION_TOO_NEW.format(
        user=reviewer_user_qualified,
        approval=pending,
        approval_type="actuarial sign-off",
        day=format_date(timezone.localdate()),
        requested=format_datetime(pending.requested_at),
        qualifications=str(qualification),
    )


@pytest.fixture
def reviewer_user_qualified(engagement, reviewer):
    """The engagement's reviewer (FIA recorded before anything was requested)."""
    return worker(reviewer)


@pytest.mark.parametrize(
    "change",
    [
        {"valid_until": "2021-12-31"},
        {"issuing_body": "Renamed"},
    ],
)
def test_actuaries_with_model_permissions_cannot_end_or_change_a_colleagues_qualification(
    reviewer, lead_client, change
):
    qualification = reviewer.qualifications.get()
    before = (qualification.valid_until, qualification.issuing_body)

    response = lead_client.patch(f"{QUALIFICATIONS}{qualification.pk}/", change)

    assert_error(response, 403, "not_allowed", match="only certifiers may")
    qualification.refresh_from_db()
    assert (qualification.valid_until, qualification.issuing_body) == before


def test_actuaries_cannot_certify_people_outside_their_teams(lead_client, outsider):
    response = lead_client.post(QUALIFICATIONS, {"user": outsider.pk, **MADE_UP_FIA})

    assert_error(response, 403, "not_allowed", match="only certifiers may")
    assert not ProfessionalQualification.objects.filter(user=outsider).exists()


def test_the_refusal_names_the_group_and_permission(lead):
    with pytest.raises(NotAllowed) as refused:
        qualification_create(
            user=UserFactory(),
            designation="FIA",
            issuing_body="IFoA",
            valid_from="2020-01-01",
            actor=lead,
        )
    assert str(refused.value) == QUALIFICATION_NOT_ALLOWED.format(
        user=lead, group="Certifiers", permission="certify_professionalqualification"
    )


def test_a_certifier_does_not_certify_herself(certifier_client, certifier_user):
    response = certifier_client.post(QUALIFICATIONS, {"user": certifier_user.pk, **MADE_UP_FIA})

    assert_error(response, 403, "not_allowed", match="their own professional qualification")


def test_every_certification_is_an_audit_event(certifier_client, certifier_user, dave):
    mark = audit_mark()
    created = certifier_client.post(QUALIFICATIONS, {"user": dave.pk, **MADE_UP_FIA})
    assert created.status_code == 201, created.content
    changed = certifier_client.patch(
        f"{QUALIFICATIONS}{created.json()['id']}/", {"valid_until": "2030-12-31"}
    )
    assert changed.status_code == 200, changed.content

    recorded, ended = audit_events_since(mark)
    assert (recorded.action, recorded.user, recorded.metadata) == (
        AuditAction.PERMISSION_CHANGE,
        certifier_user,
        {"certification": "recorded", "holder": "dave"},
    )
    assert recorded.new_value["issuing_body"] == "Made up by alice"
    assert (ended.action, ended.metadata["certification"]) == (
        AuditAction.PERMISSION_CHANGE,
        "changed",
    )
    assert (ended.old_value, ended.new_value) == (
        {"valid_until": None},
        {"valid_until": "2030-12-31"},
    )


def test_the_certifiers_group_exists_with_its_own_permission():
    group = Group.objects.get(name=CERTIFIERS_GROUP)
    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "certify_professionalqualification" in codenames
    member = certifier(UserFactory())
    assert member.has_perm("approvals.certify_professionalqualification")
    assert not worker(UserFactory()).has_perm("approvals.certify_professionalqualification")


def test_the_demo_actuaries_do_not_certify(settings):
    settings.DEBUG = True
    call_command("load_demo", verbosity=0)
    actuaries = Group.objects.get(name="Actuaries")
    codenames = set(actuaries.permissions.values_list("codename", flat=True))
    assert "view_professionalqualification" in codenames
    assert not codenames & {
        "add_professionalqualification",
        "change_professionalqualification",
        "certify_professionalqualification",
    }
    carol = Group.objects.get(name=CERTIFIERS_GROUP).user_set.get()
    assert carol.username == "carol"
    certified = ProfessionalQualification.objects.values_list("created_by__username", flat=True)
    assert set(certified) == {"carol"}


def test_the_admin_offers_certifying_to_certifiers_only(client, lead, certifier_user):
    ProfessionalQualificationFactory(user=UserFactory(username="holder"))
    client.force_login(lead)
    assert client.get("/admin/approvals/professionalqualification/add/").status_code == 403
    client.force_login(certifier_user)
    assert client.get("/admin/approvals/professionalqualification/add/").status_code == 200
