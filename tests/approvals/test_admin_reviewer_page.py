"""The reviewer's page (issue 17), on the demo data: what is decided comes first, the
request is read-only to whoever may not edit it, and Approve and Reject are offered only
to someone the services would let decide; anyone else is told why, as "you"."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from approvals.admin.decision import _changes
from approvals.choices import ApprovalStatus, ApprovalType
from approvals.models import Approval

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo():
    call_command("load_demo", force=True)


@pytest.fixture
def pending_run_approval(demo):
    return Approval.objects.get(
        approval_type=ApprovalType.WORKFLOW_APPROVAL, status=ApprovalStatus.PENDING
    )


def login(client, username):
    client.force_login(get_user_model().objects.get(username=username))
    return client


def page_of(client, approval):
    return client.get(reverse("admin:approvals_approval_change", args=(approval.pk,)))


def move(approval, name):
    return reverse("admin:approvals_approval_move", args=(approval.pk, name))


def test_the_page_leads_with_what_is_being_decided(client, pending_run_approval):
    response = page_of(login(client, "bob"), pending_run_approval)
    html = response.content.decode()
    view = response.context["decision_subject"]
    run = pending_run_approval.workflow_run
    assert view.run == run and view.subject == str(run)
    # Totals by method, the selections and the warnings, from the run's output summary.
    [totals] = view.totals
    assert (totals.label, totals.ibnr, totals.ultimate) == ("Chain ladder", "52,135", "213,122")
    assert ("Average of the link ratios", "volume-weighted") in [
        (s.what, s.value) for s in view.selections
    ]
    assert any("negative development for origin 1982" in w for w in view.warnings)
    assert any(
        label == "Input" and "RAA general liability" in value for label, value in view.provenance
    )
    # The subject section comes before the request's fields, the review points with it.
    assert (
        html.index('id="decision-subject"')
        < html.index('id="review-points"')
        < html.index(">Request</h2>")
    )
    # "Workflow run: -" no more: the run is named and linked.
    run_url = reverse("admin:workflows_workflowrun_change", args=(run.pk,))
    assert f'<a href="{run_url}">{run}</a>' in html
    # The title names the subject, so two workflow approvals never read the same.
    assert response.context["subtitle"] == f"Workflow approval of run “{run}”"


def test_a_reviewer_who_may_decide_sees_the_buttons_and_a_read_only_request(
    client, pending_run_approval
):
    response = page_of(login(client, "bob"), pending_run_approval)
    html = response.content.decode()
    assert response.context["decision_refusal"] is None
    assert move(pending_run_approval, "approve") in html
    assert move(pending_run_approval, "reject") in html
    # Bob did not ask for it: the request's fields are shown, not offered for editing.
    assert 'name="request_notes"' not in html and 'name="_save"' not in html
    assert "Alice Fairweather, may edit its request" in response.context["read_only_reason"]


@pytest.mark.parametrize(
    ("username", "sentence"),
    [
        ("alice", "You may not decide this approval: you requested it"),
        ("dave", "You may not decide approvals on engagement"),
    ],
)
def test_who_may_not_decide_is_told_why_and_offered_no_decision(
    client, pending_run_approval, username, sentence
):
    response = page_of(login(client, username), pending_run_approval)
    html = response.content.decode()
    assert response.context["decision_refusal"].startswith(sentence)
    assert move(pending_run_approval, "approve") not in html
    assert move(pending_run_approval, "reject") not in html


def test_the_requester_may_still_edit_her_request(client, pending_run_approval):
    html = page_of(login(client, "alice"), pending_run_approval).content.decode()
    assert 'name="request_notes"' in html and 'name="_save"' in html


def test_a_decided_approval_shows_qualifications_as_a_list_not_json(client, demo):
    approved = Approval.objects.exclude(approver_qualifications={}).first()
    [qualification] = approved.approver_qualifications["qualifications"]
    response = page_of(login(client, "admin"), approved)
    html = response.content.decode()
    assert (
        f"<li>{qualification['designation']} ({qualification['issuing_body']}), member "
        f"{qualification['membership_number']}, valid from"
    ) in html
    assert "checked_on" not in html
    assert "is approved: its record is fixed" in response.context["read_only_reason"]


def test_queue_rows_name_their_subject(client, demo):
    response = login(client, "admin").get(reverse("admin:approvals_approval_changelist"))
    labels = [approval.subject_label() for approval in response.context["cl"].result_list]
    assert len(labels) == len(set(labels)) == Approval.objects.count()
    assert "Workflow approval of run “Chain ladder with Mack: RAA (demo)”" in labels


def test_the_page_costs_a_bounded_number_of_queries(
    client, pending_run_approval, django_assert_max_num_queries
):
    login(client, "bob")
    with django_assert_max_num_queries(60):
        assert page_of(client, pending_run_approval).status_code == 200


def test_what_changed_since_the_previous_run_is_read_from_both_summaries():
    def summary(ibnr, average, method="chain_ladder"):
        return {
            "method": method,
            "options": {"average": average, "engine": "x"},
            "origins": [{"origin": "2020", "ultimate": 100 + ibnr, "ibnr": ibnr}],
            "totals": {"ultimate": 100 + ibnr, "ibnr": ibnr, "latest": 100},
        }

    changes = _changes(summary(1000, "volume"), summary(1500, "simple", "cape_cod"))
    rows = [(c.what, c.before, c.after, c.difference) for c in changes]
    assert rows == [
        ("Total ultimate", "1,100", "1,600", "+500"),
        ("Total IBNR", "1,000", "1,500", "+500"),
        ("Method", "Chain ladder", "Cape Cod", ""),
        ("Average", "volume", "simple", ""),
    ]
