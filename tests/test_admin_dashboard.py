"""The admin index is the actuary's dashboard: their pending work, scoped, in bounded queries."""

import datetime

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.selectors import approval_decision_refusal, approvals_awaiting_decision_by
from approvals.services import approval_request
from audit.choices import AuditAction, Severity
from audit.services import audit_record
from config.admin_site import WorkspaceAdminSite
from engagements.services import engagement_activate
from tests.admin_fixtures import (
    actuaries_group,
    count_queries,
    in_group,
    lead,
    lead_client,
    outsider,
    outsider_engagement,
    qualified_reviewer,
    reviewer_client,
)
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory
from tests.factories.states import artefact_in, run_in
from workflows.services import workflow_run_fail, workflow_run_start

__all__ = (
    "actuaries_group",
    "lead",
    "lead_client",
    "outsider",
    "outsider_engagement",
    "qualified_reviewer",
    "reviewer_client",
)

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


@pytest.fixture
def active(engagement, lead):
    return engagement_activate(engagement=engagement, actor=lead)


def review_of(engagement, *, actor, designated=None, **fields):
    """Return a pending artefact review requested by `actor` on a new artefact."""
    artefact = artefact_in(engagement, actor=actor, name=fields.pop("name", "Triangle"))
    return approval_request(
        approval_type=fields.pop("approval_type", ApprovalType.ARTEFACT_REVIEW),
        artefact=artefact,
        designated_approver=designated,
        actor=actor,
        **fields,
    )


def section(response, name):
    return response.context["dashboard"].__dict__[name]


def test_the_admin_site_is_the_workspace_site_and_keeps_its_urls():
    assert isinstance(admin.site, WorkspaceAdminSite)
    assert reverse("admin:index") == "/admin/"
    assert reverse("admin:audit_auditlog_timeline", args=("00000000-0000-0000-0000-000000000000",))


def test_the_index_shows_the_dashboard_above_the_app_list(lead_client):
    response = lead_client.get(INDEX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('id="workspace-dashboard"') < html.index('class="app-list"')
    assert reverse("admin:engagements_engagement_changelist") in html
    for section_id in ("approvals", "due", "runs", "failed-runs", "critical-events"):
        assert f'id="dashboard-{section_id}"' in html


def test_a_section_shows_only_with_the_models_view_permission(client, active):
    stranger = UserFactory(is_staff=True)
    EngagementMemberFactory(engagement=active, user=stranger, role="observer")
    client.force_login(stranger)
    response = client.get(INDEX)
    assert response.status_code == 200
    assert 'id="dashboard-' not in response.content.decode()


class TestPendingApprovals:
    def test_designated_and_reviewable_approvals_are_listed_not_my_own(
        self, reviewer_client, active, lead, qualified_reviewer
    ):
        designated = review_of(active, actor=lead, designated=qualified_reviewer, name="A")
        open_to_team = review_of(active, actor=lead, name="B")
        own = review_of(active, actor=qualified_reviewer, name="C")

        response = reviewer_client.get(INDEX)

        items = section(response, "pending_approvals")
        assert [item.approval for item in items] == [designated, open_to_team]
        assert [item.designated for item in items] == [True, False]
        assert all(item.refusal is None for item in items)
        html = response.content.decode()
        assert reverse("admin:approvals_approval_change", args=(designated.pk,)) in html
        # My own request is listed among my open requests, never among those I decide.
        decide = html[html.index('id="dashboard-approvals"') :]
        decide = decide[: decide.index('id="dashboard-due"')]
        assert reverse("admin:approvals_approval_change", args=(own.pk,)) not in decide
        assert [r.approval for r in section(response, "my_requests")] == [own]

    def test_work_i_did_is_not_offered_to_me(self, client, active, lead, actuaries_group):
        # Carol is a reviewer on the team but created the artefact: not independent.
        carol = in_group(UserFactory(username="carol", is_staff=True), actuaries_group)
        EngagementMemberFactory(engagement=active, user=carol, role="reviewer")
        artefact = artefact_in(active, actor=carol, name="Carol's triangle")
        approval_request(approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=lead)
        client.force_login(carol)
        assert section(client.get(INDEX), "pending_approvals") == []

    def test_a_designated_sign_off_says_a_qualification_is_missing(
        self, client, active, lead, actuaries_group
    ):
        dave = in_group(UserFactory(username="dave", is_staff=True), actuaries_group)
        EngagementMemberFactory(engagement=active, user=dave, role="actuary")
        sign_off = review_of(
            active, actor=lead, designated=dave, approval_type=ApprovalType.ACTUARIAL_SIGN_OFF
        )
        client.force_login(dave)
        [item] = section(client.get(INDEX), "pending_approvals")
        assert item.approval == sign_off and item.designated
        assert "holding a professional qualification valid on" in item.refusal

    def test_expired_and_other_teams_approvals_are_left_out(
        self, monkeypatch, reviewer_client, active, lead, outsider_engagement
    ):
        review_of(active, actor=lead, expires_at=timezone.now() + datetime.timedelta(hours=1))
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(hours=2))
        assert section(reviewer_client.get(INDEX), "pending_approvals") == []

    def test_the_refusal_is_the_services_message(self, active, lead, qualified_reviewer):
        approval = review_of(active, actor=lead)
        assert approval_decision_refusal(approval=approval, user=qualified_reviewer) is None
        assert approval_decision_refusal(approval=approval, user=lead) == (
            f"actuary may not decide approval “{approval}”: they requested it "
            "(reviews must be independent)."
        )

    def test_the_list_is_bounded(self, active, lead, qualified_reviewer):
        for number in range(5):
            review_of(active, actor=lead, name=f"T{number}")
        assert len(approvals_awaiting_decision_by(qualified_reviewer, limit=3)) == 3


