"""Filters and search of the chat session and message lists."""

import datetime

import pytest
from django.utils import timezone

from conversations.services import chat_message_add, session_create
from tests.api_fixtures import API, assert_error, ids, lead, lead_client, results, superuser_client
from tests.factories import SessionFactory

__all__ = ("lead", "lead_client", "superuser_client")

pytestmark = pytest.mark.django_db

SESSIONS = f"{API}/sessions/"


@pytest.fixture
def sessions(engagement, lead):
    about = session_create(actor=lead, engagement=engagement, title="IBNR method")
    loose = session_create(actor=lead, title="General", trace_id="trace-s")
    loose.last_activity_at = timezone.now() - datetime.timedelta(days=2)
    loose.save()
    return {"about": about, "loose": loose}


def test_session_filters(sessions, engagement, lead, lead_client, superuser_client):
    def get(client=lead_client, **params):
        return ids(client.get(SESSIONS, params))

    about, loose = str(sessions["about"].pk), str(sessions["loose"].pk)
    day_ago = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert get(engagement_id=engagement.pk) == {about}
    assert get(active_after=day_ago) == {about}
    assert get(active_before=day_ago) == {loose}
    assert get(trace_id="trace-s") == {loose}
    assert get(search="ibnr") == {about}
    assert get(created_by_id=lead.pk) == {about, loose}
    other = SessionFactory()
    assert get(superuser_client, user_id=other.user_id) == {str(other.pk)}
    assert get(user_id=other.user_id) == set()
    rows = results(lead_client.get(SESSIONS, {"ordering": "last_activity_at"}))
    assert rows[0]["id"] == loose
    assert_error(lead_client.get(SESSIONS, {"engagement_id": "nope"}), 400, "invalid")


def test_message_filters(sessions, lead, lead_client):
    session = sessions["about"]
    question = chat_message_add(session=session, role="user", content="Q", actor=lead)
    answer = chat_message_add(
        session=session,
        role="assistant",
        content="A",
        actor=lead,
        parent=question,
        agent_runtime=True,
    )
    tool = chat_message_add(
        session=session,
        role="tool",
        content="{}",
        tool_name="triangle_reader",
        actor=lead,
        agent_runtime=True,
    )
    url = f"{SESSIONS}{session.pk}/messages/"

    def get(**params):
        return ids(lead_client.get(url, params))

    assert get(role="assistant") == {str(answer.pk)}
    assert get(role=["user", "tool"]) == {str(question.pk), str(tool.pk)}
    assert get(parent_id=question.pk) == {str(answer.pk)}
    assert get(tool_name="triangle_reader") == {str(tool.pk)}
    later = (timezone.now() + datetime.timedelta(minutes=1)).isoformat()
    assert get(created_after=later) == set()
    assert get(created_before=later) == {str(question.pk), str(answer.pk), str(tool.pk)}
    assert_error(lead_client.get(url, {"role": "bot"}), 400, "invalid")
