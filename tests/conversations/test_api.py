"""REST API of chat sessions and messages: owners only, appended in order, cursor pages."""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from audit.choices import AuditAction
from conversations.models import ChatMessage, Session
from conversations.services import chat_message_add, session_create
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    count_queries,
    ids,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    results,
    superuser_client,
)
from tests.factories import ChatMessageFactory, EngagementFactory, SessionFactory, UserFactory
from tests.factories.states import audit_events_since, audit_mark

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "superuser_client",
)

pytestmark = pytest.mark.django_db

SESSIONS = f"{API}/sessions/"


def messages_url(session):
    return f"{SESSIONS}{session.pk}/messages/"


@pytest.fixture
def session(engagement, lead):
    """The lead's chat session about the engagement."""
    return session_create(actor=lead, engagement=engagement, title="Tail factors")


# --- sessions -------------------------------------------------------------------------------


def test_open_a_session_and_record_it(engagement, lead, lead_client):
    mark = audit_mark()
    response = lead_client.post(
        SESSIONS,
        {"title": "Reserving questions", "engagement": str(engagement.pk), "context": {"a": 1}},
        headers={"X-Trace-Id": "trace-chat"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["user"], body["engagement"], body["trace_id"]) == (
        lead.pk,
        str(engagement.pk),
        "trace-chat",
    )
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.SESSION_CREATE, lead)


def test_a_session_cannot_be_opened_for_someone_else(lead_client, outsider):
    body = assert_error(lead_client.post(SESSIONS, {"user": outsider.pk}), 400, "invalid")
    assert set(body["errors"]) == {"user"}


def test_a_session_about_a_hidden_engagement_is_refused(outsider_client):
    hidden = EngagementFactory()
    body = assert_error(
        outsider_client.post(SESSIONS, {"engagement": str(hidden.pk)}), 400, "invalid"
    )
    assert "does not exist" in body["errors"]["engagement"][0]


def test_you_see_only_your_sessions(session, lead_client, outsider, outsider_client):
    theirs = SessionFactory(user=outsider)
    assert ids(lead_client.get(SESSIONS)) == {str(session.pk)}
    assert ids(outsider_client.get(SESSIONS)) == {str(theirs.pk)}
    assert_error(outsider_client.get(f"{SESSIONS}{session.pk}/"), 404, "not_found")
    assert_error(outsider_client.get(messages_url(session)), 404, "not_found")
    assert_error(
        outsider_client.post(messages_url(session), {"role": "user", "content": "hi"}),
        404,
        "not_found",
    )


def test_superusers_see_every_session(session, superuser_client):
    assert str(session.pk) in ids(superuser_client.get(SESSIONS))


def test_edit_and_delete_a_session(session, lead, lead_client):
    response = lead_client.patch(f"{SESSIONS}{session.pk}/", {"title": "Tail factors 2025"})
    assert response.json()["title"] == "Tail factors 2025"
    body = assert_error(
        lead_client.patch(f"{SESSIONS}{session.pk}/", {"last_activity_at": timezone.now()}),
        400,
        "invalid",
    )
    assert set(body["errors"]) == {"last_activity_at"}
    mark = audit_mark()
    assert lead_client.delete(f"{SESSIONS}{session.pk}/").status_code == 204
    assert Session.all_objects.get(pk=session.pk).is_deleted
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.SESSION_DELETE, lead)
    assert_error(lead_client.get(messages_url(session)), 404, "not_found")


# --- messages -------------------------------------------------------------------------------


