import datetime

import pytest
from django.db import IntegrityError, transaction

from engagements.models import Engagement, EngagementMember
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory
from tests.lifecycle import check_every_move

pytestmark = pytest.mark.django_db

STATES = ("draft", "active", "on_hold", "completed", "archived", "cancelled")
# The spec's lifecycle, written out independently of choices.py.
ALLOWED = {
    "activate": {"draft": "active", "on_hold": "active"},
    "hold": {"active": "on_hold"},
    "complete": {"active": "completed"},
    "archive": {"completed": "archived", "cancelled": "archived"},
    "cancel": {"draft": "cancelled", "active": "cancelled", "on_hold": "cancelled"},
}


def test_engagement_saves_and_reloads_with_defaults():
    engagement = Engagement.objects.create(client_code="ACME", client_name="Acme", name="IBNR")
    engagement = Engagement.objects.get(pk=engagement.pk)
    assert engagement.status == "draft"
    assert engagement.engagement_type == "other"
    assert engagement.config == {} and engagement.metadata == {}
    assert engagement.is_deleted is False
    assert engagement.created_at is not None and engagement.updated_at is not None
    assert engagement.id.version == 4


def test_json_defaults_are_not_shared():
    first = Engagement(client_code="A", client_name="A", name="A")
    second = Engagement(client_code="B", client_name="B", name="B")
    first.config["x"] = 1
    assert second.config == {}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("move", list(ALLOWED))
def test_engagement_lifecycle(state, move):
    engagement = EngagementFactory()
    check_every_move(
        engagement, state, move, ALLOWED[move].get(state), lambda e: getattr(e, move)()
    )


@pytest.mark.parametrize(
    ("status", "is_active", "is_editable"),
    [
        ("draft", False, True),
        ("active", True, True),
        ("on_hold", False, False),
        ("completed", False, False),
        ("archived", False, False),
        ("cancelled", False, False),
    ],
)
def test_engagement_state_properties(status, is_active, is_editable):
    engagement = EngagementFactory.build(status=status)
    assert engagement.is_active is is_active
    assert engagement.is_editable is is_editable


def test_period_end_before_start_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementFactory(
            period_start=datetime.date(2025, 12, 31), period_end=datetime.date(2025, 1, 1)
        )


def test_period_end_equal_to_start_is_accepted():
    day = datetime.date(2025, 6, 30)
    assert EngagementFactory(period_start=day, period_end=day).pk


def test_reviewer_equal_to_lead_is_refused_by_the_database():
    person = UserFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementFactory(lead_actuary=person, reviewer=person)


def test_team_member_is_unique_per_engagement():
    member = EngagementMemberFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementMember.objects.create(engagement=member.engagement, user=member.user)


def test_soft_delete_hides_from_objects_and_restore_brings_back(user):
    engagement = EngagementFactory()
    engagement.soft_delete(user)
    assert not Engagement.objects.filter(pk=engagement.pk).exists()
    deleted = Engagement.all_objects.get(pk=engagement.pk)
    assert deleted.is_deleted and deleted.deleted_by == user and deleted.deleted_at
    deleted.restore(user)
    assert Engagement.objects.filter(pk=engagement.pk).exists()


def test_history_records_the_acting_user(user):
    engagement = EngagementFactory()
    engagement.name = "Renamed"
    engagement._history_user = user
    engagement.save()
    latest = engagement.history.latest()
    assert latest.history_type == "~"
    assert latest.history_user == user
    assert latest.name == "Renamed"
    assert engagement.history.count() == 2


def test_membership_lists_the_user_in_members():
    member = EngagementMemberFactory(role="reviewer")
    assert list(member.engagement.members.all()) == [member.user]
    assert str(member).endswith("(Reviewer)")
