"""Logins, logouts and failed logins are audit events; users in the trail are not deleted."""

import re

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import ProtectedError
from django.urls import reverse

from audit.choices import AuditAction, Severity
from audit.exceptions import UserDeletionRefused
from audit.models import AuditLog
from audit.signals import USER_DELETION_REFUSED
from tests.factories import AuditLogFactory, EngagementFactory, UserFactory

pytestmark = pytest.mark.django_db

CLIENT = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "Mozilla/5.0 (Actuary Workstation)"}


def _login(client, username, password):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password}, **CLIENT
    )


class TestLoginEvents:
    def test_a_login_is_recorded_with_ip_and_user_agent(self, client, actuary):
        response = _login(client, "actuary", "password")
        assert response.status_code == 302

        event = AuditLog.objects.get(action=AuditAction.LOGIN)
        assert event.user == actuary
        assert event.severity == Severity.INFO
        assert event.ip_address == "203.0.113.7"
        assert event.user_agent == "Mozilla/5.0 (Actuary Workstation)"
        assert event.metadata == {"outcome": "succeeded", "username": "actuary"}

    def test_a_logout_is_recorded(self, client, actuary):
        _login(client, "actuary", "password")
        client.post(reverse("admin:logout"), **CLIENT)

        event = AuditLog.objects.get(action=AuditAction.LOGOUT)
        assert event.user == actuary
        assert (event.ip_address, event.user_agent) == (
            "203.0.113.7",
            "Mozilla/5.0 (Actuary Workstation)",
        )

    def test_a_failed_login_is_counted_not_appended_to_the_log(self, client, actuary):
        """Hardening finding 3: one failure is axes's count, not an append-only audit row."""
        response = _login(client, "actuary", "not-the-password")
        assert response.status_code == 200  # the form again, with an error

        assert not AuditLog.objects.exists()
        attempt = AccessAttempt.objects.get()
        assert (attempt.username, attempt.failures_since_start) == ("actuary", 1)
        assert "not-the-password" not in attempt.post_data

    def test_login_events_are_chained(self, client, actuary):
        _login(client, "actuary", "password")
        client.post(reverse("admin:logout"), **CLIENT)
        events = list(AuditLog.objects.order_by("sequence"))
        assert [e.action for e in events] == [AuditAction.LOGIN, AuditAction.LOGOUT]
        assert events[1].previous_hash == events[0].entry_hash


class TestUserDeletion:
    def test_a_user_with_history_is_not_deleted(self, actuary, engagement):
        """The engagement fixture was created by the actuary: the history names them."""
        message = re.escape(USER_DELETION_REFUSED.format(user="actuary"))
        with pytest.raises(UserDeletionRefused, match=message), transaction.atomic():
            actuary.delete()
        assert get_user_model().objects.filter(pk=actuary.pk).exists()

    def test_a_queryset_delete_is_refused_too(self, actuary, engagement):
        with (
            pytest.raises(UserDeletionRefused, match="Deactivate the user instead"),
            transaction.atomic(),
        ):
            get_user_model().objects.filter(pk=actuary.pk).delete()
        assert get_user_model().objects.filter(pk=actuary.pk).exists()

    def test_a_user_named_in_any_historical_field_is_kept(self):
        lead = UserFactory()
        EngagementFactory(lead_actuary=lead)
        with pytest.raises(UserDeletionRefused), transaction.atomic():
            lead.delete()

    def test_a_user_with_audit_events_is_protected_by_the_foreign_key(self):
        """AuditLog.user is PROTECT: Django refuses before any signal is sent."""
        user = UserFactory()
        AuditLogFactory(user=user)
        with pytest.raises(ProtectedError, match=r"AuditLog\.user"):
            user.delete()
        assert get_user_model().objects.filter(pk=user.pk).exists()

    def test_a_user_without_a_trail_can_be_deleted(self):
        user = UserFactory()
        user.delete()
        assert not get_user_model().objects.filter(username=user.username).exists()
