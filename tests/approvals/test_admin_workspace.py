"""The approval flow from the admin: request on an artefact, decide, and every refusal explained.

Staff actuaries of the Actuaries group: the lead requests, the qualified reviewer decides;
Carol (reviewer role, no qualification) and Dave (actuary, FIA) are on the team too.
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.models import Approval
from approvals.selectors import addressed_to_viewer
from approvals.services import approval_approve, approval_request
from audit.choices import AuditAction
from tests.admin_fixtures import (
    actuaries_group,
    in_group,
    lead,
    lead_client,
    qualified_reviewer,
    reviewer_client,
)
from tests.factories import EngagementMemberFactory, ProfessionalQualificationFactory, UserFactory
from tests.factories.states import (
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
)

STATEMENT = "No conflict: I took no part in this work."

__all__ = ("actuaries_group", "lead", "lead_client", "qualified_reviewer", "reviewer_client")

pytestmark = pytest.mark.django_db


@pytest.fixture
def carol(engagement, actuaries_group):
    """A reviewer on the team with no professional qualification."""
    carol = in_group(UserFactory(username="carol", is_staff=True), actuaries_group)
    EngagementMemberFactory(engagement=engagement, user=carol, role="reviewer")
    return carol


@pytest.fixture
def dave(engagement, actuaries_group):
    """A qualified actuary on the team (FIA), who is not the designated approver."""
    dave = in_group(UserFactory(username="dave", is_staff=True), actuaries_group)
    ProfessionalQualificationFactory(user=dave)
    EngagementMemberFactory(engagement=engagement, user=dave, role="actuary")
    return dave


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="olga", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=observer, role="observer")
    return observer


@pytest.fixture
def results(engagement, lead):
    return artefact_in(engagement, actor=lead, name="Reserve results")


def artefact_url(artefact):
    return reverse("admin:artefacts_artefact_change", args=(artefact.pk,))


def request_url(artefact):
    return reverse("admin:artefacts_artefact_move", args=(artefact.pk, "request_approval"))


def change_url(approval):
    return reverse("admin:approvals_approval_change", args=(approval.pk,))


def move_url(approval, move):
    return reverse("admin:approvals_approval_move", args=(approval.pk, move))


class TestRequest:
    def test_the_button_is_offered_while_the_artefact_can_be_reviewed(
        self, lead_client, results, lead, qualified_reviewer
    ):
        assert request_url(results) in lead_client.get(artefact_url(results)).content.decode()
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=results, actor=lead
        )
        approval_approve(
            approval=approval, actor=qualified_reviewer, conflict_of_interest_statement=STATEMENT
        )
        assert request_url(results) not in lead_client.get(artefact_url(results)).content.decode()

    def test_the_page_offers_the_teams_working_members_but_not_me(
        self, lead_client, results, qualified_reviewer, carol, dave, observer
    ):
        form = lead_client.get(request_url(results)).context["form"]
        assert list(form.fields) == [
            "approval_type",
            "designated_approver",
            "expires_at",
            "request_notes",
        ]
        offered = {user.username for user in form.fields["designated_approver"].queryset}
        assert offered == {"reviewer", "carol", "dave"}
        types = dict(form.fields["approval_type"].choices)
        assert "workflow_approval" not in types and "final_sign_off" not in types
        assert types["actuarial_sign_off"] == "Actuarial sign-off (needs a qualified approver)"

    def test_a_request_goes_through_the_service(
        self, lead_client, results, lead, qualified_reviewer
    ):
        mark = audit_mark()
        expires = (timezone.now() + datetime.timedelta(days=7)).replace(second=0, microsecond=0)
        response = lead_client.post(
            request_url(results),
            {
                "approval_type": "actuarial_sign_off",
                "designated_approver": qualified_reviewer.pk,
                "expires_at": expires.strftime("%Y-%m-%dT%H:%M"),
                "request_notes": "Please sign off the year-end reserves.",
            },
        )
        assert response.status_code == 302 and response.url == artefact_url(results)
        approval = Approval.objects.get(artefact=results)
        results.refresh_from_db()
        assert (approval.requested_by, approval.designated_approver) == (lead, qualified_reviewer)
        assert approval.expires_at == expires
        assert approval.request_notes == "Please sign off the year-end reserves."
        assert approval.artefact_content_hash == results.content_hash
        assert results.status == "pending_review"
        [(level, text)] = admin_messages(response)
        assert level == "success" and text.startswith("Request approval — Actuarial sign-off")
        assert [event.action for event in audit_events_since(mark)] == [
            AuditAction.APPROVAL_REQUEST
        ]

    def test_an_expiry_in_the_past_is_refused_with_the_services_message(self, lead_client, results):
        before = database_state()
        past = timezone.now() - datetime.timedelta(days=1)
        response = lead_client.post(
            request_url(results),
            {"approval_type": "artefact_review", "expires_at": past.strftime("%Y-%m-%dT%H:%M")},
        )
        assert response.status_code == 302
        [(level, text)] = admin_messages(response)
        assert level == "error" and text.startswith("An approval cannot expire in the past")
        assert database_state() == before

    def test_an_approver_off_the_team_is_not_a_valid_choice(self, lead_client, results):
        stranger = UserFactory(username="stranger", is_staff=True)
        response = lead_client.post(
            request_url(results),
            {"approval_type": "artefact_review", "designated_approver": stranger.pk},
        )
        assert response.status_code == 200
        assert "designated_approver" in response.context["form"].errors
        assert not Approval.objects.exists()


@pytest.fixture
def sign_off(results, lead):
    return approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF, artefact=results, actor=lead
    )


class TestDecide:
    def test_the_reviewer_is_told_they_may_decide_then_approves_with_notes(
        self, reviewer_client, sign_off, qualified_reviewer, results
    ):
        page = reviewer_client.get(change_url(sign_off))
        assert page.context["decision_refusal"] is None
        assert 'id="decision-allowed"' in page.content.decode()
        assert reviewer_client.get(move_url(sign_off, "approve")).context["move_warning"] is None

        response = reviewer_client.post(
            move_url(sign_off, "approve"),
            {"notes": "Tail is fine", "conflict_of_interest_statement": STATEMENT},
        )

        assert response.status_code == 302
        sign_off.refresh_from_db()
        results.refresh_from_db()
        assert (sign_off.status, sign_off.approver, sign_off.decision_notes) == (
            "approved",
            qualified_reviewer,
            "Tail is fine",
        )
        assert sign_off.conflict_of_interest_statement == STATEMENT
        assert results.status == "approved"

    def test_the_reviewer_rejects_with_a_reason(self, reviewer_client, sign_off, results):
        response = reviewer_client.post(
            move_url(sign_off, "reject"),
            {
                "reason": "Cut-off date wrong",
                "notes": "See 2023",
                "conflict_of_interest_statement": STATEMENT,
            },
        )
        assert response.status_code == 302
        sign_off.refresh_from_db()
        results.refresh_from_db()
        assert (sign_off.status, sign_off.rejection_reason, results.status) == (
            "rejected",
            "Cut-off date wrong",
            "rejected",
        )


def _assert_refused(client, approval, expected):
    """The approval page and the approve page say why; approving is refused, nothing changes."""
    page = client.get(change_url(approval))
    warning = client.get(move_url(approval, "approve")).context["move_warning"]
    assert expected in warning
    # The page says it to the viewer, and offers no Approve or Reject to press in vain.
    assert page.context["decision_refusal"] == addressed_to_viewer(warning)
    assert page.context["decision_refusal"].startswith("You ")
    html = page.content.decode()
    assert 'id="decision-refusal"' in html
    assert move_url(approval, "approve") not in html and move_url(approval, "reject") not in html
    before = database_state()
    response = client.post(
        move_url(approval, "approve"),
        {"notes": "Looks fine", "conflict_of_interest_statement": STATEMENT},
    )
    assert response.status_code == 302 and response.url == change_url(approval)
    [(level, text)] = admin_messages(response)
    assert level == "error" and expected in text
    assert database_state() == before


class TestRefusals:
    def test_own_work(self, lead_client, sign_off, lead):
        _assert_refused(
            lead_client,
            sign_off,
            f"actuary may not decide approval “{sign_off}”: they requested it "
            "(reviews must be independent).",
        )

    def test_not_the_designated_approver(self, client, results, lead, qualified_reviewer, dave):
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=results,
            designated_approver=qualified_reviewer,
            actor=lead,
        )
        client.force_login(dave)
        _assert_refused(
            client,
            approval,
            f"dave may not decide approval “{approval}”: only its designated approver, "
            "reviewer, may decide it.",
        )

    def test_unqualified_for_a_sign_off(self, client, sign_off, carol):
        client.force_login(carol)
        _assert_refused(
            client,
            sign_off,
            f"carol may not decide approval “{sign_off}”: a actuarial sign-off needs an "
            "approver holding a professional qualification valid on",
        )

    def test_expired(self, monkeypatch, reviewer_client, results, lead):
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=results,
            expires_at=timezone.now() + datetime.timedelta(hours=1),
            actor=lead,
        )
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(hours=2))
        _assert_refused(
            reviewer_client, approval, f"Cannot decide approval “{approval}”: it expired on"
        )
