"""Staff see only their engagements' objects everywhere in the admin; changelists stay cheap.

The staff user is a real actuary: staff, in the demo's Actuaries group, on one engagement
(the lead of `engagement`) and not on another (`outsider_engagement`).
"""

import json

import pytest
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.models import Approval, DisclosureChecklist, ReviewPoint
from approvals.services import approval_request, disclosure_checklist_prefill, review_point_raise
from artefacts.choices import ArtefactType
from artefacts.models import Artefact, DataReliance
from audit.choices import AuditAction, BackupType
from audit.models import AuditLog, Backup
from audit.services import audit_record
from conversations.models import ChatMessage, Session
from conversations.services import chat_message_add, session_create
from engagements.models import Engagement, EngagementMember
from engagements.services import engagement_activate
from tests.admin_fixtures import (
    actuaries_group,
    count_queries,
    lead,
    lead_client,
    outsider,
    outsider_engagement,
    qualified_reviewer,
)
from tests.factories import (
    BackupFactory,
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    RecoveryFactory,
    UserFactory,
)
from tests.factories.states import (
    admin_form_data,
    admin_messages,
    artefact_in,
    record_reliances,
    run_in,
)
from workflows.models import WorkflowRun

__all__ = (
    "actuaries_group",
    "lead",
    "lead_client",
    "outsider",
    "outsider_engagement",
    "qualified_reviewer",
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def mine(engagement, lead, qualified_reviewer, outsider_engagement):
    """The lead's active engagement with one of everything (the outsider's exists too)."""
    engagement = engagement_activate(engagement=engagement, actor=lead)
    run_in(engagement, actor=lead, name="My run")
    artefact = artefact_in(engagement, actor=lead, name="My triangle")
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=lead
    )
    review_point_raise(approval=approval, actor=qualified_reviewer, text="My review point")
    artefact_in(engagement, actor=lead, name="My claims data", artefact_type=ArtefactType.CSV)
    record_reliances(engagement, actor=lead)
    disclosure_checklist_prefill(engagement=engagement, actor=lead)
    session = session_create(actor=lead, engagement=engagement, title="My chat")
    chat_message_add(session=session, role="user", content="Mine", actor=lead)
    BackupFactory(name="my-backup", backup_type=BackupType.ENGAGEMENT, engagement=engagement)
    RecoveryFactory(
        name="my-recovery", engagement=engagement, backup=BackupFactory(engagement=engagement)
    )
    BackupFactory(
        name="their-backup", backup_type=BackupType.ENGAGEMENT, engagement=outsider_engagement
    )
    their_session = Session.objects.get(engagement=outsider_engagement)
    chat_message_add(session=their_session, role="user", content="Theirs", actor=their_session.user)
    return engagement


# (model, the rows of the outsider's engagement), for every model scoped by engagement.
SCOPED = {
    "engagements.engagement": lambda other: Engagement.objects.filter(pk=other.pk),
    "engagements.engagementmember": lambda other: EngagementMember.objects.filter(engagement=other),
    "workflows.workflowrun": lambda other: WorkflowRun.objects.filter(engagement=other),
    "artefacts.artefact": lambda other: Artefact.objects.filter(engagement=other),
    "approvals.approval": lambda other: Approval.objects.filter(engagement=other),
    "approvals.reviewpoint": lambda other: ReviewPoint.objects.filter(approval__engagement=other),
    "approvals.disclosurechecklist": lambda other: DisclosureChecklist.objects.filter(
        engagement=other
    ),
    "artefacts.datareliance": lambda other: DataReliance.objects.filter(engagement=other),
    "conversations.session": lambda other: Session.objects.filter(engagement=other),
    "conversations.chatmessage": lambda other: ChatMessage.objects.filter(
        session__engagement=other
    ),
    "audit.auditlog": lambda other: AuditLog.objects.filter(engagement_id=other.pk),
    "audit.backup": lambda other: Backup.objects.filter(engagement=other),
}


