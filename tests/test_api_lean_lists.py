"""The lean list path (records.api.lean) writes exactly what the full serializers write.

The engagements, workflow runs and audit log lists represent their rows through
`LeanListSerializer`; details go through the full serializer. For the same rows
(seeded at volume's shape, plus the edge cases: nulls, a re-run, a system event),
each list's JSON must be byte for byte the full serializer's, row after row, so the
two cannot drift apart.
"""

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from audit.api.serializers import AuditLogSerializer
from audit.api.views import AuditLogViewSet
from engagements.api.serializers import EngagementSerializer
from engagements.api.views import EngagementViewSet
from records.api.lean import LeanListSerializer
from tests.api_fixtures import API, superuser_client
from tests.factories import AuditLogFactory, EngagementFactory, WorkflowRunFactory
from workflows.api.serializers import WorkflowRunSerializer
from workflows.api.views import WorkflowRunViewSet

__all__ = ("superuser_client",)

pytestmark = pytest.mark.django_db

LISTS = {
    "engagements": (EngagementViewSet, EngagementSerializer),
    "workflow-runs": (WorkflowRunViewSet, WorkflowRunSerializer),
    "audit-logs": (AuditLogViewSet, AuditLogSerializer),
}


@pytest.fixture
def rows():
    call_command("seed_volume", engagements=6, runs=40, audit=120, users=8, force=True)
    engagement = EngagementFactory(description="", metadata={"tags": ["a", "ü"]}, config={})
    first = WorkflowRunFactory(engagement=engagement, started_at=timezone.now())
    WorkflowRunFactory(engagement=engagement, rerun_of=first, output_summary=None)
    AuditLogFactory(user=None, engagement_id=None, old_value=None, ip_address="10.0.0.1")


def render(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize("name", LISTS)
def test_every_row_of_the_list_is_written_as_the_full_serializer_writes_it(rows, name):
    viewset, serializer = LISTS[name]
    assert serializer.Meta.list_serializer_class is LeanListSerializer
    objects = list(viewset.queryset.all())
    assert len(objects) > 5
    lean = serializer(objects, many=True, context={"request": None}).data
    full = [serializer(row, context={"request": None}).data for row in objects]
    assert [render(row) for row in lean] == [render(row) for row in full]
    # Dict equality too: the same keys in the same order, the same Python values.
    assert [list(row.items()) for row in lean] == [list(row.items()) for row in full]


@pytest.mark.parametrize("name", LISTS)
def test_the_list_endpoint_answers_the_full_serializers_json(rows, superuser_client, name):
    viewset, serializer = LISTS[name]
    response = superuser_client.get(f"{API}/{name}/", {"page_size": 100})
    assert response.status_code == 200
    results = response.json()["results"]
    by_id = {str(row.pk): row for row in viewset.queryset.all()}
    expected = [serializer(by_id[row["id"]], context={"request": None}).data for row in results]
    body = response.content
    # The page's results are the full serializer's rows, rendered the same way.
    assert render(expected)[1:-1] in body
