"""Independence from the lineage (APS X2): nobody decides on work they took part in.

The lineage of an approval is its artefact and every earlier version, the runs that
produced them, those runs' input artefacts (as the runner recorded them) and so on.
Whoever uploaded, created, queued or started any of it may not decide; the refusal
names the item. Services and API.
"""

import pytest
from django.core.files.base import ContentFile

from approvals.choices import ApprovalType
from approvals.lineage import approval_lineage, lineage_conflict, lineage_people
from approvals.services import approval_approve, approval_reject, approval_request
from artefacts.choices import ArtefactType
from artefacts.services import artefact_create, artefact_new_version
from engagements.choices import TeamRole
from records.exceptions import NotAllowed
from tests.api_fixtures import API, assert_error, client_for, worker
from tests.factories import EngagementMemberFactory, ProfessionalQualificationFactory, UserFactory
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    database_state,
    run_in,
    runnable_run_in,
    upload,
)
from tests.workflows.conftest import reserving_params, sample_csv
from workflows.choices import WorkflowType
from workflows.runner import execute_run
from workflows.services import workflow_run_create, workflow_run_queue, workflow_run_start

pytestmark = pytest.mark.django_db

REVIEW = ApprovalType.ARTEFACT_REVIEW
WORKFLOW = ApprovalType.WORKFLOW_APPROVAL


@pytest.fixture
def peer(engagement):
    """A qualified reviewer on the team who took no part in anything."""
    peer = UserFactory(username="peer")
    ProfessionalQualificationFactory(user=peer, designation="FSA", issuing_body="SOA")
    EngagementMemberFactory(engagement=engagement, user=peer, role=TeamRole.REVIEWER)
    return peer


@pytest.fixture
def raa(engagement, actuary):
    """The RAA triangle, uploaded by the lead actuary."""
    return artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_csv("raa"), name="raa.csv"),
        actor=actuary,
        name="RAA",
        artefact_type=ArtefactType.TRIANGLE,
    )


def decide(approval, move, actor):
    if move == "approve":
        return approval_approve(
            approval=approval, actor=actor, conflict_of_interest_statement=NO_CONFLICT
        )
    return approval_reject(
        approval=approval, actor=actor, reason="no", conflict_of_interest_statement=NO_CONFLICT
    )


def refused(approval, actor, match, move="approve"):
    """Check the decision is refused with `match` and changes nothing."""
    before = database_state()
    with pytest.raises(NotAllowed, match=match):
        decide(approval, move, actor)
    assert database_state() == before


def executed(run, *, actor):
    """Queue the run as `actor` and execute it through the runner (in their name)."""
    workflow_run_queue(run=run, actor=actor, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


# --- the producing run ----------------------------------------------------------------------


@pytest.mark.parametrize("move", ["approve", "reject"])
def test_a_reviewer_who_started_the_producing_run_is_refused(
    engagement, actuary, reviewer, peer, move
):
    run = run_in(engagement, actor=actuary, name="Chain ladder RAA")
    run = workflow_run_start(run=run, actor=reviewer)
    output = artefact_in(engagement, actor=actuary, name="Reserves", workflow_run=run)
    approval = approval_request(approval_type=REVIEW, artefact=output, actor=actuary)
    refused(
        approval,
        reviewer,
        r"reviewer may not decide approval “.*”: they started workflow run “Chain ladder RAA” "
        r"\(reviews must be independent\)",
        move,
    )
    assert decide(approval, move, peer).approver == peer


def test_a_reviewer_who_created_the_producing_run_is_refused(engagement, actuary, reviewer):
    run = run_in(engagement, actor=reviewer, name="Chain ladder RAA")
    run = workflow_run_start(run=run, actor=actuary)
    approval = approval_request(approval_type=WORKFLOW, workflow_run=run, actor=actuary)
    refused(approval, reviewer, "they created workflow run “Chain ladder RAA”")


def test_a_reviewer_who_queued_the_run_the_runner_executed_is_refused(
    engagement, actuary, reviewer, peer, raa
):
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name="Chain ladder RAA",
        input_params=reserving_params(raa, allow_negative_development=True),
        actor=actuary,
    )
    run = executed(run, actor=reviewer)  # the runner starts it as the reviewer
    assert (run.status, run.queued_by, run.started_by) == ("waiting_approval", reviewer, reviewer)
    approval = run.approvals.get()
    assert approval.requested_by == reviewer  # the runner asks in the queuer's name
    refused(approval, actuary, "actuary may not decide .*: they created workflow run “Chain")
    refused(approval, reviewer, "they requested it")
    assert decide(approval, "approve", peer).status == "approved"


# --- earlier versions -----------------------------------------------------------------------


def test_a_reviewer_who_uploaded_an_earlier_version_is_refused(engagement, actuary, reviewer, peer):
    first = artefact_in(engagement, actor=reviewer, name="Paid claims triangle")
    second = artefact_new_version(artefact=first, upload=upload(b"a,b\n1,2\n"), actor=actuary)
    third = artefact_new_version(artefact=second, upload=upload(b"a,b\n1,3\n"), actor=actuary)
    approval = approval_request(approval_type=REVIEW, artefact=third, actor=actuary)
    refused(approval, reviewer, "they uploaded version 1 of “Paid claims triangle”")
    assert decide(approval, "approve", peer).status == "approved"


