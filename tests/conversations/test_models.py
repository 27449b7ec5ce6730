import datetime

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import ChatMessage, Session
from tests.factories import ChatMessageFactory, SessionFactory

pytestmark = pytest.mark.django_db


def test_session_defaults():
    session = Session.objects.get(pk=SessionFactory().pk)
    assert session.context == {}
    assert session.last_activity_at is not None
    assert session.engagement is None


def test_messages_list_in_created_at_order():
    session = SessionFactory()
    now = timezone.now()
    later = ChatMessageFactory(session=session, content="second", created_at=now)
    earlier = ChatMessageFactory(
        session=session, content="first", created_at=now - datetime.timedelta(seconds=5)
    )
    assert list(session.messages.all()) == [earlier, later]


def test_message_content_is_required_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        ChatMessageFactory(content="")


def test_message_threading_and_tool_fields():
    question = ChatMessageFactory()
    answer = ChatMessageFactory(
        session=question.session,
        role="tool",
        parent=question,
        tool_name="run_chain_ladder",
        tool_call_id="call_1",
    )
    assert list(question.replies.all()) == [answer]
    assert ChatMessage.objects.get(pk=answer.pk).metadata == {}


def test_soft_deleted_session_is_hidden(user):
    session = SessionFactory()
    session.soft_delete(user)
    assert not Session.objects.filter(pk=session.pk).exists()
    assert Session.all_objects.filter(pk=session.pk).exists()


def test_message_history_is_kept():
    message = ChatMessageFactory()
    assert message.history.count() == 1
