"""The disclosure checklist of a final sign-off (ASOP 41): pre-filled, completed, frozen.

Pre-filled from what the system holds (responsible actuary, information date, the data
reliance register, material changes from the previous engagement of the same client
and type), completed by the lead actuary only, required by a final sign-off and
frozen into it: later edits never change the copy that was signed off. Services and API.
"""

import datetime

import pytest
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from approvals.choices import ApprovalType
from approvals.models import DisclosureChecklist
from approvals.services import (
    approval_approve,
    approval_request,
    approval_update,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
    disclosure_checklist_update,
)
from artefacts.choices import ArtefactType
from artefacts.services import artefact_create, reliance_update
from audit.choices import AuditAction
from engagements.services import engagement_activate, engagement_complete
from records.exceptions import Conflict, InvalidInput, NotAllowed
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    ids,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
    teammate,
    teammate_client,
)
from tests.factories import (
    DisclosureChecklistFactory,
    EngagementFactory,
    EngagementMemberFactory,
    SuperUserFactory,
)
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    completed_checklist,
    database_state,
    final_sign_off,
    record_reliances,
)
from tests.workflows.conftest import reserving_params, sample_csv
from workflows.choices import WorkflowType
from workflows.runner import execute_run
from workflows.services import workflow_run_create, workflow_run_queue

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

CHECKLISTS = f"{API}/disclosure-checklists/"
AS_OF = datetime.date(2025, 11, 30)


def prefill(engagement):
    return disclosure_checklist_prefill(engagement=engagement, actor=engagement.lead_actuary)


def request_final(engagement, actor):
    return approval_request(
        approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=actor
    )


@pytest.fixture
def triangle(engagement, actuary):
    return artefact_in(engagement, actor=actuary, name="Motor triangle", artefact_type="triangle")


@pytest.fixture
def relied_on(triangle, actuary):
    """The triangle with its data reliance entry (data as of 30 November 2025)."""
    from artefacts.services import reliance_record

    reliance_record(
        artefact=triangle,
        actor=actuary,
        provider_type="client",
        provider_name="Acme",
        data_as_of=AS_OF,
        reviewed=True,
    )
    return triangle


# --- prefill --------------------------------------------------------------------------------


def test_prefill_fills_the_checklist_from_what_the_system_holds(engagement, actuary, relied_on):
    mark = audit_mark()
    checklist = prefill(engagement)
    checklist.refresh_from_db()
    assert (checklist.status, checklist.responsible_actuary, checklist.information_date) == (
        "draft",
        actuary,
        AS_OF,
    )
    [reliance] = checklist.reliances
    assert (reliance["artefact"], reliance["provider_name"], reliance["data_as_of"]) == (
        "Motor triangle",
        "Acme",
        "2025-11-30",
    )
    assert reliance["content_hash"] == relied_on.content_hash
    assert checklist.previous_engagement is None
    assert checklist.material_changes == (
        f"No previous completed reserving engagement of client {engagement.client_code} is on "
        "record: there are no changes from a previous engagement to disclose."
    )
    assert checklist.history.latest().history_change_reason == "Pre-filled"
    [event] = audit_events_since(mark)
    assert (event.action, event.user, event.engagement_id) == (
        AuditAction.DISCLOSURE_CHECKLIST_UPDATE,
        actuary,
        engagement.pk,
    )


def test_prefill_again_keeps_what_people_wrote_and_refreshes_the_register(
    engagement, actuary, relied_on
):
    checklist = prefill(engagement)
    disclosure_checklist_update(
        checklist=checklist,
        actor=actuary,
        data={"material_changes": "Tail factor changed.", "other_disclosures": "None."},
    )
    reliance_update(
        reliance=relied_on.data_reliance, actor=actuary, data={"provider_name": "Acme plc"}
    )
    again = prefill(engagement)
    assert again.pk == checklist.pk
    assert (again.material_changes, again.other_disclosures) == ("Tail factor changed.", "None.")
    assert again.reliances[0]["provider_name"] == "Acme plc"


def test_the_information_date_falls_back_to_the_period_end(engagement):
    assert prefill(engagement).information_date == engagement.period_end


