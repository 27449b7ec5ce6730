"""The REST API of notifications: your own list, read marks, your preferences."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from notifications.choices import EmailMode, NotificationEvent
from notifications.models import Notification, NotificationPreference
from notifications.recipients import engagement_due_announcements
from notifications.services import announce
from tests.api_fixtures import API, assert_error, client_for, ids, results
from tests.factories import EngagementFactory, EngagementMemberFactory

pytestmark = pytest.mark.django_db

E = NotificationEvent
LIST = f"{API}/notifications/"
PREFERENCES = f"{API}/notification-preferences/"
MINE = f"{PREFERENCES}mine/"


def due_reminders_for(lead, count: int) -> list[Notification]:
    """Give `lead` `count` reminders of engagements they lead, due tomorrow."""
    for index in range(count):
        engagement = EngagementFactory(
            client_code=f"D{lead.pk}{index:03d}",
            lead_actuary=lead,
            due_date=timezone.localdate() + datetime.timedelta(days=1),
        )
        EngagementMemberFactory(engagement=engagement, user=lead, role="lead")
    for announcement in engagement_due_announcements(today=timezone.localdate(), days=3):
        announce(announcement)
    return list(Notification.objects.filter(recipient=lead))


def test_you_list_and_read_only_your_own_notifications(team):
    mine = due_reminders_for(team.alice, 2)
    theirs = due_reminders_for(team.bob, 1)
    client = client_for(team.alice)  # no model permission needed: they are hers

    response = client.get(LIST)
    assert ids(response) == {str(n.pk) for n in mine}
    row = results(response)[0]
    assert row["event"] == "engagement_due" and row["is_read"] is False
    assert row["url"].startswith("https://backoffice.example.com/admin/engagements/engagement/")
    assert row["subject"].startswith("Engagement due tomorrow: ")
    assert row["actor"] is None and row["actor_name"] is None

    for user in (team.alice, team.root):  # not even a superuser sees another's
        other = client_for(user).get(f"{LIST}{theirs[0].pk}/")
        assert_error(other, 404, "not_found")
        refused = client_for(user).post(f"{LIST}{theirs[0].pk}/read/")
        assert_error(refused, 404, "not_found")
    theirs[0].refresh_from_db()
    assert theirs[0].read_at is None


def test_marking_read_unread_and_all_read(team):
    first, second = due_reminders_for(team.alice, 2)
    client = client_for(team.alice)

    read = client.post(f"{LIST}{first.pk}/read/")
    assert read.status_code == 200 and read.json()["is_read"] is True
    assert ids(client.get(LIST, {"read": "false"})) == {str(second.pk)}
    assert ids(client.get(LIST, {"read": "true"})) == {str(first.pk)}
    unread = client.post(f"{LIST}{first.pk}/unread/")
    assert unread.json()["read_at"] is None

    response = client.post(f"{LIST}read-all/")
    assert response.status_code == 200 and response.json() == {"marked_read": 2}
    assert not Notification.objects.filter(recipient=team.alice, read_at__isnull=True).exists()
    assert client.post(f"{LIST}read-all/").json() == {"marked_read": 0}


def test_filters_refuse_bad_values(team):
    client = client_for(team.alice)
    assert_error(client.get(LIST, {"event": "nonsense"}), 400, "invalid", match="event")
    assert_error(client.get(LIST, {"engagement_id": "42"}), 400, "invalid", match="engagement_id")
    assert results(client.get(LIST, {"event": E.ENGAGEMENT_DUE})) == []


@pytest.mark.parametrize("page_size", [1, 100])
def test_the_list_costs_a_fixed_number_of_queries(team, page_size, django_assert_max_num_queries):
    due_reminders_for(team.alice, 30)
    client = client_for(team.alice)
    with django_assert_max_num_queries(4):
        response = client.get(LIST, {"page_size": page_size})
    assert len(results(response)) == min(page_size, 30)


def test_your_preferences_default_and_change(team):
    client = client_for(team.bob)
    assert client.get(MINE).json() == {
        "email_enabled": True,
        "email_mode": "immediate",
        "muted_events": [],
        "updated_at": None,
    }
    assert client.get(PREFERENCES).json()[0]["email_mode"] == "immediate"
    assert not NotificationPreference.objects.exists()  # reading creates nothing

    response = client.patch(
        MINE, {"email_mode": EmailMode.DIGEST, "muted_events": [E.RUN_FAILED]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["muted_events"] == ["run_failed"]
    preference = NotificationPreference.objects.get(user=team.bob)
    assert (preference.email_mode, preference.muted_events) == (EmailMode.DIGEST, ["run_failed"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"muted_events": ["nonsense"]}, "muted_events"),
        ({"email_mode": "hourly"}, "email_mode"),
        ({"user": 1}, "user"),
    ],
)
def test_bad_preferences_are_refused_and_change_nothing(team, body, field):
    response = client_for(team.bob).patch(MINE, body, format="json")
    assert_error(response, 400, "invalid")
    assert field in response.json()["errors"]
    assert not NotificationPreference.objects.exists()


def test_the_preferences_answer_options_and_a_null_change_time_before_any_change(db):
    """Found by the API fuzz run (tests/test_api_fuzz.py): OPTIONS was a 500."""
    from tests.api_fixtures import client_for
    from tests.factories import UserFactory

    client = client_for(UserFactory())
    assert client.options("/api/v1/notification-preferences/mine/").status_code == 200
    body = client.get("/api/v1/notification-preferences/").json()
    assert body[0]["updated_at"] is None
