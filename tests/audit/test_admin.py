"""The AuditLog admin is read-only and cheap on big tables; users are deactivated there."""

from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import admin as audit_admin
from audit.admin import EstimatedCountPaginator
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from audit.services import audit_record
from tests.factories import (
    AuditLogFactory,
    EngagementMemberFactory,
    StaffUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:audit_auditlog_changelist")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def entries(engagement, actuary):
    AuditLogFactory.create_batch(3, user=actuary, engagement_id=engagement.pk)
    AuditLogFactory(action=AuditAction.LOGIN, severity=Severity.WARNING, resource_type="user")
    return list(AuditLog.objects.all())


def _timeline_url(engagement):
    return reverse("admin:audit_auditlog_timeline", args=(engagement.pk,))


class TestReadOnly:
    def test_the_changelist_and_an_entry_open_for_a_superuser(self, admin_client, entries):
        assert admin_client.get(CHANGELIST).status_code == 200
        detail = admin_client.get(reverse("admin:audit_auditlog_change", args=(entries[0].pk,)))
        assert detail.status_code == 200
        assert entries[0].entry_hash in detail.content.decode()

    def test_nobody_adds_changes_or_deletes_entries(self, admin_client, entries):
        entry = entries[0]
        before = AuditLog.objects.filter(pk=entry.pk).values().get()

        assert admin_client.get(reverse("admin:audit_auditlog_add")).status_code == 403
        change = reverse("admin:audit_auditlog_change", args=(entry.pk,))
        assert admin_client.post(change, {"description": "rewritten"}).status_code == 403
        delete = reverse("admin:audit_auditlog_delete", args=(entry.pk,))
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
        bulk = admin_client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [entry.pk]}
        )
        assert bulk.status_code in (200, 302)

        assert AuditLog.objects.filter(pk=entry.pk).values().get() == before
        assert AuditLog.objects.count() == len(entries)

    def test_there_is_no_delete_action(self, admin_client, entries):
        response = admin_client.get(CHANGELIST)
        assert "delete_selected" not in response.content.decode()


class TestChangelist:
    @pytest.mark.parametrize(
        "query",
        [
            "action__exact=login",
            "severity__exact=warning",
            "user__id__exact={user}",
            "engagement_id={engagement}",
            "created_at__gte={midnight}",
            "q={engagement}",
            "q=1",
            "q=not-a-uuid",
        ],
    )
    def test_filters_and_search_work(self, admin_client, entries, engagement, actuary, query):
        # The date filter's own links carry an aware timestamp.
        midnight = quote(
            timezone.now().replace(hour=0, minute=0, second=0, microsecond=0).isoformat()
        )
        query = query.format(user=actuary.pk, engagement=engagement.pk, midnight=midnight)
        url = f"{CHANGELIST}?{query}"
        response = admin_client.get(url)
        assert response.status_code == 200  # an unknown filter would redirect to ?e=1

    def test_a_filter_narrows_the_list(self, admin_client, entries):
        response = admin_client.get(f"{CHANGELIST}?severity__exact=warning")
        assert response.context["cl"].result_count == 1

    def test_the_changelist_query_count_does_not_grow_with_rows(
        self, admin_client, entries, engagement, django_assert_max_num_queries
    ):
        AuditLogFactory.create_batch(60, engagement_id=engagement.pk)
        # session, user, count, page of entries, user filter, engagement filter, and the
        # page's names: its engagements, one query per kind of resource
        with django_assert_max_num_queries(10):
            response = admin_client.get(CHANGELIST)
        assert response.status_code == 200

    def test_the_changelist_never_counts_the_whole_table_twice(self, admin_client, entries):
        with CaptureQueriesContext(connection) as queries:
            admin_client.get(CHANGELIST)
        counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) <= 1  # show_full_result_count = False


@pytest.mark.postgres
class TestEstimatedCount:
    def test_an_unfiltered_count_reads_the_planner_statistics(self, monkeypatch, entries):
        monkeypatch.setattr(audit_admin, "EXACT_COUNT_THRESHOLD", 0)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE audit_auditlog")
        paginator = EstimatedCountPaginator(AuditLog.objects.all(), 100)
        with CaptureQueriesContext(connection) as queries:
            count = paginator.count
        assert isinstance(count, int)
        assert all("COUNT(" not in q["sql"].upper() for q in queries)
        assert any("reltuples" in q["sql"] for q in queries)

    def test_a_filtered_count_uses_the_plan_estimate(self, monkeypatch, entries):
        monkeypatch.setattr(audit_admin, "EXACT_COUNT_THRESHOLD", 0)
        paginator = EstimatedCountPaginator(AuditLog.objects.filter(action="login"), 100)
        with CaptureQueriesContext(connection) as queries:
            assert paginator.count >= 0
        assert any(q["sql"].startswith("EXPLAIN") for q in queries)

    def test_small_results_are_counted_exactly(self, entries):
        assert EstimatedCountPaginator(AuditLog.objects.all(), 100).count == len(entries)