def test_prefill_finds_the_previous_engagement_and_its_figures(engagement, actuary, reviewer):
    previous = EngagementFactory(
        client_code=engagement.client_code,
        engagement_type=engagement.engagement_type,
        name="FY2024 reserve review",
        period_start=datetime.date(2024, 1, 1),
        period_end=datetime.date(2024, 12, 31),
        lead_actuary=actuary,
        reviewer=reviewer,
    )
    EngagementMemberFactory(engagement=previous, user=actuary, role="lead")
    EngagementMemberFactory(engagement=previous, user=reviewer, role="reviewer")
    # An engagement of another type of the same client is no comparison.
    EngagementFactory(client_code=engagement.client_code, engagement_type="ifrs17")
    engagement_activate(engagement=previous, actor=actuary)
    before = approved_reserves(previous, actuary, reviewer)
    final_sign_off(previous, requester=actuary, approver=reviewer)
    engagement_complete(engagement=previous, actor=actuary)

    engagement_activate(engagement=engagement, actor=actuary)
    now = approved_reserves(engagement, actuary, reviewer, tail_factor=1.05)
    record_reliances(engagement, actor=actuary)

    checklist = prefill(engagement)

    assert checklist.previous_engagement == previous
    [row] = checklist.comparison["results"]
    assert row["key"] == "reserve_calculation:paid"
    assert row["previous"]["totals"]["ibnr"] == pytest.approx(52_135, abs=1)
    assert row["previous"]["totals"] == pytest.approx(
        {key: before["totals"][key] for key in ("ibnr", "ultimate", "latest", "mack_se")}
    )
    assert row["current"]["totals"]["ibnr"] == pytest.approx(now["totals"]["ibnr"])
    assert row["previous"]["assumptions"] == {"average": "volume", "tail_factor": None}
    assert row["current"]["assumptions"] == {"average": "volume", "tail_factor": 1.05}
    ibnr_before, ibnr_now = before["totals"]["ibnr"], now["totals"]["ibnr"]
    header, line = checklist.material_changes.split("\n")
    assert header == (
        f"Compared with the previous engagement “{previous}” (period 2024-01-01 to 2024-12-31):"
    )
    assert line.startswith(
        f"- Reserve calculation (paid): IBNR {ibnr_before:,.0f} → {ibnr_now:,.0f} "
        f"({(ibnr_now - ibnr_before) / ibnr_before:+.1%}); ultimate "
    )
    assert f"latest {before['totals']['latest']:,.0f} → {now['totals']['latest']:,.0f}" in line
    assert line.endswith("average volume → volume; tail factor none → 1.05 (changed).")


def approved_reserves(engagement, actuary, reviewer, **options):
    """Run chain ladder on RAA in the engagement, approve it, return its output summary."""
    triangle = artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_csv("raa"), name="raa.csv"),
        actor=actuary,
        name="RAA",
        artefact_type=ArtefactType.TRIANGLE,
    )
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name="Chain ladder RAA",
        input_params=reserving_params(triangle, allow_negative_development=True, **options),
        actor=actuary,
    )
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    approval_approve(
        approval=run.approvals.get(), actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
    )
    run.refresh_from_db()
    assert run.status == "completed"
    return run.output_summary


# --- complete -------------------------------------------------------------------------------


def test_the_lead_actuary_completes_the_checklist(engagement, actuary, relied_on):
    checklist = prefill(engagement)
    mark = audit_mark()
    checklist = disclosure_checklist_complete(checklist=checklist, actor=actuary)
    checklist.refresh_from_db()
    assert (checklist.status, checklist.completed_by) == ("completed", actuary)
    assert checklist.completed_at is not None
    [event] = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.DISCLOSURE_CHECKLIST_COMPLETE, actuary)


@pytest.mark.parametrize("who", ["reviewer", "superuser"])
def test_only_the_lead_actuary_completes_it(request, engagement, relied_on, who):
    actor = SuperUserFactory() if who == "superuser" else request.getfixturevalue(who)
    checklist = prefill(engagement)
    before = database_state()
    with pytest.raises(NotAllowed, match=r"only the engagement's lead actuary .* completes it"):
        disclosure_checklist_complete(checklist=checklist, actor=actor)
    assert database_state() == before