class TestDueEngagements:
    def test_open_engagements_due_within_30_days_overdue_first(self, lead_client, active, lead):
        today = timezone.localdate()
        overdue = EngagementFactory(lead_actuary=lead, due_date=today - datetime.timedelta(2))
        later = EngagementFactory(lead_actuary=lead, due_date=today + datetime.timedelta(45))
        for engagement in (overdue, later):
            EngagementMemberFactory(engagement=engagement, user=lead, role="lead")

        response = lead_client.get(INDEX)

        assert section(response, "due_engagements") == [overdue, active]
        html = response.content.decode()
        assert "overdue" in html
        assert reverse("admin:engagements_engagement_change", args=(active.pk,)) in html

    def test_other_teams_and_closed_engagements_are_left_out(
        self, lead_client, outsider_engagement, lead
    ):
        cancelled = EngagementFactory(lead_actuary=lead, status="cancelled")
        EngagementMemberFactory(engagement=cancelled, user=lead, role="lead")
        assert section(lead_client.get(INDEX), "due_engagements") == []


class TestRuns:
    def test_runs_in_progress_and_recent_failures(
        self, monkeypatch, lead_client, active, lead, outsider_engagement
    ):
        running = run_in(active, actor=lead, start=True, name="Running now")
        failed = run_in(active, actor=lead, start=True, name="Failed today")
        workflow_run_fail(run=failed, actor=lead, error_message="Triangle has a gap at 1988/36")
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() - datetime.timedelta(days=10))
        old = run_in(active, actor=lead, start=True, name="Failed long ago")
        workflow_run_fail(run=old, actor=lead, error_message="Old failure")
        monkeypatch.setattr(timezone, "now", real_now)

        response = lead_client.get(INDEX)

        assert section(response, "runs_in_progress") == [running]
        assert section(response, "failed_runs") == [failed]
        html = response.content.decode()
        assert "Triangle has a gap at 1988/36" in html
        assert reverse("admin:workflows_workflowrun_change", args=(running.pk,)) in html
        assert 'role="progressbar"' in html


class TestCriticalEvents:
    @pytest.fixture
    def events(self, active, outsider_engagement, lead):
        mine = audit_record(
            action=AuditAction.ARTEFACT_ACCESS,
            resource=active,
            severity=Severity.CRITICAL,
            description="Stored bytes of Triangle v1 do not match their SHA-256",
            user=lead,
        )
        theirs = audit_record(
            action=AuditAction.ARTEFACT_ACCESS,
            resource=outsider_engagement,
            severity=Severity.CRITICAL,
            description="Their file is missing",
        )
        audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=active, user=lead)
        return mine, theirs

    def test_staff_see_those_of_their_engagements(self, lead_client, events):
        mine, _theirs = events
        response = lead_client.get(INDEX)
        assert section(response, "critical_events") == [mine]
        html = response.content.decode()
        assert reverse("admin:audit_auditlog_change", args=(mine.pk,)) in html
        assert "Their file is missing" not in html

    def test_superusers_see_every_one(self, admin_client, events):
        mine, theirs = events
        assert section(admin_client.get(INDEX), "critical_events") == [theirs, mine]


def _fill(engagement, lead, reviewer, count):
    for number in range(count):
        run = run_in(engagement, actor=lead, name=f"Run {number}")
        workflow_run_start(run=run, actor=lead)
        review_of(engagement, actor=lead, name=f"Triangle {number}")
        audit_record(
            action=AuditAction.ARTEFACT_ACCESS,
            resource=engagement,
            severity=Severity.CRITICAL,
            description=f"Problem {number}",
        )
    for _ in range(count):
        due = EngagementFactory(due_date=timezone.localdate() + datetime.timedelta(days=5))
        EngagementMemberFactory(engagement=due, user=reviewer, role="reviewer")


def test_the_dashboard_costs_the_same_with_many_rows(
    reviewer_client, active, lead, qualified_reviewer, django_assert_max_num_queries
):
    _fill(active, lead, qualified_reviewer, 3)
    few, _ = count_queries(reviewer_client, INDEX)
    _fill(active, lead, qualified_reviewer, 30)
    many, response = count_queries(reviewer_client, INDEX)
    # Every section is one query; the pending approvals add one team check per shown row.
    assert len(section(response, "pending_approvals")) == 10
    assert many <= few + 10
    with django_assert_max_num_queries(30):
        reviewer_client.get(INDEX)
