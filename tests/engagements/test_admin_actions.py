"""Engagement admin: lifecycle buttons and actions, add/change/team/delete through the services."""

import pytest
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.services import approval_request
from audit.choices import AuditAction
from engagements.models import Engagement, EngagementMember
from engagements.services import engagement_activate, engagement_hold
from tests.factories import EngagementFactory, SuperUserFactory, UserFactory
from tests.factories.states import (
    admin_form_data,
    admin_messages,
    audit_events_since,
    audit_mark,
    database_state,
    grant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(db):
    return SuperUserFactory(username="admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def change_url(engagement):
    return reverse("admin:engagements_engagement_change", args=(engagement.pk,))


def move_url(engagement, move):
    return reverse("admin:engagements_engagement_move", args=(engagement.pk, move))


CHANGELIST = reverse("admin:engagements_engagement_changelist")

# --- buttons ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("draft", {"activate", "cancel"}),
        ("active", {"hold", "complete", "cancel"}),
        ("on_hold", {"activate", "cancel"}),
    ],
)
def test_the_change_page_shows_only_the_moves_valid_now(
    admin_client, engagement, actuary, state, shown
):
    if state != "draft":
        engagement = engagement_activate(engagement=engagement, actor=actuary)
    if state == "on_hold":
        engagement = engagement_hold(engagement=engagement, actor=actuary)
    page = admin_client.get(change_url(engagement))
    assert page.status_code == 200
    html = page.content.decode()
    for move in ("activate", "hold", "complete", "archive", "cancel"):
        assert (move_url(engagement, move) in html) == (move in shown), move


def test_a_button_calls_the_service(admin_client, admin_user, engagement):
    mark = audit_mark()
    response = admin_client.post(move_url(engagement, "activate"))
    assert response.status_code == 302 and response.url == change_url(engagement)
    engagement.refresh_from_db()
    assert engagement.status == "active" and engagement.updated_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ENGAGEMENT_UPDATE and event.user == admin_user
    [(level, text)] = admin_messages(response)
    assert level == "success" and "now active" in text


def test_a_refused_move_shows_the_services_message_and_changes_nothing(
    admin_client, engagement, actuary
):
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    before = database_state()
    response = admin_client.post(move_url(engagement, "complete"))
    assert response.status_code == 302
    assert admin_messages(response) == [
        ("error", f"Cannot complete engagement “{engagement}”: it has no approved final sign-off.")
    ]
    assert database_state() == before


def test_a_move_not_valid_from_the_state_is_refused_with_its_message(admin_client, engagement):
    before = database_state()
    response = admin_client.post(move_url(engagement, "archive"))
    [(level, text)] = admin_messages(response)
    assert level == "error" and text.startswith(f"Cannot archive engagement “{engagement}”")
    assert database_state() == before


def test_a_non_member_staff_user_is_refused_by_the_service(client, engagement):
    staff = grant(
        UserFactory(username="clerk", is_staff=True),
        "engagements.change_engagement",
        "engagements.view_all_engagements",
    )
    client.force_login(staff)
    before = database_state()
    response = client.post(move_url(engagement, "activate"))
    [(level, text)] = admin_messages(response)
    assert level == "error" and "clerk may not activate engagement" in text
    assert database_state() == before


def test_moves_need_post_and_a_known_name(admin_client, engagement):
    assert admin_client.get(move_url(engagement, "activate")).status_code == 405
    assert admin_client.post(move_url(engagement, "explode")).status_code == 404


def test_users_without_change_permission_cannot_move(client, engagement, actuary):
    client.force_login(grant(actuary, "engagements.view_engagement"))
    assert client.post(move_url(engagement, "activate")).status_code == 403
    engagement.refresh_from_db()
    assert engagement.status == "draft"


# --- changelist actions -------------------------------------------------------------------


def test_an_action_moves_each_selected_engagement_and_reports_each_refusal(
    admin_client, admin_user, engagement
):
    other = EngagementFactory(name="Other")
    active = engagement_activate(engagement=EngagementFactory(name="Busy"), actor=admin_user)
    response = admin_client.post(
        CHANGELIST,
        {"action": "move_activate", "_selected_action": [engagement.pk, other.pk, active.pk]},
    )
    assert response.status_code == 302
    statuses = dict(Engagement.objects.values_list("name", "status"))
    assert statuses[engagement.name] == statuses["Other"] == statuses["Busy"] == "active"
    messages = admin_messages(response)
    assert ("success", "Activate: done for 2 engagements.") in messages
    refusal = f"{active}: Cannot activate"
    assert any(level == "error" and text.startswith(refusal) for level, text in messages)


def test_the_actions_are_listed(admin_client):
    page = admin_client.get(CHANGELIST)
    choices = dict(page.context["action_form"].fields["action"].choices)
    assert {"move_activate", "move_hold", "move_complete", "move_archive", "move_cancel"} <= set(
        choices
    )


# --- add, change, team --------------------------------------------------------------------


