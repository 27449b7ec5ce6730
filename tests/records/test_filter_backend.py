"""The API's filter backend skips the FilterSet only when no filter is named (issue 18)."""

import pytest

from tests.api_fixtures import API, superuser_client
from tests.factories import AuditLogFactory, EngagementFactory, WorkflowRunFactory

__all__ = ("superuser_client",)

pytestmark = pytest.mark.django_db

LISTS = ("engagements", "workflow-runs", "audit-logs")


@pytest.fixture
def rows():
    for engagement in EngagementFactory.create_batch(3):
        WorkflowRunFactory(engagement=engagement)
        AuditLogFactory(engagement_id=engagement.pk)


@pytest.mark.parametrize("name", LISTS)
def test_no_filter_answers_what_the_filterset_answers(rows, superuser_client, name):
    # An empty value names a filter: that request goes through the FilterSet.
    plain = superuser_client.get(f"{API}/{name}/", {"page_size": 100})
    filtered = superuser_client.get(f"{API}/{name}/", {"page_size": 100, "created_after": ""})
    assert plain.status_code == filtered.status_code == 200
    assert plain.json()["results"] == filtered.json()["results"]


@pytest.mark.parametrize("name", LISTS)
def test_a_bad_filter_value_is_still_refused(rows, superuser_client, name):
    response = superuser_client.get(f"{API}/{name}/", {"created_after": "not a date"})
    assert response.status_code == 400, response.content
