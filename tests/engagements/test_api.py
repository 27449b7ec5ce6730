"""REST API of engagements, team members and users: CRUD, lifecycle, scoping, permissions."""

import datetime

import pytest

from audit.choices import AuditAction
from engagements.choices import ENGAGEMENT_TRANSITIONS, EngagementStatus, TeamRole
from engagements.models import Engagement, EngagementMember
from engagements.services import (
    engagement_activate,
    engagement_archive,
    engagement_cancel,
    engagement_complete,
    engagement_hold,
)
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    count_queries,
    ids,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    results,
    reviewer_client,
    reviewer_user,
    superuser_client,
    teammate,
    teammate_client,
    worker,
)
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory
from tests.factories.states import audit_events_since, audit_mark, final_sign_off, grant

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "reviewer_client",
    "reviewer_user",
    "superuser_client",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

ENGAGEMENTS = f"{API}/engagements/"
MEMBERS = f"{API}/team-members/"
USERS = f"{API}/users/"


def detail(engagement, suffix=""):
    return f"{ENGAGEMENTS}{engagement.pk}/{suffix}"


def engagement_in(status, engagement, *, lead, reviewer):
    """Bring the engagement to `status` through the services (active ones are signed off)."""
    if status == EngagementStatus.DRAFT:
        return engagement
    if status in (EngagementStatus.CANCELLED, EngagementStatus.ARCHIVED):
        engagement = engagement_cancel(engagement=engagement, actor=lead)
        if status == EngagementStatus.ARCHIVED:
            engagement = engagement_archive(engagement=engagement, actor=lead)
        return engagement
    engagement = engagement_activate(engagement=engagement, actor=lead)
    # A final sign-off lets `complete` succeed from active.
    final_sign_off(engagement, requester=lead, approver=reviewer)
    if status == EngagementStatus.ON_HOLD:
        engagement = engagement_hold(engagement=engagement, actor=lead)
    if status == EngagementStatus.COMPLETED:
        engagement = engagement_complete(engagement=engagement, actor=lead)
    return engagement


# --- reading and scoping ------------------------------------------------------------------


def test_list_shows_only_the_engagements_of_your_teams(engagement, lead_client, outsider_client):
    other = EngagementFactory()
    assert ids(lead_client.get(ENGAGEMENTS)) == {str(engagement.pk)}
    assert ids(outsider_client.get(ENGAGEMENTS)) == set()
    assert other.pk


def test_detail_outside_your_teams_is_not_found(engagement, outsider_client):
    assert_error(outsider_client.get(detail(engagement)), 404, "not_found")


def test_detail_shows_the_team_and_the_moves_allowed(engagement, lead_client, lead):
    body = lead_client.get(detail(engagement)).json()
    assert body["status"] == "draft"
    assert body["available_moves"] == ["activate", "cancel"]
    assert {(member["username"], member["role"]) for member in body["team"]} == {
        ("actuary", "lead"),
        ("reviewer", "reviewer"),
    }
    assert body["lead_actuary"] == lead.pk


def test_superuser_and_global_viewers_see_every_engagement(engagement, superuser_client):
    other = EngagementFactory()
    assert ids(superuser_client.get(ENGAGEMENTS)) == {str(engagement.pk), str(other.pk)}
    viewer = grant(reader(UserFactory()), "engagements.view_all_engagements")
    assert ids(client_for(viewer).get(ENGAGEMENTS)) == {str(engagement.pk), str(other.pk)}


def test_global_viewers_read_but_may_not_move(engagement):
    viewer = grant(worker(UserFactory()), "engagements.view_all_engagements")
    response = client_for(viewer).post(detail(engagement, "activate/"))
    assert_error(response, 403, "not_allowed", match="not on its team")


def test_a_member_without_the_view_permission_is_refused(engagement, actuary):
    assert_error(client_for(actuary).get(ENGAGEMENTS), 403, "permission_denied")


def test_anonymous_is_asked_to_authenticate(engagement, api_client):
    response = api_client.get(detail(engagement))
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_deleted_engagements_are_gone(engagement, lead_client):
    assert lead_client.delete(detail(engagement)).status_code == 204
    assert_error(lead_client.get(detail(engagement)), 404, "not_found")
    assert ids(lead_client.get(ENGAGEMENTS)) == set()


# --- creating, editing, deleting ----------------------------------------------------------


