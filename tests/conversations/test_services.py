"""Conversation services: sessions (open, edit, delete) and appended messages."""

import pytest

from audit.choices import AuditAction
from conversations.models import Session
from conversations.services import (
    chat_message_add,
    session_create,
    session_delete,
    session_update,
)
from records.exceptions import Conflict, InvalidInput, NotAllowed
from tests.factories import EngagementFactory, SuperUserFactory, UserFactory
from tests.factories.states import audit_events_since, audit_mark, database_state, grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")


@pytest.fixture
def session(actuary, engagement):
    return session_create(actor=actuary, engagement=engagement, title="Tail factors")


def test_opening_a_session_is_an_audit_event(actuary, engagement):
    mark = audit_mark()
    session = session_create(actor=actuary, engagement=engagement, title="Tail factors")
    session.refresh_from_db()
    assert session.user == actuary and session.created_by == actuary
    assert session.history.latest().history_change_reason == "Opened"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.SESSION_CREATE and event.user == actuary
    assert event.session_id == session.pk and event.engagement_id == engagement.pk
    # The team reads the engagement's events, not the owner's sessions: no title (finding 6).
    assert event.new_value == {"user": actuary.pk, "engagement": str(engagement.pk)}
    assert "Tail factors" not in event.description
    assert event.description == f"Chat session {str(session.pk)[:8]} opened by actuary"


def test_a_superuser_may_open_a_session_for_someone_else(actuary):
    admin = SuperUserFactory()
    session = session_create(actor=admin, user=actuary)
    assert session.user == actuary and session.created_by == admin


def test_global_viewers_may_talk_about_any_engagement():
    viewer = grant(UserFactory(username="auditor"), "engagements.view_all_engagements")
    assert session_create(actor=viewer, engagement=EngagementFactory()).user == viewer


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"for_other": True}, "may not open a chat session for actuary: only a superuser"),
        ({"foreign_engagement": True}, "may not talk about engagement .* not on its team"),
    ],
)
def test_session_refusals_change_nothing(outsider, actuary, engagement, kwargs, match):
    fields = {}
    if kwargs.get("for_other"):
        fields["user"] = actuary
    if kwargs.get("foreign_engagement"):
        fields["engagement"] = engagement
    before = database_state()
    with pytest.raises(NotAllowed, match=match):
        session_create(actor=outsider, **fields)
    assert database_state() == before


def test_adding_a_message_bumps_the_sessions_last_activity(session, actuary):
    previous_activity = session.last_activity_at
    mark = audit_mark()

    first = chat_message_add(session=session, role="user", content="Which tail?", actor=actuary)
    reply = chat_message_add(
        session=session,
        role="assistant",
        content="1.05, as last year.",
        parent=first,
        metadata={"model": "x", "tokens": 12},
        actor=actuary,
        agent_runtime=True,
    )

    session.refresh_from_db()
    assert session.last_activity_at == reply.created_at > previous_activity
    assert list(session.messages.values_list("content", flat=True)) == [
        "Which tail?",
        "1.05, as last year.",
    ]
    assert reply.parent == first
    assert reply.history.latest().history_user == actuary
    assert session.history.latest().history_change_reason == "New message"
    # Messages are kept by the history; the AuditLog records agent calls, not chat lines.
    assert audit_events_since(mark) == []


def test_message_refusals_change_nothing(session, actuary, outsider):
    other = session_create(actor=outsider)
    foreign = chat_message_add(session=other, role="user", content="Hello", actor=outsider)
    before = database_state()
    cases = [
        (outsider, {"content": "x"}, NotAllowed, "may not add messages to chat session"),
        (actuary, {"content": "   "}, InvalidInput, "A chat message needs content"),
        (actuary, {"content": "x", "role": "wizard"}, InvalidInput, "role: Value 'wizard'"),
        (actuary, {"content": "x", "parent": foreign}, InvalidInput, "another chat session"),
    ]
    for actor, kwargs, error, match in cases:
        kwargs = {"role": "user"} | kwargs
        with pytest.raises(error, match=match):
            chat_message_add(session=session, actor=actor, **kwargs)
    assert database_state() == before


def test_the_owner_edits_a_session(session, actuary):
    session = session_update(session=session, actor=actuary, data={"title": "Renamed"})
    assert Session.objects.get(pk=session.pk).title == "Renamed"


def test_edit_refusals_change_nothing(session, actuary, outsider):
    own_session = session_create(actor=outsider)
    before = database_state()
    with pytest.raises(NotAllowed, match=r"may not edit chat session .*: it belongs to actuary"):
        session_update(session=session, actor=outsider, data={"title": "x"})
    with pytest.raises(InvalidInput, match="Cannot change user of chat session"):
        session_update(session=session, actor=actuary, data={"user": outsider})
    with pytest.raises(NotAllowed, match="may not talk about engagement"):
        session_update(session=own_session, actor=outsider, data={"engagement": session.engagement})
    assert database_state() == before


def test_deleting_a_session_hides_it_and_is_an_audit_event(session, actuary):
    mark = audit_mark()
    session_delete(session=session, actor=actuary)
    assert not Session.objects.filter(pk=session.pk).exists()
    assert Session.all_objects.get(pk=session.pk).deleted_by == actuary
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.SESSION_DELETE and event.user == actuary
    assert event.resource_id == session.pk
    with pytest.raises(Conflict, match="no longer exists"):
        chat_message_add(session=session, role="user", content="Still there?", actor=actuary)


def test_only_the_owner_deletes_a_session(session, outsider):
    before = database_state()
    with pytest.raises(NotAllowed, match="may not delete chat session"):
        session_delete(session=session, actor=outsider)
    assert database_state() == before
