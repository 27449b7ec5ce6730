"""An actuary's audit log, page by page: every entry of theirs once, in chain order.

On PostgreSQL the page of a user who sees only their engagements is read branch by
branch (audit.selectors.audit_log_first_in_branches), on SQLite by the plain query:
on both, walking the cursor forwards, then back through the `previous` links, with
each filter and page size, gives exactly the entries they may see, in order.
"""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Q
from django.utils import timezone

from audit.choices import AuditAction
from audit.models import AuditLog
from engagements.models import EngagementMember
from tests.api_fixtures import API, client_for, reader
from tests.factories import AuditLogFactory

pytestmark = pytest.mark.django_db

AUDIT_LOGS = f"{API}/audit-logs/"
User = get_user_model()


@pytest.fixture
def actuary(db):
    """Return a team member whose engagements went quiet: a newer firm's log came after."""
    call_command("seed_volume", engagements=6, runs=30, audit=400, users=10, force=True)
    user_id = (
        EngagementMember.objects.values("user_id")
        .annotate(engagements=Count("engagement_id"))
        .order_by("engagements", "user_id")
        .values_list("user_id", flat=True)
        .first()
    )
    call_command("seed_volume", engagements=6, runs=30, audit=300, users=10, force=True)
    user = reader(User.objects.get(pk=user_id))
    # And a few events of their own outside any engagement, the newest of the log.
    AuditLogFactory.create_batch(3, user=user, action=AuditAction.SETTINGS_CHANGE)
    return user


def theirs(user, **filters) -> list[int]:
    engagements = EngagementMember.objects.filter(user=user).values_list("engagement_id")
    return list(
        AuditLog.objects.filter(Q(engagement_id__in=engagements) | Q(user=user), **filters)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
    )


def walk(client, params) -> tuple[list[int], list[int]]:
    """Return the sequences read following `next` to the end, then `previous` back."""
    forwards, pages, url, query = [], [], AUDIT_LOGS, params
    while url:
        response = client.get(url, query)
        assert response.status_code == 200, response.content
        body = response.json()
        page = [row["sequence"] for row in body["results"]]
        forwards += page
        pages.append((page, body["previous"]))
        url, query = body["next"], None
    backwards, (page, url) = [], pages[-1]
    backwards = page
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        backwards = [row["sequence"] for row in body["results"]] + backwards
        url = body["previous"]
    return forwards, backwards


def test_the_seed_gives_an_actuary_whose_engagements_went_quiet(actuary):
    engagements = EngagementMember.objects.filter(user=actuary).values_list("engagement_id")
    newest_of_theirs = max(theirs(actuary, engagement_id__in=engagements))
    assert AuditLog.objects.filter(sequence__gt=newest_of_theirs).count() >= 300
    assert AuditLog.objects.filter(user=actuary).exclude(engagement_id__in=engagements).exists()


@pytest.mark.parametrize("page_size", [1, 7, 100])
def test_every_entry_of_theirs_once_in_order(actuary, page_size):
    expected = theirs(actuary)
    forwards, backwards = walk(client_for(actuary), {"page_size": page_size})
    assert forwards == backwards == expected
    assert len(expected) > 100


def test_with_each_filter(actuary):
    client = client_for(actuary)
    engagement_id = EngagementMember.objects.filter(user=actuary).values_list(
        "engagement_id", flat=True
    )[0]
    run = AuditLog.objects.filter(engagement_id=engagement_id).values("resource_id").first()
    month_start = AuditLog.objects.order_by("created_at").values_list("created_at", flat=True)[
        len(theirs(actuary)) // 2
    ]
    month_end = month_start + datetime.timedelta(days=30)
    other = User.objects.exclude(pk=actuary.pk).filter(audit_events__isnull=False).first()
    cases = [
        (
            {"action": ["workflow_fail", "workflow_start"]},
            {"action__in": ["workflow_fail", "workflow_start"]},
        ),
        (
            {"created_after": month_start.isoformat(), "created_before": month_end.isoformat()},
            {"created_at__gte": month_start, "created_at__lte": month_end},
        ),
        (
            {"resource_type": "workflowrun", "resource_id": run["resource_id"]},
            {"resource_type": "workflowrun", "resource_id": run["resource_id"]},
        ),
        ({"engagement_id": engagement_id}, {"engagement_id": engagement_id}),
        ({"user_id": actuary.pk}, {"user_id": actuary.pk}),
        ({"user_id": other.pk}, {"user_id": other.pk}),
        ({"search": "fail"}, {"description__icontains": "fail"}),
        ({"sequence_after": 200}, {"sequence__gt": 200}),
        ({"action": "settings_change"}, {"action": "settings_change"}),
    ]
    for params, filters in cases:
        expected = theirs(actuary, **filters)
        assert expected, params
        for page_size in (3, 100):
            forwards, backwards = walk(client, {**params, "page_size": page_size})
            assert forwards == backwards == expected, (params, page_size)


def test_nothing_to_see_is_an_empty_page(actuary):
    response = client_for(actuary).get(AUDIT_LOGS, {"action": "login"})
    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


def test_a_user_on_no_engagement_sees_their_own(actuary):
    loner = reader(User.objects.create(username="loner"))
    AuditLogFactory.create_batch(4, user=loner)
    forwards, backwards = walk(client_for(loner), {"page_size": 3})
    assert forwards == backwards == theirs(loner)
    assert len(forwards) == 4


def test_a_time_range_with_no_entries_is_an_empty_page(actuary):
    later = timezone.now() + datetime.timedelta(days=30)
    response = client_for(actuary).get(
        AUDIT_LOGS,
        {
            "created_after": later.isoformat(),
            "created_before": (later + datetime.timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}
