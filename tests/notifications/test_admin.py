"""The admin: my notifications (unread count in the header), my preferences, webhooks."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.services import approval_request
from audit.choices import AuditAction
from audit.models import AuditLog
from notifications.choices import DeliveryStatus, EmailMode, NotificationEvent
from notifications.models import (
    EmailDelivery,
    Notification,
    NotificationPreference,
    WebhookDelivery,
    WebhookEndpoint,
)
from notifications.recipients import engagement_due_announcements
from notifications.services import announce, webhook_endpoint_create
from tests.admin_fixtures import count_queries
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import admin_messages, artefact_in

pytestmark = pytest.mark.django_db

E = NotificationEvent
CHANGELIST = reverse("admin:notifications_notification_changelist")
MINE = reverse("admin:notifications_notificationpreference_mine")


@pytest.fixture
def ask_bob(team, committed):
    def ask_bob(name="Paid claims triangle"):
        triangle = artefact_in(team.engagement, actor=team.carol, name=name)
        return committed(
            approval_request,
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=triangle,
            actor=team.alice,
            designated_approver=team.bob,
        )

    return ask_bob


def signed_in(client, user):
    client.force_login(user)
    return client


def due_reminders_for(lead, count: int) -> None:
    """Give `lead` `count` notifications: reminders of engagements they lead, due soon."""
    import datetime

    from django.utils import timezone

    for index in range(count):
        engagement = EngagementFactory(
            client_code=f"C{index:03d}",
            name=f"Engagement {index}",
            lead_actuary=lead,
            due_date=timezone.localdate() + datetime.timedelta(days=1),
        )
        EngagementMemberFactory(engagement=engagement, user=lead, role="lead")
    for announcement in engagement_due_announcements(today=timezone.localdate(), days=3):
        announce(announcement)


# --- the header and the list ---------------------------------------------------------------


def test_the_header_shows_my_unread_count_on_every_admin_page(client, team, ask_bob):
    ask_bob("First")
    ask_bob("Second")
    page = signed_in(client, team.bob).get(reverse("admin:index"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<span id="notifications-unread"' in html
    assert f'href="{CHANGELIST}?read=no" id="notifications-link" title="2 unread"' in html
    other = client.get(MINE, follow=True)
    assert 'title="2 unread"' in other.content.decode()

    signed_in(client, team.carol)
    html = client.get(reverse("admin:index")).content.decode()
    assert f'<a href="{CHANGELIST}" id="notifications-link">Notifications</a>' in html
    assert "notifications-unread" not in html


def test_beyond_99_unread_the_header_says_99_plus(client, team):
    due_reminders_for(team.oscar, 100)
    html = signed_in(client, team.oscar).get(reverse("admin:index")).content.decode()
    assert 'title="99+ unread"' in html and ">99+</span>" in html


def test_my_list_holds_my_notifications_only(client, team, ask_bob):
    ask_bob()
    due_reminders_for(team.alice, 1)
    mine = Notification.objects.get(recipient=team.bob)
    page = signed_in(client, team.bob).get(CHANGELIST)
    assert page.status_code == 200
    assert [row.pk for row in page.context["cl"].result_list] == [mine.pk]
    html = page.content.decode()
    assert "<strong>Approval requested: The artefact review of “Paid claims triangle”" in html
    assert "Engagement due" not in html

    alices = Notification.objects.get(recipient=team.alice)
    # Someone else's notification does not exist for me (superusers included).
    for user in (team.bob, team.root):
        response = signed_in(client, user).get(
            reverse("admin:notifications_notification_change", args=(alices.pk,))
        )
        assert response.status_code == 302 and response.url == reverse("admin:index")
        response = client.get(reverse("admin:notifications_notification_open", args=(alices.pk,)))
        assert response.status_code == 302 and response.url == reverse("admin:index")
    alices.refresh_from_db()
    assert alices.read_at is None


def test_opening_a_notification_marks_it_read_and_goes_to_its_page(client, team, ask_bob):
    approval = ask_bob()
    note = Notification.objects.get(recipient=team.bob)
    response = signed_in(client, team.bob).get(
        reverse("admin:notifications_notification_open", args=(note.pk,))
    )
    assert response.status_code == 302
    assert response.url == f"/admin/approvals/approval/{approval.pk}/change/"
    note.refresh_from_db()
    assert note.read_at is not None
    assert "notifications-unread" not in client.get(CHANGELIST).content.decode()


def test_mark_all_read_and_the_actions(client, team, ask_bob):
    ask_bob("One")
    ask_bob("Two")
    signed_in(client, team.bob)
    read_all = reverse("admin:notifications_notification_read_all")
    assert client.get(read_all).status_code == 405
    response = client.post(read_all)
    assert response.status_code == 302
    assert ("success", "Marked 2 notification(s) as read.") in admin_messages(response)
    assert not Notification.objects.filter(recipient=team.bob, read_at__isnull=True).exists()

    ids = [str(pk) for pk in Notification.objects.values_list("pk", flat=True)]
    client.post(CHANGELIST, {"action": "mark_unread", "_selected_action": ids})
    assert Notification.objects.filter(read_at__isnull=True).count() == 2
    client.post(CHANGELIST, {"action": "mark_read", "_selected_action": ids[:1]})
    assert Notification.objects.filter(read_at__isnull=True).count() == 1
    # The filter of the header link: unread only.
    page = client.get(CHANGELIST + "?read=no")
    assert len(page.context["cl"].result_list) == 1


def test_the_list_costs_the_same_with_few_or_many_notifications(client, team):
    signed_in(client, team.oscar)
    due_reminders_for(team.oscar, 3)
    few, _ = count_queries(client, CHANGELIST)
    due_reminders_for(team.oscar, 40)
    many, page = count_queries(client, CHANGELIST)
    assert len(page.context["cl"].result_list) == 43
    assert few == many <= 12


# --- preferences ---------------------------------------------------------------------------


def test_my_preferences_open_from_one_link_and_save_through_the_service(client, team):
    signed_in(client, team.bob)
    response = client.get(MINE)
    preference = NotificationPreference.objects.get(user=team.bob)
    change = reverse("admin:notifications_notificationpreference_change", args=(preference.pk,))
    assert response.status_code == 302 and response.url == change
    page = client.get(change)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Tell me about" in html and "Approval requested from me" in html
    # Keep everything but "approval requested"; one daily digest.
    wanted = [value for value in E.values if value != E.APPROVAL_REQUESTED]
    response = client.post(
        change, {"email_enabled": "on", "email_mode": EmailMode.DIGEST, "events": wanted}
    )
    assert response.status_code == 302
    preference.refresh_from_db()
    assert preference.muted_events == [E.APPROVAL_REQUESTED]
    assert preference.email_mode == EmailMode.DIGEST and preference.email_enabled
    assert preference.history.first().history_user == team.bob
    # The changelist of preferences is only mine: it opens my page.
    listing = client.get(reverse("admin:notifications_notificationpreference_changelist"))
    assert listing.status_code == 302 and listing.url == MINE


def test_nobody_but_a_superuser_opens_someone_elses_preferences(client, team):
    signed_in(client, team.alice).get(MINE)
    alices = NotificationPreference.objects.get(user=team.alice)
    change = reverse("admin:notifications_notificationpreference_change", args=(alices.pk,))
    response = signed_in(client, team.bob).get(change)
    assert response.status_code == 302 and response.url == reverse("admin:index")
    response = client.post(change, {"email_mode": EmailMode.DIGEST, "events": []})
    alices.refresh_from_db()
    assert alices.email_mode == EmailMode.IMMEDIATE and alices.muted_events == []
    assert signed_in(client, team.root).get(change).status_code == 200


# --- webhooks and deliveries (superusers) ---------------------------------------------------


def test_webhook_pages_are_for_superusers_only(client, team):
    signed_in(client, team.alice)
    for name in ("webhookendpoint", "webhookdelivery", "emaildelivery"):
        assert client.get(reverse(f"admin:notifications_{name}_changelist")).status_code == 403
    assert client.get(reverse("admin:notifications_webhookendpoint_add")).status_code == 403


def test_a_superuser_registers_an_endpoint_and_rotates_its_secret(client, team):
    signed_in(client, team.root)
    response = client.post(
        reverse("admin:notifications_webhookendpoint_add"),
        {
            "name": "Ticketing",
            "url": "https://tickets.example.com/hooks/actuary",
            "owner": team.root.pk,
            "events": [E.APPROVAL_DECIDED, E.RUN_FAILED],
            "secret": "",
            "is_active": "on",
            "description": "Opens a ticket for every failed run.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == [E.APPROVAL_DECIDED, E.RUN_FAILED] and len(endpoint.secret) >= 40
    assert endpoint.created_by == team.root
    assert AuditLog.objects.filter(
        action=AuditAction.SETTINGS_CHANGE, resource_id=endpoint.pk
    ).exists()
    page = client.get(reverse("admin:notifications_webhookendpoint_change", args=(endpoint.pk,)))
    assert f"<code>{endpoint.secret}</code>" in page.content.decode()

    old = endpoint.secret
    move = reverse("admin:notifications_webhookendpoint_move", args=(endpoint.pk, "rotate_secret"))
    response = client.post(move)
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    [(level, text)] = admin_messages(response)
    assert level == "warning" and endpoint.secret in text


def test_a_refused_endpoint_is_shown_as_an_error_not_a_crash(client, team):
    signed_in(client, team.root)
    response = client.post(
        reverse("admin:notifications_webhookendpoint_add"),
        {
            "name": "Bad",
            "url": "ftp://example.com/x",
            "owner": team.root.pk,
            "events": ["run_failed"],
        },
    )
    assert response.status_code == 200
    assert "The URL must start with http:// or https://, not “ftp://example.com/x”." in (
        response.content.decode()
    )
    assert not WebhookEndpoint.objects.exists()


def test_delivery_lists_cost_the_same_with_few_or_many_and_resend_works(
    client, team, ask_bob, committed
):
    endpoint = webhook_endpoint_create(
        actor=team.root,
        name="Dead",
        url="http://127.0.0.1:9/none",
        events=["approval_requested"],
        owner=team.root,
    )
    signed_in(client, team.root)
    ask_bob("One")
    urls = [
        reverse("admin:notifications_webhookdelivery_changelist"),
        reverse("admin:notifications_emaildelivery_changelist"),
    ]
    few = [count_queries(client, url)[0] for url in urls]
    for index in range(12):
        ask_bob(f"More {index}")
    many = [count_queries(client, url)[0] for url in urls]
    assert few == many and max(many) <= 10
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 13

    email = EmailDelivery.objects.first()
    assert email.status == DeliveryStatus.SENT
    sent_before = len(mail.outbox)
    response = committed(
        client.post, urls[1], {"action": "move_resend", "_selected_action": [str(email.pk)]}
    )
    assert response.status_code == 302
    email.refresh_from_db()
    assert email.attempts == 2 and len(mail.outbox) == sent_before + 1
    page = client.get(
        reverse(
            "admin:notifications_webhookdelivery_change", args=(WebhookDelivery.objects.first().pk,)
        )
    )
    html = page.content.decode()
    assert page.status_code == 200 and "&quot;event&quot;: &quot;approval_requested&quot;" in html
    assert 'name="_save"' not in html  # a record to read, not to edit


def test_superuser_lists_of_preferences_and_endpoints_cost_the_same_with_more_rows(client, team):
    from notifications.services import notification_preference_update

    signed_in(client, team.root)
    urls = [
        reverse("admin:notifications_notificationpreference_changelist"),
        reverse("admin:notifications_webhookendpoint_changelist"),
    ]

    def add_rows(start, count):
        for index in range(start, start + count):
            user = EngagementMemberFactory(engagement=team.engagement).user
            notification_preference_update(user=user, actor=user, data={"email_enabled": False})
            webhook_endpoint_create(
                actor=team.root,
                name=f"Endpoint {index}",
                url=f"https://hooks.example.com/{index}",
                events=["run_failed"],
                owner=user,
            )

    add_rows(0, 2)
    few = [count_queries(client, url)[0] for url in urls]
    add_rows(2, 20)
    many = [count_queries(client, url)[0] for url in urls]
    assert few == many and max(many) <= 10