class TestTimeline:
    def test_the_timeline_shows_both_sources(self, admin_client, engagement, actuary):
        audit_record(
            action=AuditAction.ENGAGEMENT_UPDATE,
            resource=engagement,
            user=actuary,
            description="Scope agreed with the client",
        )
        response = admin_client.get(_timeline_url(engagement))
        assert response.status_code == 200
        content = response.content.decode()
        # One line per business event: the audit event, said with the person's name.
        assert f"{actuary.get_full_name() or actuary.username}: Scope agreed with the client" in (
            content
        )
        assert 'class="file-note"' in content

    def test_the_changelist_links_to_the_timeline(self, admin_client, entries, engagement):
        assert _timeline_url(engagement) in admin_client.get(CHANGELIST).content.decode()

    def test_an_unknown_engagement_is_404(self, admin_client):
        url = reverse(
            "admin:audit_auditlog_timeline", args=("00000000-0000-0000-0000-000000000000",)
        )
        assert admin_client.get(url).status_code == 404

    def test_staff_without_the_view_permission_are_refused(self, client, engagement):
        client.force_login(StaffUserFactory())
        assert client.get(_timeline_url(engagement)).status_code == 403

    def test_staff_with_the_view_permission_see_it_on_their_engagements(self, client, engagement):
        viewer = StaffUserFactory()
        viewer.user_permissions.add(Permission.objects.get(codename="view_auditlog"))
        client.force_login(viewer)
        # Another team's engagement is answered as if it did not exist.
        assert client.get(_timeline_url(engagement)).status_code == 404
        EngagementMemberFactory(engagement=engagement, user=viewer, role="observer")
        assert client.get(_timeline_url(engagement)).status_code == 200

    def test_it_is_paginated(self, admin_client, engagement, actuary):
        for number in range(audit_admin.TIMELINE_PAGE_SIZE + 5):
            audit_record(
                action=AuditAction.ENGAGEMENT_UPDATE,
                resource=engagement,
                user=actuary,
                description=f"Note {number}",
            )
        first = admin_client.get(_timeline_url(engagement))
        assert len(first.context["entries"]) == audit_admin.TIMELINE_PAGE_SIZE
        older = admin_client.get(f"{_timeline_url(engagement)}?page=2")
        assert len(older.context["entries"]) == first.context["count"] - (
            audit_admin.TIMELINE_PAGE_SIZE
        )


class TestUserAdmin:
    def test_a_user_in_the_trail_has_no_delete_page(self, admin_client, actuary, engagement):
        url = reverse("admin:auth_user_delete", args=(actuary.pk,))
        assert admin_client.get(url).status_code == 403
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        assert type(actuary).objects.filter(pk=actuary.pk).exists()

    def test_a_user_without_a_trail_can_still_be_deleted(self, admin_client):
        stray = UserFactory()
        url = reverse("admin:auth_user_delete", args=(stray.pk,))
        assert admin_client.post(url, {"post": "yes"}).status_code == 302
        assert not type(stray).objects.filter(pk=stray.pk).exists()

    def test_bulk_delete_is_replaced_by_deactivate(self, admin_client, actuary, superuser):
        changelist = reverse("admin:auth_user_changelist")
        content = admin_client.get(changelist).content.decode()
        assert "delete_selected" not in content
        assert "deactivate_users" in content

        response = admin_client.post(
            changelist, {"action": "deactivate_users", "_selected_action": [actuary.pk]}
        )
        assert response.status_code == 302
        actuary.refresh_from_db()
        assert actuary.is_active is False
        event = AuditLog.objects.get(action=AuditAction.PERMISSION_CHANGE)
        assert event.user == superuser

    def test_the_user_pages_open(self, admin_client, actuary):
        assert admin_client.get(reverse("admin:auth_user_changelist")).status_code == 200
        change = admin_client.get(reverse("admin:auth_user_change", args=(actuary.pk,)))
        assert change.status_code == 200


def test_the_date_filter_is_not_a_date_hierarchy():
    """A date hierarchy runs SELECT DISTINCT over the whole log; the list filter does not."""
    from django.contrib import admin

    model_admin = admin.site._registry[AuditLog]
    assert model_admin.date_hierarchy is None
    assert "created_at" in model_admin.list_filter
