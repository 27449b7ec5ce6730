"""Conversation admin: sessions and messages are created, appended and deleted via services."""

import pytest
from django.urls import reverse

from audit.choices import AuditAction
from conversations.models import ChatMessage, Session
from conversations.services import chat_message_add, session_create
from tests.factories import SuperUserFactory, UserFactory
from tests.factories.states import (
    admin_form_data,
    admin_messages,
    audit_events_since,
    audit_mark,
    database_state,
    grant,
)

pytestmark = pytest.mark.django_db

ADD_SESSION = reverse("admin:conversations_session_add")
ADD_MESSAGE = reverse("admin:conversations_chatmessage_add")


@pytest.fixture
def admin_user(db):
    return SuperUserFactory(username="admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def session(actuary, engagement):
    session = session_create(actor=actuary, engagement=engagement, title="Tail factors")
    chat_message_add(session=session, role="user", content="Which tail?", actor=actuary)
    return session


def session_url(session):
    return reverse("admin:conversations_session_change", args=(session.pk,))


def test_opening_a_session_for_a_user_goes_through_the_service(admin_client, admin_user, actuary):
    data = admin_form_data(admin_client.get(ADD_SESSION)) | {
        "user": actuary.pk,
        "title": "IFRS 17 questions",
        "context": "{}",
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
    }
    mark = audit_mark()
    response = admin_client.post(ADD_SESSION, data)
    assert response.status_code == 302, admin_messages(response)
    session = Session.objects.get(title="IFRS 17 questions")
    assert session.user == actuary and session.created_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.SESSION_CREATE and event.user == admin_user


def test_staff_may_not_open_sessions_for_others(client, actuary):
    clerk = grant(
        UserFactory(username="clerk", is_staff=True),
        "conversations.add_session",
        "conversations.view_session",
    )
    client.force_login(clerk)
    data = admin_form_data(client.get(ADD_SESSION)) | {
        "user": actuary.pk,
        "title": "Not mine",
        "context": "{}",
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
    }
    before = database_state()
    response = client.post(ADD_SESSION, data)
    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "clerk may not open a chat session for actuary" in text
    assert database_state() == before


def test_a_message_added_in_the_inline_is_appended(admin_client, session):
    page = admin_client.get(session_url(session))
    data = admin_form_data(page) | {
        "messages-0-content": "Rewritten",  # existing messages are read-only: ignored
        "messages-TOTAL_FORMS": "2",
        "messages-1-role": "assistant",
        "messages-1-content": "1.05, as last year.",
        "messages-1-session": session.pk,
    }
    previous_activity = session.last_activity_at
    response = admin_client.post(session_url(session), data)
    assert response.status_code == 302, admin_messages(response)
    session.refresh_from_db()
    contents = list(session.messages.values_list("content", flat=True))
    assert contents == ["Which tail?", "1.05, as last year."]
    assert session.last_activity_at > previous_activity


def test_a_message_added_on_its_own_page_is_appended(admin_client, session):
    data = admin_form_data(admin_client.get(ADD_MESSAGE)) | {
        "session": session.pk,
        "role": "system",
        "content": "Context refreshed",
        "metadata": "{}",
    }
    response = admin_client.post(ADD_MESSAGE, data)
    assert response.status_code == 302, admin_messages(response)
    assert session.messages.count() == 2


def test_messages_are_never_edited_or_deleted(admin_client, session):
    message = session.messages.get()
    change = reverse("admin:conversations_chatmessage_change", args=(message.pk,))
    assert admin_client.get(change).status_code == 200  # read-only view
    assert admin_client.post(change, {"content": "rewritten"}).status_code == 403
    delete = reverse("admin:conversations_chatmessage_delete", args=(message.pk,))
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ChatMessage.objects.get(pk=message.pk).content == "Which tail?"


def test_deleting_a_session_soft_deletes_it_through_the_service(admin_client, admin_user, session):
    mark = audit_mark()
    delete = reverse("admin:conversations_session_delete", args=(session.pk,))
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert Session.all_objects.get(pk=session.pk).deleted_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.SESSION_DELETE and event.user == admin_user


def test_staff_see_only_their_own_sessions(client, session):
    clerk = grant(UserFactory(username="clerk", is_staff=True), "conversations.view_session")
    own = session_create(actor=clerk, title="Mine")
    client.force_login(clerk)
    listed = client.get(reverse("admin:conversations_session_changelist"))
    assert list(listed.context["cl"].result_list) == [own]
