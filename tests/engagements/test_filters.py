"""Filters, search, ordering and pagination of the engagement, team member and user lists."""

import datetime

import pytest
from django.utils import timezone

from engagements.services import engagement_activate
from tests.api_fixtures import (
    API,
    assert_error,
    ids,
    lead,
    lead_client,
    outsider,
    results,
    superuser_client,
)
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory

__all__ = ("lead", "lead_client", "outsider", "superuser_client")

pytestmark = pytest.mark.django_db

ENGAGEMENTS = f"{API}/engagements/"
MEMBERS = f"{API}/team-members/"
USERS = f"{API}/users/"


@pytest.fixture
def portfolio(engagement, lead, reviewer):
    """Three engagements led by `lead` that differ in every filtered field."""
    alm = EngagementFactory(
        client_code="ZETA",
        client_name="Zeta Life",
        name="ALM review",
        engagement_type="alm",
        lead_actuary=lead,
        due_date=datetime.date(2026, 6, 30),
        created_by=lead,
    )
    EngagementMemberFactory(engagement=alm, user=lead, role="lead")
    pricing = EngagementFactory(
        client_code="ACME",
        client_name="Acme Re",
        name="Motor pricing",
        engagement_type="pricing",
        reviewer=reviewer,
        due_date=datetime.date(2026, 1, 15),
    )
    EngagementMemberFactory(engagement=pricing, user=lead, role="actuary")
    EngagementMemberFactory(engagement=pricing, user=reviewer, role="reviewer")
    engagement_activate(engagement=alm, actor=lead)
    return {"reserving": engagement, "alm": alm, "pricing": pricing}


def pks(portfolio, *names):
    return {str(portfolio[name].pk) for name in names}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "active"}, ("alm",)),
        ({"status": ["draft", "active"]}, ("reserving", "alm", "pricing")),
        ({"engagement_type": "pricing"}, ("pricing",)),
        ({"engagement_type": ["alm", "reserving"]}, ("reserving", "alm")),
        ({"client_code": "acme"}, ("pricing",)),
        ({"due_before": "2026-02-01"}, ("pricing",)),
        ({"due_after": "2026-06-30"}, ("alm",)),
        ({"search": "zeta"}, ("alm",)),
        ({"search": "pricing"}, ("pricing",)),
    ],
)
def test_engagement_filters(portfolio, lead_client, params, expected):
    portfolio["reserving"].due_date = datetime.date(2026, 3, 1)
    portfolio["reserving"].save()
    assert ids(lead_client.get(ENGAGEMENTS, params)) == pks(portfolio, *expected)


def test_engagement_people_filters(portfolio, lead, reviewer, lead_client):
    assert ids(lead_client.get(ENGAGEMENTS, {"lead_actuary_id": lead.pk})) == pks(
        portfolio, "reserving", "alm"
    )
    assert ids(lead_client.get(ENGAGEMENTS, {"reviewer_id": reviewer.pk})) == pks(
        portfolio, "reserving", "pricing"
    )
    assert ids(lead_client.get(ENGAGEMENTS, {"member_id": reviewer.pk})) == pks(
        portfolio, "reserving", "pricing"
    )
    assert ids(lead_client.get(ENGAGEMENTS, {"created_by_id": lead.pk})) == pks(
        portfolio, "reserving", "alm"
    )


def test_engagement_created_range(portfolio, lead_client):
    old = portfolio["pricing"]
    old.created_at = timezone.now() - datetime.timedelta(days=30)
    old.save()
    cutoff = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert ids(lead_client.get(ENGAGEMENTS, {"created_before": cutoff})) == pks(
        portfolio, "pricing"
    )
    assert ids(lead_client.get(ENGAGEMENTS, {"created_after": cutoff})) == pks(
        portfolio, "reserving", "alm"
    )
    # A date alone means midnight (UTC).
    day = (timezone.now() - datetime.timedelta(days=2)).date().isoformat()
    assert ids(lead_client.get(ENGAGEMENTS, {"created_after": day})) == pks(
        portfolio, "reserving", "alm"
    )


def test_engagement_ordering(portfolio, lead_client):
    rows = results(lead_client.get(ENGAGEMENTS, {"ordering": "client_code"}))
    assert [row["client_code"] for row in rows][:1] == ["ACME"]
    rows = results(lead_client.get(ENGAGEMENTS, {"ordering": "-due_date"}))
    due = [row["due_date"] for row in rows]
    assert due == sorted(due, reverse=True)
    assert rows[-1]["id"] == str(portfolio["pricing"].pk)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "finished"}, "status"),
        ({"engagement_type": "astrology"}, "engagement_type"),
        ({"due_before": "next week"}, "due_before"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"lead_actuary_id": "alice"}, "lead_actuary_id"),
    ],
)
def test_bad_filter_values_are_400_per_field(portfolio, lead_client, params, field):
    body = assert_error(lead_client.get(ENGAGEMENTS, params), 400, "invalid")
    assert set(body["errors"]) == {field}


def test_unknown_ordering_is_ignored(portfolio, lead_client):
    assert len(results(lead_client.get(ENGAGEMENTS, {"ordering": "password"}))) == 3


def test_page_size_is_capped_at_100(lead, lead_client):
    for _ in range(105):
        EngagementMemberFactory(user=lead, role="actuary")
    body = lead_client.get(ENGAGEMENTS, {"page_size": 500}).json()
    assert (body["count"], len(body["results"])) == (106, 100)
    assert "page=2" in body["next"]
    body = lead_client.get(ENGAGEMENTS, {"page_size": 10, "page": 11}).json()
    assert len(body["results"]) == 6
    assert_error(lead_client.get(ENGAGEMENTS, {"page": 99}), 404, "not_found")


def test_filters_never_reach_hidden_engagements(portfolio, outsider, lead_client):
    hidden = EngagementFactory(client_code="ACME")
    assert str(hidden.pk) not in ids(lead_client.get(ENGAGEMENTS, {"client_code": "ACME"}))


def test_team_member_filters(portfolio, lead, reviewer, lead_client):
    rows = results(lead_client.get(MEMBERS, {"user_id": reviewer.pk}))
    assert {row["engagement"] for row in rows} == pks(portfolio, "reserving", "pricing")
    rows = results(lead_client.get(MEMBERS, {"role": "lead"}))
    assert {row["engagement"] for row in rows} == pks(portfolio, "reserving", "alm")
    rows = results(
        lead_client.get(MEMBERS, {"engagement_id": portfolio["pricing"].pk, "search": "revi"})
    )
    assert [row["username"] for row in rows] == ["reviewer"]
    assert_error(lead_client.get(MEMBERS, {"engagement_id": "x"}), 400, "invalid")


def test_user_filters(portfolio, lead_client, superuser_client):
    stranger_team = EngagementFactory()
    EngagementMemberFactory(engagement=stranger_team, user=UserFactory(username="stranger"))
    team = results(lead_client.get(USERS, {"engagement_id": portfolio["alm"].pk}))
    assert [row["username"] for row in team] == ["actuary"]
    # An engagement you are not on shows nobody, even to someone who knows its id.
    assert results(lead_client.get(USERS, {"engagement_id": stranger_team.pk})) == []
    everyone = results(superuser_client.get(USERS, {"engagement_id": stranger_team.pk}))
    assert [row["username"] for row in everyone] == ["stranger"]
    assert [row["username"] for row in results(lead_client.get(USERS, {"search": "review"}))] == [
        "reviewer"
    ]
