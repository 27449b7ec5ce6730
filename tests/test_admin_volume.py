"""Changelists at volume: bounded filter sidebars, no scans to build them, no full counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from records.admin.base import FILTER_CHOICES_LIMIT
from tests.factories import EngagementFactory, UserFactory, WorkflowRunFactory
from workflows.admin.filters import AGENT_SAMPLE

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:workflows_workflowrun_changelist")
ARTEFACTS = reverse("admin:artefacts_artefact_changelist")
AUDIT = reverse("admin:audit_auditlog_changelist")


def choices(response, title: str) -> list[str]:
    [spec] = [spec for spec in response.context["cl"].filter_specs if spec.title == title]
    return [choice["display"] for choice in spec.choices(response.context["cl"])][1:]


def test_the_engagement_filter_lists_the_latest_and_the_chosen_one(admin_client):
    engagements = EngagementFactory.create_batch(FILTER_CHOICES_LIMIT + 5)
    oldest = engagements[0]
    listed = choices(admin_client.get(RUNS), "engagement")
    assert len(listed) == FILTER_CHOICES_LIMIT and str(oldest) not in listed

    response = admin_client.get(RUNS, {"engagement_id": str(oldest.pk)})
    assert str(oldest) in choices(response, "engagement")


def test_the_user_filter_is_bounded_and_keeps_djangos_parameter(admin_client):
    users = UserFactory.create_batch(FILTER_CHOICES_LIMIT + 5)
    assert len(choices(admin_client.get(AUDIT), "user")) == FILTER_CHOICES_LIMIT
    quiet = users[0]
    response = admin_client.get(AUDIT, {"user__id__exact": quiet.pk})
    assert response.status_code == 200 and quiet.username in choices(response, "user")


def test_the_agent_filter_reads_the_latest_runs_only(admin_client):
    WorkflowRunFactory(agent_name="reserving-agent")
    WorkflowRunFactory(agent_name="")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(RUNS)
    assert choices(response, "agent name") == ["reserving-agent"]
    sql = [query["sql"] for query in queries.captured_queries if '"agent_name"' in query["sql"]]
    assert not [s for s in sql if "DISTINCT" in s.upper()]
    assert any(f"LIMIT {AGENT_SAMPLE}" in s for s in sql)
    filtered = admin_client.get(RUNS, {"agent_name__exact": "reserving-agent"})
    assert filtered.context["cl"].result_count == 1


@pytest.mark.parametrize("url", [RUNS, ARTEFACTS, AUDIT])
def test_no_date_hierarchy_and_one_count_at_most(admin_client, url):
    WorkflowRunFactory()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    assert response.context["cl"].date_hierarchy is None
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert len(counts) <= 1, counts  # no second, full-table count (show_full_result_count)
