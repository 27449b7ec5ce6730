"""The data reliance register (ASOP 23) and what counts as an engagement's input data.

One entry per input artefact: provider, as-of date, checks (supported by a completed
data_validation run of that artefact), limitations, and a reason when the data was
not reviewed. A final sign-off is refused while input data has no entry. Services and API.
"""

import datetime

import pytest
from django.db import IntegrityError, transaction

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject, approval_request
from artefacts.choices import ArtefactType
from artefacts.models import DataReliance
from artefacts.selectors import engagement_input_data, engagement_input_data_without_reliance
from artefacts.services import (
    artefact_archive,
    artefact_create,
    artefact_delete,
    artefact_new_version,
    reliance_record,
    reliance_update,
)
from audit.choices import AuditAction
from engagements.services import engagement_activate
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
)
from tests.factories import DataRelianceFactory, UserFactory
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    completed_checklist,
    database_state,
    final_sign_off_request,
    record_reliances,
    run_in,
    runnable_run_in,
    upload,
)
from workflows.runner import execute_run
from workflows.services import workflow_run_cancel, workflow_run_queue

__all__ = ("api_client", "lead", "lead_client", "outsider", "outsider_client", "teammate")

pytestmark = pytest.mark.django_db

RELIANCES = f"{API}/data-reliances/"
AS_OF = datetime.date(2025, 12, 31)


@pytest.fixture
def triangle(engagement, actuary):
    return artefact_in(
        engagement, actor=actuary, name="Motor paid triangle", artefact_type=ArtefactType.TRIANGLE
    )


def stored(engagement, actor, artefact_type, file_name, content=b"a,b\n1,2\n", name=None):
    """Return an artefact of `artefact_type` uploaded from a file named `file_name`."""
    return artefact_create(
        engagement=engagement,
        upload=upload(content, name=file_name),
        actor=actor,
        name=name or file_name,
        artefact_type=artefact_type,
    )


def entry(artefact, actor, **fields):
    """Record a reviewed client entry for `artefact` (fields override)."""
    values = {
        "provider_type": "client",
        "provider_name": "Acme General Insurance plc",
        "data_as_of": AS_OF,
        "checks_performed": "Reconciled paid totals to the general ledger.",
        "reviewed": True,
    } | fields
    return reliance_record(artefact=artefact, actor=actor, **values)