def test_completing_needs_the_information_date_and_the_whole_register(
    engagement, actuary, triangle
):
    engagement.period_end = None
    engagement.save()
    checklist = prefill(engagement)
    with pytest.raises(InvalidInput, match="the information date is required") as refusal:
        disclosure_checklist_complete(checklist=checklist, actor=actuary)
    assert refusal.value.field == "information_date"
    checklist = disclosure_checklist_update(
        checklist=checklist, actor=actuary, data={"information_date": AS_OF}
    )
    before = database_state()
    with pytest.raises(Conflict, match="no entry in the data reliance register: “Motor triangle"):
        disclosure_checklist_complete(checklist=checklist, actor=actuary)
    assert database_state() == before


def test_editing_a_completed_checklist_sends_it_back_to_draft(engagement, actuary, relied_on):
    checklist = completed_checklist(engagement)
    checklist = disclosure_checklist_update(
        checklist=checklist, actor=actuary, data={"other_disclosures": "Going concern."}
    )
    assert (checklist.status, checklist.completed_by, checklist.completed_at) == (
        "draft",
        None,
        None,
    )


def test_the_responsible_actuary_is_on_the_team(engagement, actuary, relied_on):
    from tests.factories import UserFactory

    checklist = prefill(engagement)
    with pytest.raises(NotAllowed, match="may not be the responsible actuary of engagement"):
        disclosure_checklist_update(
            checklist=checklist, actor=actuary, data={"responsible_actuary": UserFactory()}
        )


# --- the final sign-off rule and the frozen copy ---------------------------------------------


def test_final_sign_off_is_refused_without_a_completed_checklist(engagement, actuary, relied_on):
    before = database_state()
    with pytest.raises(Conflict, match="it has no disclosure checklist"):
        request_final(engagement, actuary)
    prefill(engagement)
    before = database_state()
    with pytest.raises(Conflict, match="its disclosure checklist is a draft"):
        request_final(engagement, actuary)
    assert database_state() == before


def test_final_sign_off_is_refused_when_the_register_changed_since_completion(
    engagement, actuary, relied_on
):
    completed_checklist(engagement)
    reliance_update(
        reliance=relied_on.data_reliance, actor=actuary, data={"known_limitations": "Restated."}
    )
    with pytest.raises(Conflict, match="the data reliance register changed since"):
        request_final(engagement, actuary)


def test_the_checklist_is_frozen_into_the_final_sign_off(engagement, actuary, reviewer, relied_on):
    checklist = completed_checklist(engagement)
    mark = audit_mark()
    approval = request_final(engagement, actuary)
    checklist.refresh_from_db()
    assert approval.disclosures == checklist.snapshot()
    assert approval.disclosures["reliances"][0]["artefact"] == "Motor triangle"
    assert approval.disclosures["responsible_actuary"]["username"] == "actuary"
    assert (checklist.frozen_into, checklist.is_frozen) == (approval, True)
    assert checklist.history.latest().history_change_reason == "Frozen into final sign-off"
    [event] = audit_events_since(mark)
    assert event.metadata["disclosure_checklist"] == str(checklist.pk)
    frozen = dict(approval.disclosures)

    # The checklist is locked; a new one may be prepared, and changing it changes nothing.
    before = database_state()
    with pytest.raises(Conflict, match=r"it was frozen into final sign-off .* and is locked"):
        disclosure_checklist_update(
            checklist=checklist, actor=actuary, data={"other_disclosures": "Changed"}
        )
    with pytest.raises(Conflict, match="Cannot pre-fill disclosure checklist"):
        disclosure_checklist_prefill(checklist=checklist, actor=actuary)
    with pytest.raises(Conflict, match="Cannot complete disclosure checklist"):
        disclosure_checklist_complete(checklist=checklist, actor=actuary)
    assert database_state() == before
    successor = prefill(engagement)
    assert successor.pk != checklist.pk and successor.status == "draft"
    disclosure_checklist_update(
        checklist=successor, actor=actuary, data={"other_disclosures": "Something new"}
    )
    approval.refresh_from_db()
    assert approval.disclosures == frozen
    # Nor does the requester's edit of the pending approval reach it.
    with pytest.raises(InvalidInput, match="Cannot change disclosures of approval"):
        approval_update(approval=approval, actor=actuary, data={"disclosures": {}})
    assert (
        approval_approve(
            approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        ).disclosures
        == frozen
    )


