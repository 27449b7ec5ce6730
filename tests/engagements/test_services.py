"""Engagement services: create, edit, lifecycle, team, delete, and the team scoping helpers."""

import datetime

import pytest

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject, approval_request
from audit.choices import AuditAction
from engagements.choices import TeamRole
from engagements.models import Engagement, EngagementMember
from engagements.selectors import (
    engagement_can_view,
    engagement_require_member,
    engagements_visible_to,
    scope_to_user,
)
from engagements.services import (
    engagement_activate,
    engagement_archive,
    engagement_cancel,
    engagement_complete,
    engagement_create,
    engagement_delete,
    engagement_hold,
    engagement_member_add,
    engagement_member_remove,
    engagement_member_update,
    engagement_update,
)
from records.exceptions import Conflict, InvalidInput, InvalidTransition, NotAllowed
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    SuperUserFactory,
    UserFactory,
)
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    final_sign_off,
    final_sign_off_request,
    grant,
    run_in,
    runnable_run_in,
)
from tests.lifecycle import state_words
from workflows.models import WorkflowRun
from workflows.services import (
    workflow_run_await_approval,
    workflow_run_cancel,
    workflow_run_pause,
    workflow_run_queue,
    workflow_run_start,
)

pytestmark = pytest.mark.django_db

MOVES = {
    "activate": engagement_activate,
    "hold": engagement_hold,
    "complete": engagement_complete,
    "archive": engagement_archive,
    "cancel": engagement_cancel,
}
# The spec's lifecycle, written out independently of choices.py.
ALLOWED = {
    "activate": {"draft": "active", "on_hold": "active"},
    "hold": {"active": "on_hold"},
    "complete": {"active": "completed"},
    "archive": {"completed": "archived", "cancelled": "archived"},
    "cancel": {"draft": "cancelled", "active": "cancelled", "on_hold": "cancelled"},
}
STATES = ("draft", "active", "on_hold", "completed", "archived", "cancelled")


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider", is_staff=True)


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="observer")
    EngagementMemberFactory(engagement=engagement, user=observer, role=TeamRole.OBSERVER)
    return observer


@pytest.fixture
def colleague(engagement):
    colleague = UserFactory(username="colleague", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=colleague, role=TeamRole.ACTUARY)
    return colleague


def engagement_in(state, engagement, *, lead, reviewer):
    """Bring the fixture engagement to `state` through the services (with a final sign-off)."""
    final_sign_off(engagement, requester=lead, approver=reviewer)
    if state == "draft":
        return engagement
    if state == "cancelled":
        return engagement_cancel(engagement=engagement, actor=lead)
    engagement = engagement_activate(engagement=engagement, actor=lead)
    if state == "on_hold":
        return engagement_hold(engagement=engagement, actor=lead)
    if state in ("completed", "archived"):
        engagement = engagement_complete(engagement=engagement, actor=lead)
    if state == "archived":
        engagement = engagement_archive(engagement=engagement, actor=lead)
    return engagement


def roles_of(engagement):
    return dict(EngagementMember.objects.filter(engagement=engagement).values_list("user", "role"))


# --- create -------------------------------------------------------------------------------


def test_create_opens_a_draft_and_puts_lead_and_reviewer_on_the_team(actuary, reviewer):
    creator = grant(UserFactory(username="partner"), "engagements.add_engagement")
    mark = audit_mark()

    engagement = engagement_create(
        client_code="ACME",
        client_name="Acme Insurance",
        name="Year-end reserving",
        lead_actuary=actuary,
        reviewer=reviewer,
        period_start=datetime.date(2025, 1, 1),
        period_end=datetime.date(2025, 12, 31),
        actor=creator,
    )

    engagement.refresh_from_db()
    assert engagement.status == "draft"
    assert engagement.created_by == creator and engagement.updated_by == creator
    assert roles_of(engagement) == {actuary.pk: "lead", reviewer.pk: "reviewer"}
    history = engagement.history.latest()
    assert history.history_user == creator and history.history_change_reason == "Created"
    events = audit_events_since(mark)
    assert sorted(e.action for e in events) == [
        AuditAction.ENGAGEMENT_CREATE,
        AuditAction.PERMISSION_CHANGE,
        AuditAction.PERMISSION_CHANGE,
    ]
    assert all(e.user == creator and e.engagement_id == engagement.pk for e in events)
    created = next(e for e in events if e.action == AuditAction.ENGAGEMENT_CREATE)
    assert created.resource_id == engagement.pk
    assert created.new_value["name"] == "Year-end reserving"
    assert created.new_value["lead_actuary"] == actuary.pk