def _url(label, page, *args):
    app_label, model_name = label.split(".")
    return reverse(f"admin:{app_label}_{model_name}_{page}", args=args)


@pytest.mark.parametrize("label", sorted(SCOPED))
def test_changelists_list_only_my_engagements_rows(lead_client, mine, outsider_engagement, label):
    theirs = list(SCOPED[label](outsider_engagement))
    assert theirs, "the outsider's engagement has rows of every kind"
    response = lead_client.get(_url(label, "changelist"))
    assert response.status_code == 200
    listed = set(response.context["cl"].result_list)
    assert listed, "the lead's own rows are listed"
    assert not listed & set(theirs)


@pytest.mark.parametrize("label", sorted(SCOPED))
def test_another_teams_object_is_as_if_it_did_not_exist(
    lead_client, mine, outsider_engagement, label
):
    obj = SCOPED[label](outsider_engagement).first()
    response = lead_client.get(_url(label, "change", obj.pk))
    assert response.status_code == 302 and response.url == reverse("admin:index")
    [(level, text)] = admin_messages(response)
    assert level == "warning" and "doesn’t exist" in text
    assert str(obj) not in lead_client.get(response.url).content.decode()


@pytest.mark.parametrize("label", sorted(set(SCOPED) - {"audit.auditlog"}))
def test_another_teams_object_has_no_history_page(lead_client, mine, outsider_engagement, label):
    obj = SCOPED[label](outsider_engagement).first()
    response = lead_client.get(_url(label, "history", obj.pk))
    assert response.status_code == 302 and response.url == reverse("admin:index")
    record = obj.history.earliest()
    version = reverse(
        f"admin:{obj._meta.app_label}_{obj._meta.model_name}_simple_history",
        args=(obj.pk, record.history_id),
    )
    assert lead_client.get(version).status_code == 302


def test_their_timeline_and_files_are_refused(lead_client, mine, outsider_engagement):
    timeline = reverse("admin:audit_auditlog_timeline", args=(outsider_engagement.pk,))
    assert lead_client.get(timeline).status_code == 404
    artefact = outsider_engagement.outsider_artefact
    download = reverse("admin:artefacts_artefact_download", args=(artefact.pk,))
    response = lead_client.get(download)
    assert response.status_code == 302 and not response.has_header("Content-Disposition")
    move = reverse("admin:artefacts_artefact_move", args=(artefact.pk, "submit_for_review"))
    assert lead_client.post(move).status_code == 302
    artefact.refresh_from_db()
    assert artefact.status == "draft"


def _autocomplete(client, app_label, model_name, field_name, term=""):
    response = client.get(
        reverse("admin:autocomplete"),
        {"app_label": app_label, "model_name": model_name, "field_name": field_name, "term": term},
    )
    assert response.status_code == 200, response.content
    return {item["text"] for item in json.loads(response.content)["results"]}


@pytest.mark.parametrize(
    ("source", "mine_text", "their_text"),
    [
        (
            ("workflows", "workflowrun", "engagement"),
            "Year-end reserving",
            "Someone else's engagement",
        ),
        (("approvals", "approval", "workflow_run"), "My run", "Their run"),
        (("approvals", "approval", "artefact"), "My triangle v1", "Their triangle v1"),
        (("conversations", "chatmessage", "session"), "My chat", "Their chat"),
    ],
    ids=["engagement", "workflow_run", "artefact", "session"],
)
def test_autocompletes_offer_only_my_engagements_objects(
    lead_client, mine, source, mine_text, their_text
):
    texts = _autocomplete(lead_client, *source)
    assert any(mine_text in text for text in texts)
    assert not any(their_text in text for text in texts)


