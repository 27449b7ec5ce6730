"""The dashboard of the person doing the work (issue 17), on the demo data: my runs waiting
for review, my open requests, the review points waiting for my answer, my failed runs,
and one place to start a reserving analysis; every section bounded in queries."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.models import Approval
from approvals.services import review_point_raise
from workflows.choices import WorkflowStatus
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


@pytest.fixture
def demo():
    call_command("load_demo", force=True)


def user(username):
    return get_user_model().objects.get(username=username)


def dashboard_of(client, username):
    client.force_login(user(username))
    response = client.get(INDEX)
    assert response.status_code == 200
    return response


def test_my_run_waiting_for_review_stays_on_my_dashboard(client, demo):
    response = dashboard_of(client, "alice")
    dashboard = response.context["dashboard"]
    waiting = WorkflowRun.objects.get(status=WorkflowStatus.WAITING_APPROVAL)
    assert dashboard.my_runs_in_review == [waiting]
    [request] = dashboard.my_requests
    assert request.approval.workflow_run == waiting and request.unresolved == 0
    html = response.content.decode()
    assert "Workflow approval of run “Chain ladder with Mack: RAA (demo)”" in html
    # Bob reviews it; Alice's dashboard does not show it as hers to review.
    assert dashboard_of(client, "bob").context["dashboard"].my_runs_in_review == []


def test_a_review_point_waits_for_the_preparers_answer(client, demo):
    approval = Approval.objects.get(
        approval_type=ApprovalType.WORKFLOW_APPROVAL, status=ApprovalStatus.PENDING
    )
    point = review_point_raise(
        approval=approval, actor=user("bob"), text="Why no tail beyond 120 months?"
    )
    response = dashboard_of(client, "alice")
    assert response.context["dashboard"].points_to_answer == [point]
    [request] = response.context["dashboard"].my_requests
    assert request.unresolved == 1
    html = response.content.decode()
    assert "Why no tail beyond 120 months?" in html and "Bob Castellano" in html
    # The one who raised it does not answer it.
    assert dashboard_of(client, "bob").context["dashboard"].points_to_answer == []


def test_my_failed_runs_are_listed(client, demo):
    failed = WorkflowRun.objects.get(status=WorkflowStatus.FAILED)
    mine = failed.created_by.username
    assert failed in dashboard_of(client, mine).context["dashboard"].failed_runs


def test_one_entry_point_starts_a_reserving_analysis(client, demo):
    response = dashboard_of(client, "alice")
    html = response.content.decode()
    assert html.count('id="start-analysis-button"') == 1
    engagements = response.context["dashboard"].start_engagements
    assert engagements and all(e.status == "active" for e in engagements)
    # Where the guided path is not installed, the run form with the engagement chosen.
    try:
        guided = reverse("admin:workflows_new_analysis", args=(engagements[0].pk,))
    except Exception:
        guided = (
            f"{reverse('admin:workflows_workflowrun_add')}?engagement={engagements[0].pk}"
            "&amp;workflow_type=reserve_calculation"
        )
    assert f'data-url="{guided}"' in html


@pytest.mark.parametrize("username", ["alice", "bob", "admin"])
def test_the_dashboard_costs_a_bounded_number_of_queries(
    client, demo, username, django_assert_max_num_queries
):
    client.force_login(user(username))
    with django_assert_max_num_queries(40):
        client.get(INDEX)