def validation_run(engagement, actor, triangle):
    """Return a completed data_validation run of `triangle`, executed by the runner."""
    run = runnable_run_in(engagement, actor=actor, triangle=triangle)
    workflow_run_queue(run=run, actor=actor, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == "completed", run.error_message
    return run


# --- what counts as input data --------------------------------------------------------------


@pytest.mark.parametrize(
    ("artefact_type", "counted"),
    [
        ("triangle", True),
        ("data_file", True),
        ("csv", True),
        ("excel", True),
        ("report", False),
        ("other", False),
    ],
)
def test_uploaded_data_is_input_data(engagement, actuary, artefact_type, counted):
    file_name = {"excel": "data.xlsx", "report": "report.md"}.get(artefact_type, "data.csv")
    content = {"excel": _xlsx(), "report": b"# Report\n"}.get(artefact_type, b"a,b\n1,2\n")
    artefact = stored(engagement, actuary, artefact_type, file_name, content)
    assert (artefact in engagement_input_data(engagement)) is counted


def test_data_no_longer_in_use_is_not_input_data(engagement, actuary, triangle):
    newer = artefact_new_version(artefact=triangle, upload=upload(b"a,b\n1,3\n"), actor=actuary)
    archived = stored(engagement, actuary, "csv", "old.csv", b"x\n1\n")
    artefact_archive(artefact=archived, actor=actuary)
    deleted = stored(engagement, actuary, "csv", "wrong.csv", b"y\n2\n")
    artefact_delete(artefact=deleted, actor=actuary)
    assert list(engagement_input_data(engagement)) == [newer]


def test_results_of_runs_are_not_input_data_but_run_inputs_are(engagement, actuary, triangle):
    run = validation_run(engagement, actuary, triangle)
    [report] = run.artefacts.all()
    assert list(engagement_input_data(engagement)) == [triangle]
    assert report not in engagement_input_data(engagement)
    # A superseded version a run used is still relied on.
    newer = artefact_new_version(artefact=triangle, upload=upload(b"a,b\n1,3\n"), actor=actuary)
    assert set(engagement_input_data(engagement)) == {triangle, newer}


def test_inputs_of_failed_or_cancelled_runs_are_not_relied_on(engagement, actuary, triangle):
    run = runnable_run_in(engagement, actor=actuary, triangle=triangle)
    newer = artefact_new_version(artefact=triangle, upload=upload(b"a,b\n1,3\n"), actor=actuary)
    assert set(engagement_input_data(engagement)) == {triangle, newer}  # a pending run names it
    workflow_run_cancel(run=run, actor=actuary)
    assert list(engagement_input_data(engagement)) == [newer]


# --- recording and editing ------------------------------------------------------------------


def test_an_entry_is_recorded_on_record(engagement, actuary, triangle):
    mark = audit_mark()
    reliance = entry(triangle, actuary, known_limitations="2019 restated in 2021.")
    reliance.refresh_from_db()
    assert (reliance.engagement, reliance.artefact, reliance.created_by) == (
        engagement,
        triangle,
        actuary,
    )
    assert reliance.history.latest().history_change_reason == "Recorded"
    [event] = audit_events_since(mark)
    assert (event.action, event.user, event.engagement_id) == (
        AuditAction.DATA_RELIANCE_RECORD,
        actuary,
        engagement.pk,
    )
    assert event.new_value["provider_name"] == "Acme General Insurance plc"
    assert engagement_input_data_without_reliance(engagement) == []


def test_unreviewed_data_needs_a_reason(engagement, actuary, triangle):
    before = database_state()
    with pytest.raises(InvalidInput, match="Say why the data of “Motor paid triangle v1”") as error:
        entry(triangle, actuary, reviewed=False, not_reviewed_reason="  ")
    assert error.value.field == "not_reviewed_reason"
    assert database_state() == before
    reliance = entry(
        triangle, actuary, reviewed=False, not_reviewed_reason="Audited by the client's auditor."
    )
    assert reliance.not_reviewed_reason == "Audited by the client's auditor."


def test_the_database_refuses_unreviewed_data_without_a_reason(triangle):
    with pytest.raises(IntegrityError), transaction.atomic():
        DataRelianceFactory(artefact=triangle, reviewed=False, not_reviewed_reason="")


@pytest.mark.parametrize(
    ("case", "error", "field", "match"),
    [
        ("report", InvalidInput, "artefact", "is not input data of engagement"),
        ("twice", Conflict, None, "already has a data reliance entry"),
        ("observer", NotAllowed, None, "role on its team is observer"),
        ("wrong type", InvalidInput, "validation_run", "is a custom run"),
        ("not completed", InvalidInput, "validation_run", "is pending: only a completed run"),
    ],
)
def test_recording_refusals_change_nothing(
    engagement, actuary, triangle, case, error, field, match
):
    artefact, actor, extra = triangle, actuary, {}
    if case == "report":
        artefact = stored(engagement, actuary, "report", "report.md", b"# Report\n")
    elif case == "twice":
        entry(triangle, actuary)
    elif case == "observer":
        from tests.factories import EngagementMemberFactory

        actor = UserFactory(username="observer")
        EngagementMemberFactory(engagement=engagement, user=actor, role="observer")
    elif case == "wrong type":
        extra["validation_run"] = run_in(engagement, actor=actuary)
    elif case == "not completed":
        extra["validation_run"] = runnable_run_in(engagement, actor=actuary, triangle=triangle)
    before = database_state()
    with pytest.raises(error, match=match) as refusal:
        entry(artefact, actor, **extra)
    assert getattr(refusal.value, "field", None) == field
    assert database_state() == before


def test_the_checks_link_to_the_validation_run_of_that_artefact(engagement, actuary, triangle):
    run = validation_run(engagement, actuary, triangle)
    reliance = entry(triangle, actuary, validation_run=run)
    assert reliance.validation_run == run and run.supported_reliances.get() == reliance
    other = stored(engagement, actuary, "csv", "incurred.csv", b"x\n1\n", name="Incurred")
    with pytest.raises(InvalidInput, match="did not check artefact “Incurred v1”"):
        entry(other, actuary, validation_run=run)


def test_an_entry_is_edited_on_record(engagement, actuary, triangle):
    reliance = entry(triangle, actuary)
    mark = audit_mark()
    reliance = reliance_update(
        reliance=reliance,
        actor=actuary,
        data={
            "reviewed": False,
            "not_reviewed_reason": "No time before the board.",
            "provider_type": "third_party",
        },
    )
    reliance.refresh_from_db()
    assert (reliance.reviewed, reliance.provider_type) == (False, "third_party")
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.DATA_RELIANCE_UPDATE
    assert event.old_value == {
        "reviewed": True,
        "not_reviewed_reason": "",
        "provider_type": "client",
    }
    before = database_state()
    with pytest.raises(InvalidInput, match="Cannot change artefact of data reliance"):
        reliance_update(reliance=reliance, actor=actuary, data={"artefact": triangle})
    with pytest.raises(InvalidInput, match="Say why the data"):
        reliance_update(reliance=reliance, actor=actuary, data={"not_reviewed_reason": ""})
    assert database_state() == before


# --- the final sign-off rule ----------------------------------------------------------------


def test_final_sign_off_is_refused_while_input_data_has_no_entry(engagement, actuary, triangle):
    second = stored(engagement, actuary, "csv", "listing.csv", b"x\n1\n", name="Claims listing")
    before = database_state()
    with pytest.raises(
        Conflict,
        match=r"Cannot request a final sign-off of engagement .*: 2 input data artefact\(s\) "
        r"have no entry in the data reliance register: “Claims listing v1”, "
        r"“Motor paid triangle v1”\.",
    ):
        approval_request(
            approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=actuary
        )
    assert database_state() == before
    entry(triangle, actuary)
    with pytest.raises(Conflict, match=r"1 input data artefact\(s\) .*: “Claims listing v1”"):
        approval_request(
            approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=actuary
        )
    entry(second, actuary)
    completed_checklist(engagement)
    approval = approval_request(
        approval_type=ApprovalType.FINAL_SIGN_OFF, engagement=engagement, actor=actuary
    )
    assert approval.status == "pending"


def test_data_added_after_the_request_holds_up_the_approval_not_a_rejection(
    engagement, actuary, reviewer, triangle
):
    approval = final_sign_off_request(engagement, requester=actuary)
    late = stored(engagement, actuary, "csv", "late.csv", b"x\n1\n", name="Late extract")
    before = database_state()
    with pytest.raises(Conflict, match=r"Cannot approve a final sign-off .*: “Late extract v1”"):
        approval_approve(
            approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )
    assert database_state() == before
    # The reviewer may still say no, for that very reason.
    rejected = approval_reject(
        approval=approval,
        actor=reviewer,
        reason="unrecorded_data",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    assert rejected.status == "rejected"
    record_reliances(engagement, actor=actuary)
    assert late.data_reliance.provider_type == "client"


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api_triangle(engagement, lead):
    engagement_activate(engagement=engagement, actor=lead)
    return artefact_in(engagement, actor=lead, name="Motor paid triangle", artefact_type="triangle")


def test_api_records_lists_and_edits_entries(api_triangle, lead, lead_client):
    mark = audit_mark()
    response = lead_client.post(
        RELIANCES,
        {
            "artefact": str(api_triangle.pk),
            "provider_type": "third_party",
            "provider_name": "Industry data pool",
            "data_as_of": "2025-12-31",
            "checks_performed": "Totals agreed to the pool's published figures.",
            "reviewed": True,
        },
        headers={"X-Trace-Id": "agent-7"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["engagement"], body["trace_id"], body["created_by"]) == (
        str(api_triangle.engagement_id),
        "agent-7",
        lead.pk,
    )
    assert [e.action for e in audit_events_since(mark)] == [AuditAction.DATA_RELIANCE_RECORD]
    assert ids(lead_client.get(RELIANCES)) == {body["id"]}
    assert ids(lead_client.get(RELIANCES, {"provider_type": "client"})) == set()
    assert ids(lead_client.get(RELIANCES, {"artefact_id": str(api_triangle.pk)})) == {body["id"]}
    response = lead_client.patch(
        f"{RELIANCES}{body['id']}/", {"known_limitations": "Excludes large losses."}
    )
    assert response.json()["known_limitations"] == "Excludes large losses.", response.content
    refused = lead_client.patch(f"{RELIANCES}{body['id']}/", {"artefact": str(api_triangle.pk)})
    assert (
        "set when the object is created"
        in assert_error(refused, 400, "invalid")["errors"]["artefact"][0]
    )


def test_api_reports_a_missing_reason_under_its_field(api_triangle, lead_client):
    response = lead_client.post(
        RELIANCES,
        {
            "artefact": str(api_triangle.pk),
            "provider_type": "client",
            "provider_name": "Acme",
            "data_as_of": "2025-12-31",
            "reviewed": False,
        },
    )
    body = assert_error(response, 400, "invalid", match="Say why the data")
    assert body["errors"] == {"not_reviewed_reason": [body["detail"]]}
    assert not DataReliance.objects.exists()


def test_api_entries_are_scoped_and_need_permissions(
    engagement, api_triangle, lead, outsider_client, lead_client
):
    reliance = entry(api_triangle, lead)
    assert ids(outsider_client.get(RELIANCES)) == set()
    assert_error(outsider_client.get(f"{RELIANCES}{reliance.pk}/"), 404, "not_found")
    response = outsider_client.post(
        RELIANCES,
        {
            "artefact": str(api_triangle.pk),
            "provider_type": "client",
            "provider_name": "x",
            "data_as_of": "2025-01-01",
            "reviewed": True,
        },
    )
    assert "does not exist" in assert_error(response, 400, "invalid")["errors"]["artefact"][0]
    viewer = UserFactory(username="viewer")
    from tests.factories import EngagementMemberFactory

    EngagementMemberFactory(engagement=engagement, user=viewer, role="actuary")
    client = client_for(reader(viewer))
    assert client.get(f"{RELIANCES}{reliance.pk}/").status_code == 200
    response = client.patch(f"{RELIANCES}{reliance.pk}/", {"provider_name": "y"})
    assert_error(response, 403, "permission_denied")
    assert_error(lead_client.delete(f"{RELIANCES}{reliance.pk}/"), 405, "method_not_allowed")


def _xlsx() -> bytes:
    import io

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["origin", "development", "value"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
