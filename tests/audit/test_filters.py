"""Filters and search of the audit log, backup and recovery lists."""

import datetime
import uuid

import pytest
from django.utils import timezone

from audit.choices import AuditAction, Severity
from audit.services import audit_record
from tests.api_fixtures import API, assert_error, lead, lead_client, results, superuser_client
from tests.factories import BackupFactory, EngagementFactory, RecoveryFactory

__all__ = ("lead", "lead_client", "superuser_client")

pytestmark = pytest.mark.django_db

AUDIT_LOGS = f"{API}/audit-logs/"
BACKUPS = f"{API}/backups/"
RECOVERIES = f"{API}/recoveries/"
SESSION = uuid.uuid4()


@pytest.fixture
def events(engagement, lead, reviewer):
    """Audit events of the engagement that differ in every filtered field."""
    export = audit_record(
        action=AuditAction.DATA_EXPORT,
        resource=engagement,
        user=lead,
        description="Exported the triangle",
        trace_id="trace-x",
    )
    breach = audit_record(
        action=AuditAction.ARTEFACT_ACCESS,
        severity=Severity.CRITICAL,
        resource_type="artefact",
        resource_id=uuid.uuid4(),
        engagement_id=engagement.pk,
        user=reviewer,
        description="File corrupted",
        session_id=SESSION,
    )
    old = audit_record(
        action=AuditAction.AGENT_INVOKE,
        resource=engagement,
        user=None,
        description="Agent call",
    )
    return {"export": export, "breach": breach, "old": old}


def found(client, **params) -> set[str]:
    return {row["id"] for row in results(client.get(AUDIT_LOGS, params))}


def pks(events, *names):
    return {str(events[name].pk) for name in names}


def test_audit_log_filters(events, engagement, lead, reviewer, lead_client):
    assert found(lead_client, action="data_export") == pks(events, "export")
    assert found(lead_client, action=["data_export", "agent_invoke"]) == pks(
        events, "export", "old"
    )
    assert found(lead_client, severity="critical") == pks(events, "breach")
    assert found(lead_client, resource_type="artefact") == pks(events, "breach")
    assert found(lead_client, resource_id=events["breach"].resource_id) == pks(events, "breach")
    assert found(lead_client, user_id=reviewer.pk) == pks(events, "breach")
    assert found(lead_client, session_id=SESSION) == pks(events, "breach")
    assert found(lead_client, trace_id="trace-x") == pks(events, "export")
    assert found(lead_client, search="corrupted") == pks(events, "breach")
    assert found(lead_client, sequence_after=events["breach"].sequence) == pks(events, "old")
    assert pks(events, "export", "breach", "old") <= found(lead_client, engagement_id=engagement.pk)
    assert found(lead_client, engagement_id=EngagementFactory().pk) == set()


def test_audit_log_time_filters(events, lead_client):
    now = timezone.now()
    assert found(lead_client, created_after=(now + datetime.timedelta(minutes=1)).isoformat()) == (
        set()
    )
    assert pks(events, "export", "breach", "old") <= found(
        lead_client, created_after=(now - datetime.timedelta(minutes=5)).isoformat()
    )
    assert (
        found(lead_client, created_before=(now - datetime.timedelta(minutes=5)).isoformat())
        == set()
    )


@pytest.mark.parametrize(
    "params",
    [{"action": "hack"}, {"severity": "loud"}, {"resource_id": "1"}, {"created_after": "x"}],
)
def test_bad_audit_filters_are_400(events, lead_client, params):
    body = assert_error(lead_client.get(AUDIT_LOGS, params), 400, "invalid")
    assert set(body["errors"]) == set(params)


def test_backup_and_recovery_filters(engagement, superuser_client):
    full = BackupFactory(name="nightly full")
    mine = BackupFactory(engagement=engagement, backup_type="engagement", name="eng export")
    mine.expires_at = timezone.now() + datetime.timedelta(days=1)
    mine.save()
    restore = RecoveryFactory(backup=mine, engagement=engagement, name="restore eng")
    other = RecoveryFactory(backup=full)

    def backups(**params):
        return {row["id"] for row in results(superuser_client.get(BACKUPS, params))}

    def recoveries(**params):
        return {row["id"] for row in results(superuser_client.get(RECOVERIES, params))}

    assert backups(backup_type="engagement") == {str(mine.pk)}
    assert backups(engagement_id=engagement.pk) == {str(mine.pk)}
    assert backups(status="pending") == {str(mine.pk), str(full.pk)}
    assert backups(search="nightly") == {str(full.pk)}
    assert backups(expires_before=(timezone.now() + datetime.timedelta(days=2)).isoformat()) == {
        str(mine.pk)
    }
    assert recoveries(backup_id=full.pk) == {str(other.pk)}
    assert recoveries(engagement_id=engagement.pk) == {str(restore.pk)}
    assert recoveries(status=["completed"]) == set()
    assert_error(superuser_client.get(BACKUPS, {"status": "x"}), 400, "invalid")