def test_an_engagement_has_one_open_checklist(engagement):
    DisclosureChecklistFactory(engagement=engagement)
    with pytest.raises(IntegrityError), transaction.atomic():
        DisclosureChecklist.objects.create(engagement=engagement)


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api_engagement(engagement, lead):
    """The engagement, active, with a relied-on triangle uploaded by the lead."""
    from tests.factories.states import record_reliances

    engagement_activate(engagement=engagement, actor=lead)
    artefact_in(engagement, actor=lead, name="Motor triangle", artefact_type="triangle")
    record_reliances(engagement, actor=lead)
    return engagement


def test_api_prefill_edit_and_complete(api_engagement, lead, lead_client):
    response = lead_client.post(CHECKLISTS, {"engagement": str(api_engagement.pk)})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["responsible_actuary"], body["available_moves"]) == (
        "draft",
        lead.pk,
        ["complete"],
    )
    url = f"{CHECKLISTS}{body['id']}/"
    assert lead_client.post(CHECKLISTS, {"engagement": str(api_engagement.pk)}).status_code == 200
    response = lead_client.patch(url, {"other_disclosures": "No going-concern doubts."})
    assert response.json()["other_disclosures"] == "No going-concern doubts.", response.content
    refused = lead_client.patch(url, {"reliances": []})
    assert set(assert_error(refused, 400, "invalid")["errors"]) == {"reliances"}
    response = lead_client.post(f"{url}prefill/")
    assert response.status_code == 200, response.content
    response = lead_client.post(f"{url}complete/")
    assert response.json()["status"] == "completed", response.content
    assert_error(lead_client.post(f"{url}complete/"), 409, "invalid_transition")


def test_api_only_the_lead_completes(api_engagement, teammate_client, lead):
    checklist = prefill(api_engagement)
    response = teammate_client.post(f"{CHECKLISTS}{checklist.pk}/complete/")
    assert_error(response, 403, "not_allowed", match="only the engagement's lead actuary")


def test_api_final_sign_off_without_checklist_is_409(api_engagement, lead_client):
    response = lead_client.post(
        f"{API}/approvals/",
        {"approval_type": "final_sign_off", "engagement": str(api_engagement.pk)},
    )
    assert_error(response, 409, "conflict", match="it has no disclosure checklist")


def test_api_a_frozen_checklist_is_409(api_engagement, lead, lead_client):
    checklist = completed_checklist(api_engagement)
    approval = request_final(api_engagement, lead)
    response = lead_client.get(f"{API}/approvals/{approval.pk}/")
    assert response.json()["disclosures"]["checklist_id"] == str(checklist.pk)
    url = f"{CHECKLISTS}{checklist.pk}/"
    assert_error(lead_client.patch(url, {"other_disclosures": "x"}), 409, "conflict")
    assert_error(lead_client.post(f"{url}prefill/"), 409, "conflict", match="is locked")
    assert ids(lead_client.get(CHECKLISTS, {"frozen": "true"})) == {str(checklist.pk)}
    assert ids(lead_client.get(CHECKLISTS, {"frozen": "false"})) == set()


def test_api_checklists_are_scoped_and_need_permissions(api_engagement, outsider_client, teammate):
    checklist = prefill(api_engagement)
    assert ids(outsider_client.get(CHECKLISTS)) == set()
    assert_error(outsider_client.get(f"{CHECKLISTS}{checklist.pk}/"), 404, "not_found")
    assert_error(outsider_client.post(f"{CHECKLISTS}{checklist.pk}/complete/"), 404, "not_found")
    response = outsider_client.post(CHECKLISTS, {"engagement": str(api_engagement.pk)})
    assert "does not exist" in assert_error(response, 400, "invalid")["errors"]["engagement"][0]
    viewer = client_for(reader(teammate.__class__.objects.create(username="viewer")))
    assert_error(viewer.get(f"{CHECKLISTS}{checklist.pk}/"), 404, "not_found")
    EngagementMemberFactory(engagement=api_engagement, user=viewer.user, role="actuary")
    assert viewer.get(f"{CHECKLISTS}{checklist.pk}/").status_code == 200
    assert_error(viewer.patch(f"{CHECKLISTS}{checklist.pk}/", {}), 403, "permission_denied")
