"""Filters, search and ordering of the workflow run list."""

import datetime

import pytest
from django.utils import timezone

from tests.api_fixtures import API, assert_error, ids, lead, lead_client, results
from tests.factories import EngagementFactory, EngagementMemberFactory, WorkflowRunFactory
from tests.factories.states import run_in
from workflows.services import workflow_run_cancel

__all__ = ("lead", "lead_client")

pytestmark = pytest.mark.django_db

RUNS = f"{API}/workflow-runs/"


@pytest.fixture
def runs(engagement, lead):
    """Runs in two engagements of the lead that differ in every filtered field."""
    other = EngagementFactory(client_code="ZETA")
    EngagementMemberFactory(engagement=other, user=lead, role="lead")
    chain_ladder = run_in(engagement, actor=lead, name="Chain ladder", period="2025-Q4", start=True)
    csm = run_in(
        other,
        actor=lead,
        workflow_type="csm_calculation",
        name="CSM roll-forward",
        period="2025-12",
        agent_name="ifrs17-agent",
        trace_id="trace-csm",
    )
    csm = workflow_run_cancel(run=csm, actor=lead)
    idle = WorkflowRunFactory(engagement=other, workflow_type="custom", name="Idle", period="")
    idle.created_at = timezone.now() - datetime.timedelta(days=10)
    idle.save()
    return {"chain_ladder": chain_ladder, "csm": csm, "idle": idle}


def pks(runs, *names):
    return {str(runs[name].pk) for name in names}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "running"}, ("chain_ladder",)),
        ({"status": ["cancelled", "pending"]}, ("csm", "idle")),
        ({"workflow_type": "csm_calculation"}, ("csm",)),
        ({"client_code": "zeta"}, ("csm", "idle")),
        ({"period": "2025-Q4"}, ("chain_ladder",)),
        ({"agent_name": "ifrs17-agent"}, ("csm",)),
        ({"trace_id": "trace-csm"}, ("csm",)),
        ({"search": "ladder"}, ("chain_ladder",)),
        ({"search": "2025-12"}, ("csm",)),
    ],
)
def test_run_filters(runs, lead_client, params, expected):
    assert ids(lead_client.get(RUNS, params)) == pks(runs, *expected)


def test_engagement_people_and_date_filters(runs, engagement, lead, lead_client):
    assert ids(lead_client.get(RUNS, {"engagement_id": engagement.pk})) == pks(runs, "chain_ladder")
    assert ids(lead_client.get(RUNS, {"started_by_id": lead.pk})) == pks(runs, "chain_ladder")
    assert ids(lead_client.get(RUNS, {"created_by_id": lead.pk})) == pks(
        runs, "chain_ladder", "csm"
    )
    hour_ago = (timezone.now() - datetime.timedelta(hours=1)).isoformat()
    assert ids(lead_client.get(RUNS, {"started_after": hour_ago})) == pks(runs, "chain_ladder")
    assert ids(lead_client.get(RUNS, {"started_before": hour_ago})) == set()
    assert ids(lead_client.get(RUNS, {"completed_after": hour_ago})) == pks(runs, "csm")
    assert ids(lead_client.get(RUNS, {"completed_before": hour_ago})) == set()
    assert ids(lead_client.get(RUNS, {"created_before": hour_ago})) == pks(runs, "idle")
    assert ids(lead_client.get(RUNS, {"created_after": hour_ago})) == pks(
        runs, "chain_ladder", "csm"
    )


def test_run_ordering(runs, lead_client):
    names = [row["name"] for row in results(lead_client.get(RUNS, {"ordering": "name"}))]
    # The database's collation decides "CSM" vs "Chain"; "Idle" comes last in any.
    assert (set(names[:2]), names[2]) == ({"Chain ladder", "CSM roll-forward"}, "Idle")
    names = [row["name"] for row in results(lead_client.get(RUNS, {"ordering": "-created_at"}))]
    assert names[-1] == "Idle"


@pytest.mark.parametrize(
    "params",
    [{"status": "done"}, {"engagement_id": "abc"}, {"started_after": "later"}],
)
def test_bad_filter_values_are_400(runs, lead_client, params):
    body = assert_error(lead_client.get(RUNS, params), 400, "invalid")
    assert set(body["errors"]) == set(params)
