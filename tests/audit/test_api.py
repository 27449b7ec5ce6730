"""REST API of the audit log, backups and recoveries: read-only, scoped, cursor-paginated."""

import pytest

from audit.choices import AuditAction
from audit.models import AuditLog
from audit.services import audit_record
from engagements.services import engagement_activate
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    count_queries,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    results,
    superuser_client,
)
from tests.factories import (
    AuditLogFactory,
    BackupFactory,
    EngagementFactory,
    RecoveryFactory,
    UserFactory,
)

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "superuser_client",
)

pytestmark = pytest.mark.django_db

AUDIT_LOGS = f"{API}/audit-logs/"
BACKUPS = f"{API}/backups/"
RECOVERIES = f"{API}/recoveries/"


def sequences(response) -> list[int]:
    return [row["sequence"] for row in results(response)]


def test_you_see_your_engagements_events_and_your_own(engagement, lead, lead_client, outsider):
    engagement_activate(engagement=engagement, actor=lead)
    mine = list(AuditLog.objects.filter(engagement_id=engagement.pk))
    own_login = audit_record(action=AuditAction.LOGIN, resource_type="user", user=lead)
    audit_record(action=AuditAction.LOGIN, resource_type="user", user=outsider)
    hidden = EngagementFactory()
    audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=hidden, user=outsider)
    seen = {row["id"] for row in results(lead_client.get(AUDIT_LOGS))}
    assert seen == {str(event.pk) for event in [*mine, own_login]}


def test_superusers_see_every_event(engagement, lead, superuser_client):
    audit_record(action=AuditAction.LOGIN, resource_type="user", user=UserFactory())
    rows = results(superuser_client.get(AUDIT_LOGS, {"page_size": 100}))
    assert len(rows) == AuditLog.objects.count()


def test_an_event_outside_your_engagements_is_not_found(engagement, lead_client, outsider):
    hidden = audit_record(action=AuditAction.LOGIN, resource_type="user", user=outsider)
    assert_error(lead_client.get(f"{AUDIT_LOGS}{hidden.pk}/"), 404, "not_found")


def test_an_event_shows_its_place_in_the_chain(engagement, lead, lead_client):
    event = audit_record(
        action=AuditAction.DATA_EXPORT, resource=engagement, user=lead, metadata={"rows": 3}
    )
    body = lead_client.get(f"{AUDIT_LOGS}{event.pk}/").json()
    assert (body["sequence"], body["entry_hash"], body["previous_hash"]) == (
        event.sequence,
        event.entry_hash,
        event.previous_hash,
    )
    assert (body["action"], body["user"], body["metadata"]) == ("data_export", lead.pk, {"rows": 3})
    assert body["engagement_id"] == str(engagement.pk)


def test_the_audit_log_is_read_only(engagement, lead, lead_client, superuser_client):
    event = audit_record(action=AuditAction.LOGIN, resource_type="user", user=lead)
    for client in (lead_client, superuser_client):
        assert_error(client.post(AUDIT_LOGS, {"action": "login"}), 405, "method_not_allowed")
        url = f"{AUDIT_LOGS}{event.pk}/"
        assert_error(client.patch(url, {"description": "x"}), 405, "method_not_allowed")
        assert_error(client.put(url, {"description": "x"}), 405, "method_not_allowed")
        assert_error(client.delete(url), 405, "method_not_allowed")


def test_reading_needs_the_view_permission(engagement, actuary, api_client):
    assert_error(api_client.get(AUDIT_LOGS), 401, "not_authenticated")
    assert_error(client_for(actuary).get(AUDIT_LOGS), 403, "permission_denied")
    assert client_for(reader(actuary)).get(AUDIT_LOGS).status_code == 200


