"""The audit log's filters at volume: the query shapes and the indexes PostgreSQL uses.

Not timed: these tests seed a log (seed_volume, a valid chain spread over two years),
ANALYZE it, send the API's list requests with each filter, and EXPLAIN the query the
list ran. The plan must start from the filter's index (never walk the whole sequence
index backwards past newer entries) and no query may DISTINCT whole rows. `make bench`
prints the times.
"""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditLog
from engagements.models import EngagementMember
from tests.api_fixtures import API, client_for, reader, superuser_client

__all__ = ("superuser_client",)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

AUDIT_LOGS = f"{API}/audit-logs/"
User = get_user_model()
ROWS = 20_000


@pytest.fixture
def seeded():
    # A firm's shape: each user and resource is a small share of the log.
    call_command("seed_volume", engagements=500, runs=2000, audit=ROWS, users=400, force=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditlog")


def list_plan(client, params) -> tuple[str, str]:
    """Return (SQL, EXPLAIN) of the audit list query a request with `params` ran."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(AUDIT_LOGS, params)
    assert response.status_code == 200, response.content
    [sql] = [
        query["sql"]
        for query in queries.captured_queries
        if 'FROM "audit_auditlog"' in query["sql"] and "LIMIT" in query["sql"]
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return sql, "\n".join(row[0] for row in cursor.fetchall())


def test_a_month_is_read_from_the_time_index_then_a_bounded_stretch_of_the_chain(
    seeded, superuser_client
):
    now = timezone.now()
    month = {
        "created_after": (now - datetime.timedelta(days=700)).isoformat(),
        "created_before": (now - datetime.timedelta(days=670)).isoformat(),
    }
    sql, plan = list_plan(superuser_client, month)
    assert "audit_time_sequence_idx" in plan, plan
    # The walk down the chain starts and stops at the month's sequence numbers.
    assert "Index Cond: ((sequence >= " in plan and "(sequence <= " in plan, plan
    assert "DISTINCT" not in sql


def test_the_bounds_never_drop_an_entry_of_the_range(seeded, superuser_client):
    now = timezone.now()
    after, before = now - datetime.timedelta(days=400), now - datetime.timedelta(days=399)
    response = superuser_client.get(
        AUDIT_LOGS,
        {
            "created_after": after.isoformat(),
            "created_before": before.isoformat(),
            "page_size": 100,
        },
    )
    expected = list(
        AuditLog.objects.filter(created_at__gte=after, created_at__lte=before)
        .order_by("-sequence")
        .values_list("sequence", flat=True)[:100]
    )
    assert expected and [row["sequence"] for row in response.json()["results"]] == expected


def test_user_and_action_read_the_users_index_without_distinct(seeded, superuser_client):
    user_id = AuditLog.objects.exclude(user=None).values_list("user_id", flat=True).first()
    sql, plan = list_plan(
        superuser_client, {"user_id": user_id, "action": ["workflow_fail", "workflow_start"]}
    )
    assert "DISTINCT" not in sql
    assert "audit_user_sequence_idx" in plan, plan


def test_a_resource_reads_the_resource_index(seeded, superuser_client):
    resource_id = AuditLog.objects.values_list("resource_id", flat=True).first()
    _sql, plan = list_plan(
        superuser_client, {"resource_type": "workflowrun", "resource_id": resource_id}
    )
    assert "audit_resource_idx" in plan, plan


def test_the_seeded_chain_verifies(db):
    call_command("seed_volume", engagements=5, runs=20, audit=300, users=5, force=True)
    call_command("verify_audit_log", "--no-progress")


def test_an_actuarys_log_reads_their_engagements_and_their_own_events_by_index(seeded):
    """Not a walk of the chain: the entries of their engagements and their own, from indexes.

    An actuary on one engagement of 500: their share of the log is small, as it is at a
    firm's volume (a team of three on a few of 10,000 engagements).
    """
    user_id = (
        EngagementMember.objects.values("user_id")
        .annotate(engagements=Count("engagement_id"))
        .order_by("engagements", "user_id")
        .values_list("user_id", flat=True)
        .first()
    )
    actuary = reader(User.objects.get(pk=user_id))
    engagements = set(
        EngagementMember.objects.filter(user=actuary).values_list("engagement_id", flat=True)
    )
    _sql, plan = list_plan(client_for(actuary), {"page_size": 100})
    assert "audit_engagement_time_idx" in plan and "audit_user_sequence_idx" in plan, plan
    assert "BitmapOr" in plan, plan
    assert "SubPlan" not in plan, plan
    response = client_for(actuary).get(AUDIT_LOGS, {"page_size": 100})
    expected = list(
        AuditLog.objects.filter(Q(engagement_id__in=engagements) | Q(user=actuary))
        .order_by("-sequence")
        .values_list("sequence", flat=True)[:100]
    )
    assert expected and [row["sequence"] for row in response.json()["results"]] == expected
