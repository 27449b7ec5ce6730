"""Serializers of engagements, their team members and the users list."""

from operator import attrgetter

from django.contrib.auth import get_user_model
from rest_framework import serializers

from records.api.lean import LeanListSerializer
from records.api.serializers import (
    ActiveUserField,
    AvailableMovesField,
    JSONObjectField,
    RecordSerializer,
    VisiblePrimaryKeyRelatedField,
)

from ..models import Engagement, EngagementMember

AUDIT_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")
# Where a lean list keeps each engagement's team, read for the whole page.
LEAN_TEAM = "_lean_team"


class TeamListSerializer(serializers.ListSerializer):
    """An engagement's team; in a lean list, the values `EngagementSerializer.lean_prepare` read."""

    def lean_getter(self):
        """Return a row's team as prepared for the page (records.api.lean)."""
        return attrgetter(LEAN_TEAM)


class TeamMemberSummarySerializer(serializers.ModelSerializer):
    """A team member as shown inside an engagement: who, and in which role."""

    # The field, not get_username(): DRF inspects a method's signature on every row.
    username = serializers.CharField(
        source=f"user.{get_user_model().USERNAME_FIELD}", read_only=True
    )

    class Meta:
        model = EngagementMember
        fields = ("id", "user", "username", "role")
        read_only_fields = fields
        list_serializer_class = TeamListSerializer


class EngagementSerializer(RecordSerializer):
    """An engagement; its status changes only through the transition actions."""

    lead_actuary = ActiveUserField(
        required=False,
        allow_null=True,
        help_text="User id of the lead actuary (put on the team as lead). Defaults to you "
        "when creating, so the engagement you open is on your team.",
    )
    reviewer = ActiveUserField(
        required=False,
        allow_null=True,
        help_text="User id of the reviewer (put on the team); never the lead actuary.",
    )
    config = JSONObjectField(required=False, help_text="Engagement settings (a JSON object).")
    metadata = JSONObjectField(required=False, help_text="Tags and custom fields (a JSON object).")
    team = TeamMemberSummarySerializer(many=True, read_only=True)
    available_moves = AvailableMovesField(
        help_text="The transition actions allowed from the current status, computed by the "
        "server. complete is also checked against the engagement's work when you call it "
        "(409 while a run is open or before the final sign-off is approved).",
    )

    class Meta:
        # Lists are read lean (records.api.lean): the same JSON, a fraction of the CPU.
        list_serializer_class = LeanListSerializer
        model = Engagement
        fields = (
            "id",
            "client_code",
            "client_name",
            "name",
            "description",
            "engagement_type",
            "status",
            "period_start",
            "period_end",
            "due_date",
            "lead_actuary",
            "reviewer",
            "config",
            "metadata",
            "team",
            "is_active",
            "is_editable",
            "available_moves",
            *AUDIT_FIELDS,
        )
        read_only_fields = ("id", "status", "is_active", "is_editable", *AUDIT_FIELDS)

    def lean_prepare(self, rows) -> None:
        """Read the teams of a page of engagements in one query, as values (a lean list).

        Written as TeamMemberSummarySerializer writes a member, in the team's order
        (tests/test_api_lean_lists.py holds them to it); no member or user objects.
        """
        teams = {row.pk: [] for row in rows}
        username = f"user__{get_user_model().USERNAME_FIELD}"
        # The team's order (role, then user) within each engagement, without joining the
        # engagements table only to sort by it: the pages group the rows themselves.
        members = (
            EngagementMember.objects.filter(engagement_id__in=teams)
            .order_by("engagement_id", "role", "user_id")
            .values_list("engagement_id", "id", "user_id", username, "role")
        )
        for engagement_id, pk, user_id, name, role in members:
            teams[engagement_id].append(
                {"id": str(pk), "user": user_id, "username": str(name), "role": role}
            )
        for row in rows:
            setattr(row, LEAN_TEAM, teams[row.pk])


class EngagementMemberSerializer(RecordSerializer):
    """A user on an engagement's team; only the role changes afterwards."""

    engagement = VisiblePrimaryKeyRelatedField(
        queryset=Engagement.objects.all(),
        engagement_path="",
        help_text="Id of the engagement (one you are on). Set on creation only.",
    )
    user = ActiveUserField(help_text="Id of the user to add. Set on creation only.")
    username = serializers.CharField(source="user.get_username", read_only=True)

    class Meta:
        model = EngagementMember
        fields = ("id", "engagement", "user", "username", "role", *AUDIT_FIELDS)
        read_only_fields = ("id", *AUDIT_FIELDS)
        create_only_fields = ("engagement", "user")


class UserSerializer(serializers.ModelSerializer):
    """A user as others see them when picking approvers and team members."""

    full_name = serializers.CharField(source="get_full_name", read_only=True)

    class Meta:
        model = get_user_model()
        fields = ("id", "username", "full_name", "is_active")
        read_only_fields = fields