def test_cursor_pagination_walks_the_chain_newest_first(engagement, lead, lead_client):
    for index in range(7):
        audit_record(
            action=AuditAction.DATA_EXPORT,
            resource=engagement,
            user=lead,
            description=f"export {index}",
        )
    expected = list(
        AuditLog.objects.filter(engagement_id=engagement.pk).values_list("sequence", flat=True)
    )
    seen, url, params = [], AUDIT_LOGS, {"page_size": 3}
    while url:
        body = lead_client.get(url, params).json()
        assert set(body) == {"next", "previous", "results"}
        seen += [row["sequence"] for row in body["results"]]
        url, params = body["next"], None
    assert seen == expected == sorted(expected, reverse=True)
    # A new event does not shift the pages already handed out.
    first = lead_client.get(AUDIT_LOGS, {"page_size": 3}).json()
    audit_record(action=AuditAction.DATA_EXPORT, resource=engagement, user=lead)
    second = lead_client.get(first["next"]).json()
    assert [row["sequence"] for row in second["results"]] == seen[3:6]


def test_ordering_cannot_be_chosen(engagement, lead, lead_client):
    for _ in range(3):
        audit_record(action=AuditAction.DATA_EXPORT, resource=engagement, user=lead)
    ordered = sequences(lead_client.get(AUDIT_LOGS, {"ordering": "sequence"}))
    assert ordered == sorted(ordered, reverse=True)


def test_an_invalid_cursor_is_404(lead_client):
    assert_error(lead_client.get(AUDIT_LOGS, {"cursor": "garbage"}), 404, "not_found")


def test_audit_log_query_count_is_fixed(
    engagement, lead, lead_client, django_assert_max_num_queries
):
    AuditLogFactory.create_batch(110, engagement_id=engagement.pk, user=lead)
    counts = {}
    for page_size in (1, 100):
        # The ids of the user's engagements are read first (so the page's query can use
        # the indexes: tests/audit/test_query_plans.py); never a query per row.
        with django_assert_max_num_queries(6):
            assert len(results(lead_client.get(AUDIT_LOGS, {"page_size": page_size}))) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(AUDIT_LOGS, {"page_size": s})
        )
    assert counts[1] == counts[100]


# --- backups and recoveries -----------------------------------------------------------------


def test_backups_and_recoveries_of_your_engagements(engagement, lead_client, superuser_client):
    mine = BackupFactory(engagement=engagement, backup_type="engagement")
    full = BackupFactory()
    restore = RecoveryFactory(backup=mine, engagement=engagement)
    RecoveryFactory(backup=full)
    assert [row["id"] for row in results(lead_client.get(BACKUPS))] == [str(mine.pk)]
    assert [row["id"] for row in results(lead_client.get(RECOVERIES))] == [str(restore.pk)]
    assert len(results(superuser_client.get(BACKUPS))) == 2
    assert len(results(superuser_client.get(RECOVERIES))) == 2
    assert_error(lead_client.get(f"{BACKUPS}{full.pk}/"), 404, "not_found")
    body = lead_client.get(f"{BACKUPS}{mine.pk}/").json()
    assert (body["status"], body["backup_type"], body["engagement"]) == (
        "pending",
        "engagement",
        str(engagement.pk),
    )


def test_backups_and_recoveries_are_read_only(engagement, superuser_client):
    backup = BackupFactory()
    assert_error(superuser_client.post(BACKUPS, {"name": "x"}), 405, "method_not_allowed")
    assert_error(superuser_client.delete(f"{BACKUPS}{backup.pk}/"), 405, "method_not_allowed")
    assert_error(superuser_client.post(RECOVERIES, {"name": "x"}), 405, "method_not_allowed")


@pytest.mark.parametrize("url", [BACKUPS, RECOVERIES])
def test_backup_lists_run_a_fixed_number_of_queries(
    engagement, lead_client, django_assert_max_num_queries, url
):
    for _ in range(100):
        RecoveryFactory(backup=BackupFactory(engagement=engagement), engagement=engagement)
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(6):
            assert len(results(lead_client.get(url, {"page_size": page_size}))) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(url, {"page_size": s})
        )
    assert counts[1] == counts[100]