def test_the_user_autocomplete_offers_active_colleagues_and_team_approvers(
    lead_client, mine, lead, qualified_reviewer, outsider
):
    retired = UserFactory(username="retired", is_staff=True, is_active=False)
    assert "retired" not in _autocomplete(lead_client, "engagements", "engagement", "reviewer")
    # Anyone active may join a team or lead an engagement ...
    assert {"outsider", "reviewer"} <= _autocomplete(
        lead_client, "engagements", "engagementmember", "user"
    )
    # ... but a designated approver must be on one of my engagements' teams.
    approvers = _autocomplete(lead_client, "approvals", "approval", "designated_approver")
    assert "reviewer" in approvers and "outsider" not in approvers
    assert retired.username not in approvers


def test_list_filters_offer_only_my_engagements(lead_client, mine, outsider_engagement):
    for label in (
        "workflows.workflowrun",
        "artefacts.artefact",
        "audit.auditlog",
        "approvals.reviewpoint",
        "approvals.disclosurechecklist",
        "artefacts.datareliance",
    ):
        response = lead_client.get(_url(label, "changelist"))
        [engagement_filter] = [
            spec for spec in response.context["cl"].filter_specs if spec.title == "engagement"
        ]
        offered = {value for value, _label in engagement_filter.lookup_choices}
        assert offered == {str(mine.pk)}, label
        filtered = lead_client.get(
            _url(label, "changelist"), {"engagement_id": str(outsider_engagement.pk)}
        )
        assert list(filtered.context["cl"].result_list) == []


def test_a_hand_typed_id_of_their_engagement_is_not_a_valid_choice(
    lead_client, mine, outsider_engagement
):
    add = reverse("admin:workflows_workflowrun_add")
    data = admin_form_data(lead_client.get(add)) | {
        "engagement": outsider_engagement.pk,
        "workflow_type": "custom",
        "name": "Sneaky",
        "input_params": "{}",
        "step_count": "0",
    }
    response = lead_client.post(add, data)
    assert response.status_code == 200
    assert "engagement" in response.context["adminform"].form.errors
    assert not WorkflowRun.objects.filter(name="Sneaky").exists()


def test_the_engagement_page_inlines_hold_only_its_rows(lead_client, mine, outsider_engagement):
    response = lead_client.get(_url("engagements.engagement", "change", mine.pk))
    html = response.content.decode()
    assert "My run" in html and "My triangle" in html and "My claims data" in html
    assert "Their run" not in html and "Their triangle" not in html
    assert "Their claims data" not in html


def test_their_review_points_cannot_be_moved(lead_client, mine, outsider_engagement):
    point = ReviewPoint.objects.get(approval__engagement=outsider_engagement)
    move = reverse("admin:approvals_reviewpoint_move", args=(point.pk, "respond"))
    response = lead_client.post(move, {"response": "Sneaky answer"})
    assert response.status_code == 302 and response.url == reverse("admin:index")
    point.refresh_from_db()
    assert (point.status, point.response) == ("open", "")


def test_their_checklist_cannot_be_completed_and_their_data_not_recorded(
    lead_client, mine, outsider_engagement
):
    checklist = DisclosureChecklist.objects.get(engagement=outsider_engagement)
    move = reverse("admin:approvals_disclosurechecklist_move", args=(checklist.pk, "complete"))
    assert lead_client.post(move).status_code == 302
    checklist.refresh_from_db()
    assert checklist.status == "draft"
    # Their input data is no valid choice of the register's add form.
    their_data = DataReliance.objects.get(engagement=outsider_engagement).artefact
    add = reverse("admin:artefacts_datareliance_add")
    response = lead_client.get(add, {"artefact": their_data.pk})
    assert their_data not in response.context["adminform"].form.fields["artefact"].queryset


def test_the_audit_log_shows_my_engagements_events_and_my_own(
    lead_client, lead, mine, outsider_engagement, outsider
):
    audit_record(action=AuditAction.LOGIN, resource_type="user", user=lead)
    audit_record(action=AuditAction.LOGIN, resource_type="user", user=outsider)
    listed = lead_client.get(_url("audit.auditlog", "changelist")).context["cl"].result_list
    assert {event.action for event in listed if event.engagement_id is None} == {"login"}
    assert all(event.user != outsider or event.engagement_id == mine.pk for event in listed)