def test_adding_an_engagement_goes_through_the_service(admin_client, admin_user, actuary, reviewer):
    page = admin_client.get(reverse("admin:engagements_engagement_add"))
    data = admin_form_data(page) | {
        "client_code": "ACME",
        "client_name": "Acme Insurance",
        "name": "Reserving 2025",
        "engagement_type": "reserving",
        "lead_actuary": actuary.pk,
        "reviewer": reviewer.pk,
    }
    mark = audit_mark()

    response = admin_client.post(reverse("admin:engagements_engagement_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    engagement = Engagement.objects.get(client_code="ACME")
    assert engagement.created_by == admin_user and engagement.status == "draft"
    assert set(engagement.team.values_list("user", "role")) == {
        (actuary.pk, "lead"),
        (reviewer.pk, "reviewer"),
    }
    assert sorted(e.action for e in audit_events_since(mark)) == [
        AuditAction.ENGAGEMENT_CREATE,
        AuditAction.PERMISSION_CHANGE,
        AuditAction.PERMISSION_CHANGE,
    ]


def test_a_refused_change_redisplays_the_form_with_the_message(client, engagement):
    staff = grant(
        UserFactory(username="clerk", is_staff=True),
        "engagements.change_engagement",
        "engagements.view_all_engagements",
    )
    client.force_login(staff)
    page = client.get(change_url(engagement))
    data = admin_form_data(page) | {"name": "Renamed by a stranger"}
    before = database_state()

    response = client.post(change_url(engagement), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Nothing was saved: see the error above."
    ]
    [(level, text)] = admin_messages(response)
    assert level == "error" and "clerk may not edit engagement" in text
    assert database_state() == before


def test_a_team_member_is_added_in_the_inline(admin_client, admin_user, engagement):
    newcomer = UserFactory(username="newcomer")
    page = admin_client.get(change_url(engagement))
    data = admin_form_data(page) | {
        "team-TOTAL_FORMS": "3",
        "team-2-user": newcomer.pk,
        "team-2-role": "observer",
        "team-2-engagement": engagement.pk,
    }
    mark = audit_mark()
    response = admin_client.post(change_url(engagement), data)
    assert response.status_code == 302
    member = EngagementMember.objects.get(engagement=engagement, user=newcomer)
    assert member.role == "observer" and member.created_by == admin_user
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.PERMISSION_CHANGE and event.user == admin_user


def test_removing_the_lead_in_the_inline_is_refused(admin_client, engagement, actuary):
    page = admin_client.get(change_url(engagement))
    data = admin_form_data(page)
    formset = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.prefix == "team"
    )
    index = next(i for i, form in enumerate(formset.forms) if form.instance.user == actuary)
    data[f"team-{index}-DELETE"] = "on"
    before = database_state()

    response = admin_client.post(change_url(engagement), data)

    assert response.status_code == 200
    [(level, text)] = admin_messages(response)
    assert level == "error" and "Cannot remove actuary" in text and "lead actuary" in text
    assert database_state() == before


# --- delete -------------------------------------------------------------------------------


def test_deleting_a_draft_soft_deletes_it_through_the_service(
    admin_client, admin_user, engagement, actuary
):
    # Its approvals stay: a soft delete cascades nowhere, so it needs no permission on them.
    approval_request(
        approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
    )
    mark = audit_mark()
    response = admin_client.post(
        reverse("admin:engagements_engagement_delete", args=(engagement.pk,)), {"post": "yes"}
    )
    assert response.status_code == 302
    assert Engagement.all_objects.get(pk=engagement.pk).is_deleted
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ENGAGEMENT_DELETE and event.user == admin_user


def test_deleting_an_active_engagement_is_refused(admin_client, engagement, actuary):
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    before = database_state()
    response = admin_client.post(
        reverse("admin:engagements_engagement_delete", args=(engagement.pk,)), {"post": "yes"}
    )
    assert response.status_code == 302 and response.url == change_url(engagement)
    [(level, text)] = admin_messages(response)
    assert level == "error" and "it is active" in text
    assert database_state() == before


def test_delete_selected_asks_then_deletes_through_the_service(
    admin_client, admin_user, engagement
):
    busy = engagement_activate(engagement=EngagementFactory(name="Busy"), actor=admin_user)
    selection = {"action": "delete_selected", "_selected_action": [engagement.pk, busy.pk]}
    confirm = admin_client.post(CHANGELIST, selection)
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content

    response = admin_client.post(CHANGELIST, selection | {"post": "yes"})

    assert response.status_code == 302
    assert Engagement.all_objects.get(pk=engagement.pk).is_deleted
    assert not Engagement.all_objects.get(pk=busy.pk).is_deleted
    messages = admin_messages(response)
    assert ("success", "Deleted 1 engagement.") in messages
    assert any(level == "error" and "Busy" in text for level, text in messages)


def test_the_team_member_admin_goes_through_the_services(admin_client, engagement, actuary):
    lead = EngagementMember.objects.get(engagement=engagement, user=actuary)
    delete = reverse("admin:engagements_engagementmember_delete", args=(lead.pk,))
    before = database_state()
    response = admin_client.post(delete, {"post": "yes"})
    [(level, text)] = admin_messages(response)
    assert level == "error" and "they are its lead actuary" in text
    assert database_state() == before

    change = reverse("admin:engagements_engagementmember_change", args=(lead.pk,))
    data = admin_form_data(admin_client.get(change)) | {"role": "observer"}
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "Cannot change the role of actuary" in admin_messages(response)[0][1]
    assert database_state() == before