def test_superuser_may_create_without_a_team():
    engagement = engagement_create(
        client_code="X", client_name="X", name="X", actor=SuperUserFactory()
    )
    assert engagement.status == "draft" and roles_of(engagement) == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, NotAllowed, "may not open engagements: this needs the “add engagement” permission"),
        ({"same_people": True}, InvalidInput, "must be different people"),
        (
            {"period_end": datetime.date(2024, 1, 1)},
            InvalidInput,
            "Invalid engagement .*engagement_period_end_after_start",
        ),
    ],
)
def test_create_refusals_change_nothing(actuary, kwargs, error, match):
    creator = UserFactory(username="creator")
    if kwargs:
        creator = grant(creator, "engagements.add_engagement")
    fields = {"period_start": datetime.date(2025, 1, 1), "lead_actuary": actuary}
    if kwargs.pop("same_people", False):
        fields["reviewer"] = actuary
    fields.update(kwargs)
    before = database_state()

    with pytest.raises(error, match=match):
        engagement_create(client_code="C", client_name="C", name="N", actor=creator, **fields)

    assert database_state() == before


# --- update -------------------------------------------------------------------------------


def test_lead_edits_details_with_one_audit_event_of_what_changed(engagement, actuary):
    mark = audit_mark()

    engagement = engagement_update(
        engagement=engagement, actor=actuary, data={"name": "Renamed", "description": "Why"}
    )

    engagement.refresh_from_db()
    assert engagement.name == "Renamed" and engagement.updated_by == actuary
    assert engagement.history.latest().history_change_reason == "Edited: description, name"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ENGAGEMENT_UPDATE and event.user == actuary
    assert set(event.old_value) == {"name", "description"}
    assert event.new_value == {"name": "Renamed", "description": "Why"}


def test_an_edit_that_changes_nothing_writes_nothing(engagement, actuary):
    before = database_state()
    engagement_update(engagement=engagement, actor=actuary, data={"name": engagement.name})
    assert database_state() == before


def test_changing_the_lead_moves_the_lead_role(engagement, actuary, reviewer, colleague):
    mark = audit_mark()

    engagement_update(engagement=engagement, actor=actuary, data={"lead_actuary": colleague})

    assert roles_of(engagement) == {
        actuary.pk: "actuary",
        colleague.pk: "lead",
        reviewer.pk: "reviewer",
    }
    actions = sorted(e.action for e in audit_events_since(mark))
    assert actions == [AuditAction.ENGAGEMENT_UPDATE] + [AuditAction.PERMISSION_CHANGE] * 2


def test_a_new_reviewer_joins_the_team(engagement, actuary, outsider):
    engagement_update(engagement=engagement, actor=actuary, data={"reviewer": outsider})
    assert roles_of(engagement)[outsider.pk] == "reviewer"


def test_superuser_may_edit_any_engagement(engagement):
    admin = SuperUserFactory()
    engagement = engagement_update(engagement=engagement, actor=admin, data={"name": "By admin"})
    assert engagement.name == "By admin" and engagement.updated_by == admin


@pytest.mark.parametrize(
    ("who", "data", "error", "match"),
    [
        ("reviewer", {"name": "x"}, NotAllowed, "their role on its team is reviewer"),
        ("outsider", {"name": "x"}, NotAllowed, "they are not on its team"),
        ("observer", {"name": "x"}, NotAllowed, "role on its team is observer"),
        ("actuary", {"status": "active"}, InvalidInput, "Cannot change status of engagement"),
        ("actuary", {"reviewer": "actuary"}, InvalidInput, "must be different people"),
        ("actuary", {"client_code": ""}, InvalidInput, "client_code: This field cannot be blank"),
    ],
)
def test_edit_refusals_change_nothing(request, engagement, observer, who, data, error, match):
    actor = request.getfixturevalue(who)
    data = {k: request.getfixturevalue(v) if k == "reviewer" else v for k, v in data.items()}
    before = database_state()
    with pytest.raises(error, match=match):
        engagement_update(engagement=engagement, actor=actor, data=data)
    assert database_state() == before