def test_create_opens_a_draft_led_by_you_and_records_it(lead, lead_client, reviewer):
    mark = audit_mark()
    response = lead_client.post(
        ENGAGEMENTS,
        {
            "client_code": "ACME",
            "client_name": "Acme Insurance",
            "name": "IFRS 17 transition",
            "engagement_type": "ifrs17",
            "reviewer": reviewer.pk,
            "due_date": "2026-03-31",
            "metadata": {"tags": ["ifrs17"]},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert body["lead_actuary"] == lead.pk
    assert body["created_by"] == lead.pk
    engagement = Engagement.objects.get(pk=body["id"])
    assert engagement.history.latest().history_user == lead
    assert set(engagement.team.values_list("user__username", "role")) == {
        ("actuary", "lead"),
        ("reviewer", "reviewer"),
    }
    events = audit_events_since(mark)
    assert [e.action for e in events if e.resource_type == "engagement"] == [
        AuditAction.ENGAGEMENT_CREATE
    ]
    assert {event.user for event in events} == {lead}
    # It is on the creator's team, so they see it.
    assert str(engagement.pk) in ids(lead_client.get(ENGAGEMENTS))


def test_create_needs_the_add_permission(engagement, actuary):
    viewer = reader(actuary)
    response = client_for(viewer).post(
        ENGAGEMENTS, {"client_code": "X", "client_name": "Y", "name": "Z"}
    )
    assert_error(response, 403, "permission_denied")
    assert Engagement.objects.count() == 1


def test_create_reports_missing_and_wrong_fields(lead_client):
    response = lead_client.post(ENGAGEMENTS, {"client_code": "X", "due_date": "soon"})
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"client_name", "name", "due_date"}


def test_create_refuses_a_lead_who_is_also_reviewer(lead, lead_client):
    response = lead_client.post(
        ENGAGEMENTS,
        {
            "client_code": "X",
            "client_name": "Y",
            "name": "Z",
            "lead_actuary": lead.pk,
            "reviewer": lead.pk,
        },
    )
    body = assert_error(response, 400, "invalid", match="must be different people")
    assert body["errors"]["non_field_errors"]


def test_create_refuses_a_period_that_ends_before_it_starts(lead_client):
    response = lead_client.post(
        ENGAGEMENTS,
        {
            "client_code": "X",
            "client_name": "Y",
            "name": "Z",
            "period_start": "2025-12-31",
            "period_end": "2025-01-01",
        },
    )
    assert_error(response, 400, "invalid", match="engagement_period_end_after_start")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "active"),
        ("id", "00000000-0000-0000-0000-000000000000"),
        ("created_at", "2020-01-01T00:00:00Z"),
        ("created_by", 1),
        ("updated_by", 1),
        ("team", []),
        ("is_active", True),
    ],
)
def test_read_only_fields_are_refused(engagement, lead_client, field, value):
    response = lead_client.patch(detail(engagement), {field: value, "name": "Renamed"})
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {field}
    engagement.refresh_from_db()
    assert engagement.name != "Renamed"
    assert engagement.status == "draft"


def test_status_refusal_points_to_the_transition_actions(engagement, lead_client):
    response = lead_client.patch(detail(engagement), {"status": "active"})
    body = assert_error(response, 400, "invalid", match="transition actions")
    assert body["errors"] == {"status": [body["detail"].removeprefix("status: ")]}


def test_unknown_fields_are_refused(engagement, lead_client):
    body = assert_error(lead_client.patch(detail(engagement), {"nmae": "x"}), 400, "invalid")
    assert body["errors"] == {
        "nmae": ["Unknown field: it is not one of the fields this endpoint accepts."]
    }


def test_patch_edits_and_records_the_change(engagement, lead, lead_client):
    mark = audit_mark()
    response = lead_client.patch(detail(engagement), {"name": "Renamed", "config": {"a": 1}})
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    engagement.refresh_from_db()
    assert (engagement.name, engagement.config, engagement.updated_by) == (
        "Renamed",
        {"a": 1},
        lead,
    )
    assert engagement.history.latest().history_user == lead
    (event,) = audit_events_since(mark)
    assert (event.action, event.user, event.new_value) == (
        AuditAction.ENGAGEMENT_UPDATE,
        lead,
        {"name": "Renamed", "config": {"a": 1}},
    )


def test_put_replaces_the_details(engagement, lead_client):
    response = lead_client.put(
        detail(engagement), {"client_code": "NEW", "client_name": "New Co", "name": "New name"}
    )
    assert response.status_code == 200, response.content
    engagement.refresh_from_db()
    assert (engagement.client_code, engagement.name) == ("NEW", "New name")


def test_json_fields_must_be_objects(engagement, lead_client):
    body = assert_error(lead_client.patch(detail(engagement), {"config": [1, 2]}), 400, "invalid")
    assert set(body["errors"]) == {"config"}


def test_only_the_lead_edits(engagement, teammate_client):
    response = teammate_client.patch(detail(engagement), {"name": "Mine now"})
    assert_error(response, 403, "not_allowed", match="their role on its team is actuary")