def test_post_appends_a_message_and_bumps_the_session(session, lead, lead_client):
    before = session.last_activity_at
    response = lead_client.post(
        messages_url(session),
        {"role": "user", "content": "Which tail factor did we use?", "metadata": {"tokens": 9}},
        headers={"X-Trace-Id": "trace-m"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["session"], body["role"], body["trace_id"]) == (
        str(session.pk),
        "user",
        "trace-m",
    )
    message = ChatMessage.objects.get(pk=body["id"])
    assert message.history.latest().history_user == lead
    session.refresh_from_db()
    assert session.last_activity_at == message.created_at > before


def test_messages_list_in_the_order_they_were_sent(session, lead, lead_client):
    start = timezone.now() - datetime.timedelta(hours=1)
    for index in (3, 1, 2, 0, 4):
        ChatMessageFactory(
            session=session,
            content=f"message {index}",
            created_at=start + datetime.timedelta(minutes=index),
        )
    seen, url, params = [], messages_url(session), {"page_size": 2}
    while url:
        body = lead_client.get(url, params).json()
        seen += [row["content"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == [f"message {index}" for index in range(5)]


def test_a_reply_stays_in_its_session(session, lead, lead_client):
    lead.user_permissions.add(Permission.objects.get(codename="post_agent_messages"))
    question = chat_message_add(session=session, role="user", content="Q", actor=lead)
    response = lead_client.post(
        messages_url(session), {"role": "assistant", "content": "A", "parent": str(question.pk)}
    )
    assert response.json()["parent"] == str(question.pk)
    elsewhere = ChatMessageFactory(session=SessionFactory(user=lead))
    body = assert_error(
        lead_client.post(
            messages_url(session),
            {"role": "assistant", "content": "A", "parent": str(elsewhere.pk)},
        ),
        400,
        "invalid",
    )
    assert set(body["errors"]) == {"parent"}


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({"role": "user"}, {"content"}),
        ({"role": "robot", "content": "x"}, {"role"}),
        ({"role": "user", "content": "  "}, {"content"}),
        ({"role": "user", "content": "x", "session": "1"}, {"session"}),
        ({"role": "user", "content": "x", "created_at": "2020-01-01T00:00:00Z"}, {"created_at"}),
    ],
)
def test_bad_messages_are_400_per_field(session, lead_client, payload, fields):
    body = assert_error(lead_client.post(messages_url(session), payload), 400, "invalid")
    assert set(body["errors"]) == fields


def test_messages_are_never_edited(session, lead, lead_client):
    message = chat_message_add(session=session, role="user", content="Q", actor=lead)
    url = f"{messages_url(session)}{message.pk}/"
    assert lead_client.patch(url, {"content": "changed"}).status_code == 404
    assert lead_client.put(messages_url(session), {"content": "x"}).status_code == 405


def test_superusers_may_add_to_any_session_but_others_may_not(session, superuser, engagement):
    superuser_client = client_for(superuser)
    response = superuser_client.post(messages_url(session), {"role": "system", "content": "Note"})
    assert response.status_code == 201
    # A colleague on the same engagement still cannot see the lead's conversation.
    colleague = reader(UserFactory())
    assert_error(client_for(colleague).get(messages_url(session)), 404, "not_found")


def test_messages_need_their_own_permissions(session, lead, engagement):
    from django.contrib.auth.models import Permission

    lead.groups.clear()
    lead.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_session", "view_chatmessage"])
    )
    client = client_for(type(lead).objects.get(pk=lead.pk))
    assert client.get(messages_url(session)).status_code == 200
    response = client.post(messages_url(session), {"role": "user", "content": "x"})
    assert_error(response, 403, "permission_denied")


def test_anonymous_is_refused(session, api_client):
    assert_error(api_client.get(messages_url(session)), 401, "not_authenticated")


def test_message_list_query_count_is_fixed(session, lead_client, django_assert_max_num_queries):
    ChatMessageFactory.create_batch(110, session=session)
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(6):
            rows = results(lead_client.get(messages_url(session), {"page_size": page_size}))
        assert len(rows) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(messages_url(session), {"page_size": s})
        )
    assert counts[1] == counts[100]


def test_session_list_query_count_is_fixed(lead, lead_client, django_assert_max_num_queries):
    SessionFactory.create_batch(110, user=lead)
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(6):
            assert len(results(lead_client.get(SESSIONS, {"page_size": page_size}))) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(SESSIONS, {"page_size": s})
        )
    assert counts[1] == counts[100]