@pytest.mark.parametrize("state", ["on_hold", "completed", "archived", "cancelled"])
def test_only_draft_or_active_engagements_are_editable(engagement, actuary, reviewer, state):
    engagement = engagement_in(state, engagement, lead=actuary, reviewer=reviewer)
    before = database_state()
    with pytest.raises(Conflict, match=rf"Cannot edit engagement .*: it is {state_words(state)} "):
        engagement_update(engagement=engagement, actor=actuary, data={"name": "x"})
    assert database_state() == before


# --- lifecycle ----------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(MOVES))
def test_every_move_from_every_state(engagement, actuary, reviewer, move, state):
    engagement = engagement_in(state, engagement, lead=actuary, reviewer=reviewer)
    target = ALLOWED[move].get(state)
    before = database_state()
    mark = audit_mark()

    if target is None:
        with pytest.raises(
            InvalidTransition, match=rf"Cannot {move} .*: it is {state_words(state)} "
        ):
            MOVES[move](engagement=engagement, actor=actuary)
        assert database_state() == before
        return

    result = MOVES[move](engagement=engagement, actor=actuary)

    engagement.refresh_from_db()
    assert result.status == engagement.status == target
    assert engagement.updated_by == actuary
    history = engagement.history.latest()
    assert history.history_user == actuary
    assert history.history_change_reason == move.capitalize()
    [event] = audit_events_since(mark)
    expected = AuditAction.ENGAGEMENT_ARCHIVE if move == "archive" else "engagement_update"
    assert event.action == expected
    assert event.user == actuary and event.resource_id == engagement.pk
    assert event.old_value == {"status": state} and event.new_value == {"status": target}
    assert event.metadata["move"] == move


@pytest.mark.parametrize("move", list(MOVES))
@pytest.mark.parametrize("who", ["reviewer", "colleague", "observer", "outsider"])
def test_only_the_lead_moves_the_engagement(request, engagement, move, who, observer, colleague):
    actor = request.getfixturevalue(who)
    before = database_state()
    with pytest.raises(NotAllowed, match=f"may not {move} engagement"):
        MOVES[move](engagement=engagement, actor=actor)
    assert database_state() == before


def test_superuser_may_move_any_engagement(engagement):
    assert engagement_activate(engagement=engagement, actor=SuperUserFactory()).is_active


@pytest.mark.parametrize(
    "steps",
    [
        [],  # pending
        [workflow_run_queue],
        [workflow_run_start],
        [workflow_run_start, workflow_run_pause],
        [workflow_run_start, workflow_run_await_approval],
    ],
    ids=["pending", "queued", "running", "paused", "waiting_approval"],
)
def test_complete_is_refused_while_a_run_is_open(engagement, actuary, reviewer, steps):
    engagement = engagement_in("active", engagement, lead=actuary, reviewer=reviewer)
    # Only a run of a type the runner executes can be queued; others are started by hand.
    make_run = runnable_run_in if workflow_run_queue in steps else run_in
    run = make_run(engagement, actor=actuary)
    for step in steps:
        run = step(run=run, actor=actuary)
    before = database_state()

    with pytest.raises(Conflict, match=rf"1 workflow run\(s\) still open \({run.status}\)"):
        engagement_complete(engagement=engagement, actor=actuary)

    assert database_state() == before
    workflow_run_cancel(run=run, actor=actuary)
    assert engagement_complete(engagement=engagement, actor=actuary).status == "completed"


def test_finished_runs_do_not_hold_up_completion(engagement, actuary, reviewer):
    engagement = engagement_in("active", engagement, lead=actuary, reviewer=reviewer)
    workflow_run_cancel(run=run_in(engagement, actor=actuary), actor=actuary)
    assert engagement_complete(engagement=engagement, actor=actuary).status == "completed"
    assert WorkflowRun.objects.filter(engagement=engagement).count() == 1