def test_outsiders_cannot_edit_or_delete(engagement, outsider_client):
    assert_error(outsider_client.patch(detail(engagement), {"name": "x"}), 404, "not_found")
    assert_error(outsider_client.delete(detail(engagement)), 404, "not_found")


def test_delete_soft_deletes_and_records(engagement, lead, lead_client):
    mark = audit_mark()
    assert lead_client.delete(detail(engagement)).status_code == 204
    assert Engagement.all_objects.get(pk=engagement.pk).is_deleted
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.ENGAGEMENT_DELETE, lead)


def test_delete_of_active_work_is_a_conflict(engagement, lead, lead_client):
    engagement_activate(engagement=engagement, actor=lead)
    assert_error(lead_client.delete(detail(engagement)), 409, "conflict", match="is active")


def test_delete_needs_the_delete_permission(engagement, actuary):
    response = client_for(reader(actuary)).delete(detail(engagement))
    assert_error(response, 403, "permission_denied")


# --- lifecycle ------------------------------------------------------------------------------

LIFECYCLE_CASES = [
    (state, move, state in sources, target)
    for move, (sources, target) in ENGAGEMENT_TRANSITIONS.items()
    for state in EngagementStatus
]


@pytest.mark.parametrize(
    ("state", "move", "allowed", "target"),
    LIFECYCLE_CASES,
    ids=[f"{move}-from-{state}" for state, move, _a, _t in LIFECYCLE_CASES],
)
def test_every_move_from_every_state(
    engagement, lead, reviewer, lead_client, state, move, allowed, target
):
    engagement = engagement_in(state, engagement, lead=lead, reviewer=reviewer)
    mark = audit_mark()
    response = lead_client.post(detail(engagement, f"{move}/"))
    engagement.refresh_from_db()
    if allowed:
        assert response.status_code == 200, response.content
        assert response.json()["status"] == target == engagement.status
        events = audit_events_since(mark)
        assert [(event.user, event.metadata["move"]) for event in events] == [(lead, move)]
    else:
        body = assert_error(response, 409, "invalid_transition")
        assert body["status"] == state == engagement.status
        assert set(body) == {"detail", "code", "status"}
        assert audit_events_since(mark) == []


def test_complete_without_a_sign_off_is_a_conflict(engagement, lead, lead_client):
    engagement_activate(engagement=engagement, actor=lead)
    response = lead_client.post(detail(engagement, "complete/"))
    assert_error(response, 409, "conflict", match="no approved final sign-off")


def test_moves_are_the_leads(engagement, teammate_client):
    response = teammate_client.post(detail(engagement, "activate/"))
    assert_error(response, 403, "not_allowed", match="may not activate engagement")


def test_moves_need_the_change_permission(engagement, actuary):
    client = client_for(grant(actuary, "engagements.view_engagement"))
    assert_error(client.post(detail(engagement, "activate/")), 403, "permission_denied")


def test_moves_outside_your_teams_are_not_found(engagement, outsider_client):
    assert_error(outsider_client.post(detail(engagement, "activate/")), 404, "not_found")


def test_moves_of_an_unknown_engagement_are_not_found(lead_client):
    response = lead_client.post(f"{ENGAGEMENTS}00000000-0000-0000-0000-000000000000/activate/")
    assert_error(response, 404, "not_found")
    assert_error(lead_client.post(f"{ENGAGEMENTS}not-a-uuid/activate/"), 404, "not_found")


def test_a_move_ignores_its_body(engagement, lead_client):
    response = lead_client.post(detail(engagement, "activate/"), {"status": "archived"})
    assert response.json()["status"] == "active"


# --- team members ---------------------------------------------------------------------------


def test_team_members_of_one_engagement(engagement, lead_client, outsider_client):
    EngagementFactory()
    body = results(lead_client.get(MEMBERS, {"engagement_id": engagement.pk}))
    assert {(row["username"], row["role"]) for row in body} == {
        ("actuary", "lead"),
        ("reviewer", "reviewer"),
    }
    assert results(outsider_client.get(MEMBERS)) == []


def test_lead_adds_a_member_and_it_is_recorded(engagement, lead, lead_client):
    newcomer = UserFactory(username="newcomer")
    mark = audit_mark()
    response = lead_client.post(
        MEMBERS, {"engagement": str(engagement.pk), "user": newcomer.pk, "role": "observer"}
    )
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "newcomer"
    member = EngagementMember.objects.get(engagement=engagement, user=newcomer)
    assert (member.role, member.created_by) == (TeamRole.OBSERVER, lead)
    (event,) = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.PERMISSION_CHANGE, lead)


