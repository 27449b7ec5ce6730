"""audit_record, the one way to write events, and user_deactivate, which replaces deletion."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model

from audit.choices import AuditAction
from audit.models import AuditLog
from audit.services import USER_ALREADY_INACTIVE, audit_record, user_deactivate
from records.exceptions import Conflict
from records.middleware import request_context
from tests.factories import WorkflowRunFactory

pytestmark = pytest.mark.django_db


class TestAuditRecord:
    def test_the_request_context_fills_in_who_and_where(self, actuary, engagement):
        chat = uuid.uuid4()
        with request_context(
            acting_user=actuary,
            ip_address="198.51.100.4",
            user_agent="agent/1",
            trace_id="trace-42",
            session_id=chat,
        ):
            event = audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=engagement)

        assert (event.user, event.ip_address, event.user_agent) == (
            actuary,
            "198.51.100.4",
            "agent/1",
        )
        assert (event.trace_id, event.session_id) == ("trace-42", chat)
        assert (event.resource_type, event.resource_id) == ("engagement", engagement.pk)
        assert event.engagement_id == engagement.pk

    def test_explicit_values_win_over_the_context(self, actuary):
        with request_context(ip_address="198.51.100.4", user_agent="agent/1"):
            event = audit_record(
                action=AuditAction.LOGIN,
                resource_type="user",
                user=actuary,
                ip_address="192.0.2.1",
                user_agent="other",
            )
        assert (event.ip_address, event.user_agent) == ("192.0.2.1", "other")

    def test_a_resource_inside_an_engagement_carries_the_engagement(self, engagement):
        run = WorkflowRunFactory(engagement=engagement)
        event = audit_record(action=AuditAction.WORKFLOW_START, resource=run)
        assert event.engagement_id == engagement.pk
        assert event.resource_type == "workflowrun"

    def test_events_are_appended_to_the_chain(self):
        first = audit_record(action=AuditAction.DATA_EXPORT, resource_type="report")
        second = audit_record(action=AuditAction.DATA_EXPORT, resource_type="report")
        assert (first.sequence, second.sequence) == (1, 2)
        assert second.previous_hash == first.entry_hash
        assert AuditLog.objects.get(pk=second.pk).compute_hash() == second.entry_hash


class TestUserDeactivate:
    def test_deactivation_is_recorded(self, superuser, actuary):
        user_deactivate(user=actuary, actor=superuser)

        actuary.refresh_from_db()
        assert not actuary.is_active
        event = AuditLog.objects.get(action=AuditAction.PERMISSION_CHANGE)
        assert event.user == superuser
        assert (event.old_value, event.new_value) == ({"is_active": True}, {"is_active": False})
        assert event.metadata["username"] == "actuary"

    def test_an_inactive_user_cannot_be_deactivated_again(self, superuser, actuary):
        user_deactivate(user=actuary, actor=superuser)
        message = re.escape(USER_ALREADY_INACTIVE.format(user="actuary"))
        with pytest.raises(Conflict, match=message):
            user_deactivate(user=actuary, actor=superuser)
        assert AuditLog.objects.count() == 1
        assert get_user_model().objects.get(pk=actuary.pk).is_active is False
