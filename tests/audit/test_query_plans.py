"""The audit log's filters at volume: the query shapes and the indexes PostgreSQL uses.

Not timed: these tests seed a log (seed_volume, a valid chain spread over two years),
ANALYZE it, send the API's list requests with each filter, and EXPLAIN the query the
list ran. The plan must start from the filter's index (never walk the whole sequence
index backwards past newer entries) and no query may DISTINCT whole rows. `make bench`
prints the times.
"""

import datetime
import re

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
    """Return (SQL, EXPLAIN) of the audit list query a request with `params` (or a link) ran."""
    url, params = (params, None) if isinstance(params, str) else (AUDIT_LOGS, params)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
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
    with CaptureQueriesContext(connection) as queries:
        assert superuser_client.get(AUDIT_LOGS, month).status_code == 200
    # The month's first and last sequence numbers: one pass over the time index.
    [bounds] = [q["sql"] for q in queries.captured_queries if "MIN(" in q["sql"]]
    assert "MAX(" in bounds
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {bounds}")
        bounds_plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "audit_time_sequence_idx" in bounds_plan, bounds_plan
    assert bounds_plan.count("audit_time_sequence_idx") == 1, bounds_plan  # one pass
    sql, plan = list_plan(superuser_client, month)
    # The walk down the chain starts and stops at the month's sequence numbers.
    assert "Index Cond: ((sequence >= " in plan and "(sequence <= " in plan, plan
    assert "DISTINCT" not in sql


def test_a_range_with_no_entries_is_an_empty_page(seeded, superuser_client):
    later = timezone.now() + datetime.timedelta(days=30)
    response = superuser_client.get(
        AUDIT_LOGS,
        {
            "created_after": later.isoformat(),
            "created_before": (later + datetime.timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert response.json()["results"] == []


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
    """Not a walk of the chain: the newest entries of each of their engagements and their own.

    An actuary on a few engagements of 500: their share of the log is small, as it is at
    a firm's volume (a team of three on a few of 10,000 engagements).
    """
    actuary = fewest_engagements(User.objects.all())
    _sql, plan = list_plan(client_for(actuary), {"page_size": 100})
    assert_read_by_branch(plan)
    assert page_of(actuary, {"page_size": 100}) == theirs(actuary)[:100]


@pytest.fixture
def quiet_actuary(db):
    """Return an actuary whose engagements went quiet: 40,000 newer entries came after."""
    call_command("seed_volume", engagements=50, runs=200, audit=3000, users=20, force=True)
    actuary = fewest_engagements(User.objects.all())
    call_command("seed_volume", engagements=500, runs=2000, audit=40_000, users=400, force=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_auditlog")
    return actuary


def fewest_engagements(users):
    user_id = (
        EngagementMember.objects.filter(user__in=users)
        .values("user_id")
        .annotate(engagements=Count("engagement_id"))
        .order_by("engagements", "user_id")
        .values_list("user_id", flat=True)
        .first()
    )
    return reader(User.objects.get(pk=user_id))


def theirs(user, **filters) -> list[int]:
    engagements = EngagementMember.objects.filter(user=user).values_list("engagement_id")
    return list(
        AuditLog.objects.filter(Q(engagement_id__in=engagements) | Q(user=user), **filters)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
    )


def page_of(user, params) -> list[int]:
    response = client_for(user).get(AUDIT_LOGS, params)
    assert response.status_code == 200, response.content
    return [row["sequence"] for row in response.json()["results"]]


def analyzed_plan(client, params) -> str:
    """Return EXPLAIN (ANALYZE, BUFFERS) of the audit list query a request ran."""
    sql, _plan = list_plan(client, params)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def assert_read_by_branch(plan: str, *, rows_read: int = 2_000) -> None:
    """Assert the page was read from the newest entries of each branch, not down the chain."""
    # Each engagement's entries from an index that starts with it (a small one may be
    # read whole by either), and the user's own from theirs.
    assert re.search(r"Index Cond: \(+engagement_id = branch\.id", plan), plan
    assert "audit_user_sequence_idx" in plan, plan
    assert "Function Scan on unnest" in plan, plan
    # Each branch stops at the page's size: newest first from its index, or all of a
    # branch smaller than a page.
    assert plan.count("->  Limit") >= 3, plan
    # The page is then looked up by sequence, never read down the whole chain backwards
    # filtering out everybody else's entries.
    for scan in re.findall(r"Scan (?:Backward )?using audit_auditlog_sequence\w*.*\n.*", plan):
        assert "Index Cond: " in scan and "(sequence = ANY (" in scan, plan
    removed = [int(n) for n in re.findall(r"Rows Removed by Filter: (\d+)", plan)]
    assert sum(removed) < rows_read, plan


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"action": ["workflow_fail", "workflow_start"]},
        {"resource_type": "workflowrun"},
        {"search": "fail"},
    ],
    ids=["all", "actions", "resource type", "search"],
)
def test_an_actuary_whose_engagements_went_quiet_is_not_read_down_the_chain(
    quiet_actuary, params, django_assert_max_num_queries
):
    """Their newest entry is 40,000 entries back: the plan reads theirs, never those 40,000."""
    client = client_for(quiet_actuary)
    newest = theirs(quiet_actuary)[0]
    assert AuditLog.objects.filter(sequence__gt=newest).count() >= 40_000
    params = {**params, "page_size": 40}
    assert_read_by_branch(analyzed_plan(client, params))
    # The token, the user, their engagements' ids, the page: never a query per row.
    with django_assert_max_num_queries(6):
        first = client.get(AUDIT_LOGS, params).json()
    # The next page (a cursor's bound) and the way back (ascending) are read the same way.
    assert_read_by_branch(analyzed_plan(client, first["next"]))
    second = client.get(first["next"]).json()
    assert_read_by_branch(analyzed_plan(client, second["previous"]))
    assert client.get(second["previous"]).json()["results"] == first["results"]
    filters = {
        "action": {"action__in": params.get("action")},
        "resource_type": {"resource_type": params.get("resource_type")},
        "search": {"description__icontains": params.get("search")},
    }
    expected = theirs(
        quiet_actuary,
        **{k: v for key, f in filters.items() if key in params for k, v in f.items()},
    )
    assert [row["sequence"] for row in first["results"] + second["results"]] == expected[:80]