def test_adding_someone_twice_is_a_conflict(engagement, lead_client, reviewer):
    response = lead_client.post(
        MEMBERS, {"engagement": str(engagement.pk), "user": reviewer.pk, "role": "actuary"}
    )
    assert_error(response, 409, "conflict", match="already on the team")


def test_only_the_lead_changes_the_team(engagement, teammate_client):
    response = teammate_client.post(
        MEMBERS, {"engagement": str(engagement.pk), "user": UserFactory().pk, "role": "actuary"}
    )
    assert_error(response, 403, "not_allowed", match="may not change the team of")


def test_members_cannot_be_added_to_hidden_engagements(outsider_client):
    hidden = EngagementFactory()
    response = outsider_client.post(
        MEMBERS, {"engagement": str(hidden.pk), "user": UserFactory().pk, "role": "actuary"}
    )
    body = assert_error(response, 400, "invalid")
    assert "does not exist" in body["errors"]["engagement"][0]


def test_lead_changes_a_role_but_not_the_person(engagement, lead_client, teammate):
    member = EngagementMember.objects.get(user=teammate)
    url = f"{MEMBERS}{member.pk}/"
    assert lead_client.patch(url, {"role": "observer"}).json()["role"] == "observer"
    body = assert_error(lead_client.patch(url, {"user": 1}), 400, "invalid")
    assert body["errors"] == {
        "user": ["This field is set when the object is created and cannot be changed."]
    }


def test_lead_removes_a_member_but_never_the_reviewer(engagement, lead_client, teammate):
    member = EngagementMember.objects.get(user=teammate)
    assert lead_client.delete(f"{MEMBERS}{member.pk}/").status_code == 204
    assert not EngagementMember.objects.filter(pk=member.pk).exists()
    reviewer_member = EngagementMember.objects.get(engagement=engagement, role="reviewer")
    response = lead_client.delete(f"{MEMBERS}{reviewer_member.pk}/")
    assert_error(response, 409, "conflict", match="they are its reviewer")


# --- users ----------------------------------------------------------------------------------


def test_users_are_you_and_your_colleagues(engagement, lead, lead_client, reviewer):
    UserFactory(username="stranger")
    inactive = UserFactory(username="gone", is_active=False)
    EngagementMemberFactory(engagement=engagement, user=inactive)
    body = results(lead_client.get(USERS))
    assert [row["username"] for row in body] == ["actuary", "reviewer"]
    assert body[0] == {
        "id": lead.pk,
        "username": "actuary",
        "full_name": lead.get_full_name(),
        "is_active": True,
    }


def test_superusers_see_every_active_user(engagement, superuser, superuser_client):
    UserFactory(username="stranger")
    UserFactory(username="gone", is_active=False)
    names = {row["username"] for row in results(superuser_client.get(USERS))}
    assert names == {"actuary", "reviewer", "stranger", superuser.username}


def test_users_are_read_only(lead_client, lead):
    assert_error(lead_client.post(USERS, {"username": "x"}), 405, "method_not_allowed")
    assert_error(lead_client.delete(f"{USERS}{lead.pk}/"), 405, "method_not_allowed")


def test_users_need_the_view_permission(engagement, actuary):
    assert_error(client_for(actuary).get(USERS), 403, "permission_denied")


def test_a_stranger_is_not_found(lead_client):
    stranger = UserFactory(username="stranger")
    assert_error(lead_client.get(f"{USERS}{stranger.pk}/"), 404, "not_found")


# --- query counts ---------------------------------------------------------------------------


@pytest.fixture
def many_engagements(lead, reviewer):
    """100 engagements led by `lead`, each with a team of three."""
    for index in range(100):
        engagement = EngagementFactory(
            lead_actuary=lead,
            reviewer=reviewer,
            due_date=datetime.date(2026, 1, 1) + datetime.timedelta(days=index),
        )
        EngagementMemberFactory(engagement=engagement, user=lead, role="lead")
        EngagementMemberFactory(engagement=engagement, user=reviewer, role="reviewer")
        EngagementMemberFactory(engagement=engagement)


@pytest.mark.parametrize("url", [ENGAGEMENTS, MEMBERS, USERS])
def test_lists_run_a_fixed_number_of_queries(
    many_engagements, lead_client, django_assert_max_num_queries, url
):
    counts = {}
    for page_size in (1, 100):
        with django_assert_max_num_queries(8):
            response = lead_client.get(url, {"page_size": page_size})
        assert len(results(response)) == page_size
        counts[page_size] = count_queries(
            lambda s=page_size: lead_client.get(url, {"page_size": s})
        )
    assert counts[1] == counts[100]