@pytest.mark.parametrize("sign_off", ["none", "pending", "rejected", "other type approved"])
def test_complete_needs_an_approved_final_sign_off(engagement, actuary, reviewer, sign_off):
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    if sign_off == "pending":
        final_sign_off_request(engagement, requester=actuary)
    elif sign_off == "rejected":
        approval = final_sign_off_request(engagement, requester=actuary)
        approval_reject(
            approval=approval,
            actor=reviewer,
            reason="Tail factor unsupported",
            conflict_of_interest_statement=NO_CONFLICT,
        )
    elif sign_off == "other type approved":
        approval = approval_request(
            approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
        )
        approval_approve(
            approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )
    before = database_state()

    with pytest.raises(Conflict, match="has no approved final sign-off"):
        engagement_complete(engagement=engagement, actor=actuary)

    assert database_state() == before


@pytest.mark.parametrize("state", ["completed", "archived"])
def test_a_closed_engagement_accepts_no_new_runs_artefacts_or_approvals(
    engagement, actuary, reviewer, state
):
    engagement = engagement_in(state, engagement, lead=actuary, reviewer=reviewer)
    before = database_state()

    with pytest.raises(Conflict, match=rf"is {state}: it accepts no new workflow runs"):
        run_in(engagement, actor=actuary)
    with pytest.raises(Conflict, match=rf"is {state}: it accepts no new artefacts"):
        artefact_in(engagement, actor=actuary)
    with pytest.raises(Conflict, match=rf"is {state}: it accepts no new approvals"):
        approval_request(
            approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
        )

    assert database_state() == before


# --- delete -------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["draft", "cancelled"])
def test_delete_hides_a_draft_or_cancelled_engagement(engagement, actuary, reviewer, state):
    engagement = engagement_in(state, engagement, lead=actuary, reviewer=reviewer)
    mark = audit_mark()

    engagement_delete(engagement=engagement, actor=actuary)

    assert not Engagement.objects.filter(pk=engagement.pk).exists()
    stored = Engagement.all_objects.get(pk=engagement.pk)
    assert stored.is_deleted and stored.deleted_by == actuary
    assert stored.history.latest().history_change_reason == "Deleted"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.ENGAGEMENT_DELETE and event.user == actuary
    assert event.old_value["is_deleted"] is False and event.new_value["is_deleted"] is True


@pytest.mark.parametrize("state", ["active", "on_hold", "completed", "archived"])
def test_delete_refuses_work_under_way_or_finished(engagement, actuary, reviewer, state):
    engagement = engagement_in(state, engagement, lead=actuary, reviewer=reviewer)
    before = database_state()
    with pytest.raises(
        Conflict, match=rf"Cannot delete engagement .*: it is {state_words(state)} "
    ):
        engagement_delete(engagement=engagement, actor=actuary)
    assert database_state() == before


def test_delete_refuses_non_leads(engagement, reviewer):
    before = database_state()
    with pytest.raises(NotAllowed, match="may not delete engagement"):
        engagement_delete(engagement=engagement, actor=reviewer)
    assert database_state() == before


def test_a_deleted_engagement_can_no_longer_be_moved(engagement, actuary):
    engagement_delete(engagement=engagement, actor=actuary)
    with pytest.raises(Conflict, match="no longer exists"):
        engagement_activate(engagement=engagement, actor=actuary)


# --- team ---------------------------------------------------------------------------------


def test_lead_adds_changes_and_removes_a_member_with_permission_change_events(
    engagement, actuary, outsider
):
    mark = audit_mark()
    member = engagement_member_add(
        engagement=engagement, user=outsider, role=TeamRole.ACTUARY, actor=actuary
    )
    member = engagement_member_update(member=member, role=TeamRole.OBSERVER, actor=actuary)
    engagement_member_remove(member=member, actor=actuary)

    assert outsider.pk not in roles_of(engagement)
    added, changed, removed = audit_events_since(mark)
    assert {added.action, changed.action, removed.action} == {AuditAction.PERMISSION_CHANGE}
    assert all(e.user == actuary and e.engagement_id == engagement.pk for e in (added, changed))
    assert added.old_value is None
    assert added.new_value == {"user": outsider.pk, "role": "actuary"}
    assert changed.old_value == {"role": "actuary"} and changed.new_value == {"role": "observer"}
    assert removed.old_value == {"user": outsider.pk, "role": "observer"}
    assert removed.new_value is None and removed.resource_id == member.pk
    assert member.history.model.objects.filter(id=member.pk, history_type="-").get().history_user
    assert member.created_by == actuary