def test_superusers_still_see_everything(admin_client, mine, outsider_engagement):
    response = admin_client.get(_url("engagements.engagement", "changelist"))
    assert set(response.context["cl"].result_list) == {mine, outsider_engagement}


# --- changelists cost the same whatever their size ----------------------------------------


def _grow(engagement, lead, count):
    """Add `count` rows of every kind to the engagement (through the services)."""
    for number in range(count):
        run_in(engagement, actor=lead, name=f"Run {number}")
        artefact = artefact_in(
            engagement, actor=lead, name=f"Triangle {number}", content=f"v,{number}\n".encode()
        )
        approval = approval_request(
            approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=lead
        )
        review_point_raise(approval=approval, actor=engagement.reviewer, text=f"Point {number}")
        artefact_in(
            engagement,
            actor=lead,
            name=f"Claims data {number}",
            content=f"claim,paid\n{number},1\n".encode(),
            artefact_type=ArtefactType.CSV,
        )
        session = session_create(actor=lead, engagement=engagement, title=f"Chat {number}")
        chat_message_add(session=session, role="user", content=f"Q{number}", actor=lead)
        member = UserFactory(is_staff=True)
        EngagementMemberFactory(engagement=engagement, user=member, role="observer")
        ProfessionalQualificationFactory(user=member)
        other = EngagementFactory(lead_actuary=lead, reviewer=member)
        EngagementMemberFactory(engagement=other, user=lead, role="lead")
        disclosure_checklist_prefill(engagement=other, actor=lead)
        BackupFactory(engagement=engagement)
        RecoveryFactory(engagement=engagement, backup=BackupFactory(engagement=engagement))
        audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=engagement, user=lead)
    record_reliances(engagement, actor=lead)


CHANGELISTS = (
    "engagements.engagement",
    "engagements.engagementmember",
    "workflows.workflowrun",
    "artefacts.artefact",
    "approvals.approval",
    "approvals.professionalqualification",
    "approvals.reviewpoint",
    "approvals.disclosurechecklist",
    "artefacts.datareliance",
    "conversations.session",
    "conversations.chatmessage",
    "audit.auditlog",
    "audit.backup",
    "audit.recovery",
    "auth.user",
)


@pytest.mark.parametrize("as_superuser", [False, True], ids=["staff", "superuser"])
def test_no_changelist_queries_grow_with_its_rows(client, admin_user, lead, mine, as_superuser):
    client.force_login(admin_user if as_superuser else lead)
    _grow(mine, lead, 5)
    few = {label: count_queries(client, _url(label, "changelist"))[0] for label in CHANGELISTS}
    _grow(mine, lead, 45)
    for label in CHANGELISTS:
        many, response = count_queries(client, _url(label, "changelist"))
        assert response.context["cl"].result_count >= 5, label
        assert many == few[label], f"{label}: {few[label]} queries with 5 rows, {many} with 50"


def test_the_audit_log_is_never_counted_in_full(lead_client, mine, django_assert_max_num_queries):
    _grow(mine, mine.lead_actuary, 3)
    # The page names its resources and engagements: one query per kind of resource on it
    # (at most one per model), however many rows.
    with django_assert_max_num_queries(25):
        response = lead_client.get(_url("audit.auditlog", "changelist"))
    assert response.context["cl"].show_full_result_count is False


def test_the_engagement_page_costs_the_same_with_many_rows(lead_client, lead, mine):
    url = _url("engagements.engagement", "change", mine.pk)
    _grow(mine, lead, 3)
    few, _ = count_queries(lead_client, url)
    _grow(mine, lead, 12)
    many, response = count_queries(lead_client, url)
    assert len(response.context["inline_admin_formsets"][1].formset.forms) == 16
    assert many == few, f"{few} queries with 4 rows of each kind, {many} with 16"