def test_deleted_earlier_versions_still_count(engagement, actuary, reviewer):
    from artefacts.services import artefact_delete

    first = artefact_in(engagement, actor=reviewer, name="Paid claims triangle")
    second = artefact_new_version(artefact=first, upload=upload(b"a,b\n1,2\n"), actor=actuary)
    artefact_delete(artefact=first, actor=actuary)
    approval = approval_request(approval_type=REVIEW, artefact=second, actor=actuary)
    refused(approval, reviewer, "they uploaded version 1 of “Paid claims triangle”")


# --- the runs' inputs -----------------------------------------------------------------------


def test_the_uploader_of_an_input_artefact_is_refused(engagement, actuary, reviewer, peer):
    triangle = artefact_in(
        engagement, actor=reviewer, name="Input triangle", artefact_type=ArtefactType.TRIANGLE
    )
    run = executed(runnable_run_in(engagement, actor=actuary, triangle=triangle), actor=actuary)
    assert run.status == "completed", run.error_message
    [report] = run.artefacts.all()
    approval = approval_request(approval_type=REVIEW, artefact=report, actor=actuary)
    refused(
        approval,
        reviewer,
        "they uploaded version 1 of “Input triangle”, an input of workflow run "
        "“Triangle check 2025-Q4”",
    )
    assert decide(approval, "approve", peer).status == "approved"


def test_the_uploader_of_the_triangle_does_not_sign_off_the_reserves_on_it(
    engagement, actuary, reviewer
):
    triangle = artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_csv("raa"), name="raa.csv"),
        actor=reviewer,
        name="RAA triangle",
        artefact_type=ArtefactType.TRIANGLE,
    )
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name="Chain ladder RAA",
        input_params=reserving_params(triangle, allow_negative_development=True),
        actor=actuary,
    )
    run = executed(run, actor=actuary)
    refused(
        run.approvals.get(),
        reviewer,
        "they uploaded version 1 of “RAA triangle”, an input of workflow run “Chain ladder RAA”",
    )


def test_inputs_of_the_run_behind_an_earlier_version_count(engagement, actuary, reviewer):
    triangle = artefact_in(
        engagement, actor=reviewer, name="Input triangle", artefact_type=ArtefactType.TRIANGLE
    )
    run = executed(runnable_run_in(engagement, actor=actuary, triangle=triangle), actor=actuary)
    [report] = run.artefacts.all()
    edited = artefact_new_version(
        artefact=report, upload=upload(b"# Edited report\n", name="report.md"), actor=actuary
    )
    approval = approval_request(approval_type=REVIEW, artefact=edited, actor=actuary)
    refused(approval, reviewer, "they uploaded version 1 of “Input triangle”, an input of")


def test_a_designated_approver_in_the_provenance_is_refused_at_request(
    engagement, actuary, reviewer
):
    first = artefact_in(engagement, actor=reviewer, name="Paid claims triangle")
    second = artefact_new_version(artefact=first, upload=upload(b"a,b\n1,2\n"), actor=actuary)
    before = database_state()
    with pytest.raises(
        NotAllowed, match=r"may not be the designated approver of approval .*: they uploaded"
    ):
        approval_request(
            approval_type=REVIEW, artefact=second, actor=actuary, designated_approver=reviewer
        )
    assert database_state() == before


# --- the walk itself ------------------------------------------------------------------------


def test_the_walk_lists_the_subject_then_its_versions_runs_and_inputs(
    engagement, actuary, reviewer, peer
):
    triangle = artefact_in(
        engagement, actor=reviewer, name="Input triangle", artefact_type=ArtefactType.TRIANGLE
    )
    run = executed(runnable_run_in(engagement, actor=actuary, triangle=triangle), actor=actuary)
    [report] = run.artefacts.all()
    edited = artefact_new_version(
        artefact=report, upload=upload(b"# Edited\n", name="report.md"), actor=peer
    )
    approval = approval_request(approval_type=REVIEW, artefact=edited, actor=actuary)
    items = approval_lineage(approval)
    assert [(item.kind, item.record.pk) for item in items] == [
        ("artefact", edited.pk),
        ("artefact", report.pk),
        ("workflow_run", run.pk),
        ("artefact", triangle.pk),
    ]
    assert items[2].people == (
        (actuary.pk, "started"),
        (actuary.pk, "queued"),
        (actuary.pk, "created"),
    )
    assert lineage_people(approval) == {actuary.pk, reviewer.pk, peer.pk}
    assert lineage_conflict(approval, peer) == "they uploaded version 2 of “" + (f"{edited.name}”")
    outsider = UserFactory()
    assert lineage_conflict(approval, outsider) is None


def test_an_engagement_approval_has_no_provenance(engagement, actuary):
    approval = approval_request(
        approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
    )
    assert approval_lineage(approval) == []


# --- API ------------------------------------------------------------------------------------


def test_api_refusal_names_the_conflicting_item(engagement, actuary, reviewer):
    run = workflow_run_start(
        run=run_in(engagement, actor=actuary, name="Chain ladder RAA"), actor=reviewer
    )
    approval = approval_request(approval_type=WORKFLOW, workflow_run=run, actor=actuary)
    client = client_for(worker(reviewer))
    response = client.post(
        f"{API}/approvals/{approval.pk}/approve/",
        {"conflict_of_interest_statement": NO_CONFLICT},
    )
    body = assert_error(response, 403, "not_allowed")
    assert body["detail"] == (
        f"reviewer may not decide approval “{approval}”: they started workflow run "
        "“Chain ladder RAA” (reviews must be independent)."
    )