def test_team_refusals_change_nothing(engagement, actuary, reviewer, colleague, outsider):
    lead_member = EngagementMember.objects.get(engagement=engagement, user=actuary)
    reviewer_member = EngagementMember.objects.get(engagement=engagement, user=reviewer)
    colleague_member = EngagementMember.objects.get(engagement=engagement, user=colleague)
    before = database_state()

    cases = [
        (
            lambda: engagement_member_add(
                engagement=engagement, user=colleague, role="observer", actor=actuary
            ),
            Conflict,
            "colleague is already on the team .* \\(as actuary\\)",
        ),
        (
            lambda: engagement_member_add(
                engagement=engagement, user=outsider, role="lead", actor=actuary
            ),
            InvalidInput,
            "by naming them its lead actuary",
        ),
        (
            lambda: engagement_member_add(
                engagement=engagement, user=outsider, role="actuary", actor=colleague
            ),
            NotAllowed,
            "may not change the team of engagement",
        ),
        (
            lambda: engagement_member_update(member=lead_member, role="actuary", actor=actuary),
            Conflict,
            "they are its lead actuary",
        ),
        (
            lambda: engagement_member_update(
                member=reviewer_member, role="observer", actor=actuary
            ),
            Conflict,
            "they are its reviewer",
        ),
        (
            lambda: engagement_member_update(member=colleague_member, role="lead", actor=actuary),
            InvalidInput,
            "by naming them its lead actuary",
        ),
        (
            lambda: engagement_member_remove(member=lead_member, actor=actuary),
            Conflict,
            "Cannot remove actuary .*: they are its lead actuary",
        ),
        (
            lambda: engagement_member_remove(member=reviewer_member, actor=actuary),
            Conflict,
            "Cannot remove reviewer .*: they are its reviewer",
        ),
        (
            lambda: engagement_member_remove(member=colleague_member, actor=reviewer),
            NotAllowed,
            "their role on its team is reviewer, and this needs lead actuary",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()
    assert database_state() == before


# --- scoping helpers ----------------------------------------------------------------------


def test_engagements_visible_to_team_superusers_and_global_viewers(engagement, actuary, outsider):
    other = EngagementFactory()
    viewer = grant(UserFactory(username="auditor"), "engagements.view_all_engagements")

    assert list(engagements_visible_to(actuary)) == [engagement]
    assert list(engagements_visible_to(outsider)) == []
    assert set(engagements_visible_to(viewer)) == {engagement, other}
    assert set(engagements_visible_to(SuperUserFactory())) == {engagement, other}
    assert list(engagements_visible_to(None)) == []
    assert engagement_can_view(engagement=engagement, user=actuary)
    assert not engagement_can_view(engagement=engagement, user=outsider)
    assert engagement_can_view(engagement=other, user=viewer)


def test_scope_to_user_narrows_any_queryset_by_engagement(engagement, actuary, outsider):
    run = run_in(engagement, actor=actuary)
    WorkflowRun.objects.create(engagement=EngagementFactory(), workflow_type="custom", name="x")
    assert list(scope_to_user(WorkflowRun.objects.all(), actuary)) == [run]
    assert list(scope_to_user(WorkflowRun.objects.all(), outsider)) == []


def test_global_viewers_read_but_do_not_write(engagement):
    viewer = grant(UserFactory(username="auditor"), "engagements.view_all_engagements")
    with pytest.raises(NotAllowed, match=r"auditor may not work on engagement .*not on its team"):
        engagement_require_member(engagement=engagement, user=viewer)


def test_inactive_members_may_not_act(engagement, actuary):
    actuary.is_active = False
    actuary.save()
    with pytest.raises(NotAllowed, match="Sign in to work on engagement"):
        engagement_require_member(engagement=engagement, user=actuary)
