"""Counts of big lists: exact up to EXACT_COUNT_LIMIT, the planner's estimate above it."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditLog
from records.pagination import EstimatedCountPaginator, estimated_count
from tests.api_fixtures import API, superuser_client
from tests.factories import AuditLogFactory

__all__ = ("superuser_client",)

pytestmark = pytest.mark.django_db


def test_small_lists_are_counted_exactly(settings):
    settings.EXACT_COUNT_LIMIT = 10
    AuditLogFactory.create_batch(4)
    assert estimated_count(AuditLog.objects.all()) == 4
    assert EstimatedCountPaginator(AuditLog.objects.order_by("pk"), 2).count == 4
    assert estimated_count([1, 2, 3]) == 3


@pytest.mark.postgres
def test_past_the_limit_the_count_is_the_estimate_and_no_full_count_runs(settings):
    settings.EXACT_COUNT_LIMIT = 5
    AuditLogFactory.create_batch(12)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditlog")
    with CaptureQueriesContext(connection) as queries:
        count = estimated_count(AuditLog.objects.all())
    assert count >= 6
    [bounded, explain] = [query["sql"] for query in queries.captured_queries]
    assert "LIMIT 6" in bounded and explain.upper().startswith("EXPLAIN (FORMAT JSON)")


def test_limit_zero_counts_exactly(settings):
    settings.EXACT_COUNT_LIMIT = 0
    AuditLogFactory.create_batch(3)
    assert estimated_count(AuditLog.objects.all()) == 3


def test_api_lists_count_through_it(settings, superuser_client):
    settings.EXACT_COUNT_LIMIT = 2
    response = superuser_client.get(f"{API}/users/")
    assert response.status_code == 200 and response.json()["count"] >= 1
