"""Approval services: the professional-standards rules, each allowed and refused case.

Reviews must be independent (not your request, your artefact, your run), by the
designated approver if there is one, qualified for sign-offs, on the artefact as
requested, and on record (audit events, history, qualification snapshot).
"""

import datetime
import threading

import pytest
from django.db import connection
from django.utils import timezone

from approvals.choices import SIGN_OFF_TYPES, ApprovalType
from approvals.models import Approval
from approvals.services import (
    approval_approve,
    approval_expire,
    approval_reject,
    approval_request,
    approval_revoke,
    approval_update,
    qualification_create,
    qualification_update,
)
from artefacts.models import Artefact
from artefacts.services import (
    artefact_archive,
    artefact_new_version,
    artefact_submit_for_review,
)
from audit.choices import AuditAction
from audit.models import AuditLog
from engagements.choices import TeamRole
from engagements.services import engagement_activate, engagement_complete
from records.exceptions import Conflict, InvalidInput, InvalidTransition, NotAllowed
from records.formatting import format_date
from tests.factories import (
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
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
    upload,
)
from tests.lifecycle import state_words
from workflows.services import workflow_run_cancel, workflow_run_start

pytestmark = pytest.mark.django_db

REVIEW = ApprovalType.ARTEFACT_REVIEW
WORKFLOW = ApprovalType.WORKFLOW_APPROVAL


@pytest.fixture
def colleague(engagement):
    """An actuary on the team, with no professional qualification."""
    colleague = UserFactory(username="colleague", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=colleague, role=TeamRole.ACTUARY)
    return colleague


@pytest.fixture
def peer(engagement):
    """A second qualified actuary on the team (FSA)."""
    peer = UserFactory(username="peer", is_staff=True)
    ProfessionalQualificationFactory(user=peer, designation="FSA", issuing_body="SOA")
    EngagementMemberFactory(engagement=engagement, user=peer, role=TeamRole.REVIEWER)
    return peer


@pytest.fixture
def observer(engagement):
    observer = UserFactory(username="observer")
    ProfessionalQualificationFactory(user=observer)
    EngagementMemberFactory(engagement=engagement, user=observer, role=TeamRole.OBSERVER)
    return observer


@pytest.fixture
def outsider(db):
    outsider = UserFactory(username="outsider")
    ProfessionalQualificationFactory(user=outsider)
    return outsider


@pytest.fixture
def artefact(engagement, actuary):
    """A draft artefact uploaded by the lead actuary."""
    return artefact_in(engagement, actor=actuary)


@pytest.fixture
def review(artefact, actuary):
    """A pending artefact review requested by the lead actuary."""
    return approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)


@pytest.fixture
def waiting_run(engagement, actuary):
    """A run started by the lead actuary, submitted for its workflow approval."""
    run = run_in(engagement, actor=actuary, start=True)
    approval_request(approval_type=WORKFLOW, workflow_run=run, actor=actuary)
    run.refresh_from_db()
    return run


def fresh(obj):
    return type(obj)._base_manager.get(pk=obj.pk)


def actions(events):
    return sorted(event.action for event in events)


# --- request ------------------------------------------------------------------------------


def test_requesting_review_of_a_draft_pins_it_and_sends_it_for_review(artefact, actuary, reviewer):
    mark = audit_mark()

    approval = approval_request(
        approval_type=REVIEW,
        artefact=artefact,
        designated_approver=reviewer,
        request_notes="Please check the tail",
        actor=actuary,
    )

    approval = fresh(approval)
    artefact = fresh(artefact)
    assert approval.status == "pending" and approval.requested_by == actuary
    assert approval.engagement == artefact.engagement
    assert (approval.artefact_version, approval.artefact_content_hash) == (
        1,
        artefact.content_hash,
    )
    assert artefact.status == "pending_review"
    assert artefact.history.latest().history_user == actuary
    assert approval.history.latest().history_change_reason == "Requested"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_REQUEST and event.user == actuary
    assert event.resource_id == approval.pk and event.engagement_id == approval.engagement_id
    assert event.new_value["artefact_content_hash"] == artefact.content_hash
    assert event.new_value["designated_approver"] == reviewer.pk


def test_an_artefact_already_in_review_stays_there(artefact, actuary):
    artefact_submit_for_review(artefact=artefact, actor=actuary)
    approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
    assert fresh(artefact).status == "pending_review"


def test_requesting_a_workflow_approval_holds_the_running_run(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    mark = audit_mark()
    approval = approval_request(approval_type=WORKFLOW, workflow_run=run, actor=actuary)
    assert fresh(run).status == "waiting_approval"
    assert approval.workflow_run == run and approval.engagement == engagement
    assert actions(audit_events_since(mark)) == [AuditAction.APPROVAL_REQUEST]


def test_a_workflow_approval_finds_the_run_through_its_artefact(engagement, actuary):
    run = run_in(engagement, actor=actuary, start=True)
    artefact = artefact_in(engagement, actor=actuary, workflow_run=run)
    approval = approval_request(approval_type=WORKFLOW, artefact=artefact, actor=actuary)
    assert approval.workflow_run == run
    assert fresh(run).status == "waiting_approval"
    assert fresh(artefact).status == "pending_review"


def test_an_engagement_approval_needs_no_artefact(engagement, actuary):
    approval = approval_request(
        approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
    )
    assert approval.artefact is None and approval.engagement == engagement


def _request_refusals(engagement, artefact, actuary, reviewer, colleague, outsider, observer):
    """Return (kwargs, error, match) of refused requests (built after the fixtures exist)."""
    now = timezone.now()
    pending_run = run_in(engagement, actor=actuary)
    other_artefact = artefact_in(engagement, actor=colleague, content=b"other")
    return [
        ({"approval_type": REVIEW}, InvalidInput, "needs a subject"),
        ({"approval_type": WORKFLOW, "engagement": engagement}, InvalidInput, "needs the workflow"),
        (
            {"approval_type": REVIEW, "workflow_run": pending_run},
            InvalidInput,
            "Only a workflow approval releases a workflow run",
        ),
        (
            {"approval_type": WORKFLOW, "workflow_run": pending_run},
            Conflict,
            "Cannot request a workflow approval of run .*: it is pending",
        ),
        (
            {"approval_type": REVIEW, "artefact": artefact, "expires_at": now},
            InvalidInput,
            "cannot expire in the past",
        ),
        (
            {"approval_type": REVIEW, "artefact": artefact, "actor": outsider},
            NotAllowed,
            "outsider may not request approvals on engagement .*not on its team",
        ),
        (
            {"approval_type": REVIEW, "artefact": artefact, "actor": observer},
            NotAllowed,
            "role on its team is observer",
        ),
        (
            {"approval_type": REVIEW, "artefact": artefact, "designated_approver": actuary},
            NotAllowed,
            "actuary may not be the designated approver of approval .*: they requested it",
        ),
        (
            {
                "approval_type": REVIEW,
                "artefact": other_artefact,
                "designated_approver": colleague,
            },
            NotAllowed,
            "may not be the designated approver of approval .*: they uploaded version 1 of",
        ),
        (
            {"approval_type": REVIEW, "artefact": artefact, "designated_approver": outsider},
            NotAllowed,
            "outsider may not be the designated approver of approvals on .*not on its team",
        ),
    ]


def test_request_refusals_change_nothing(
    engagement, artefact, actuary, reviewer, colleague, outsider, observer
):
    cases = _request_refusals(
        engagement, artefact, actuary, reviewer, colleague, outsider, observer
    )
    before = database_state()
    for kwargs, error, match in cases:
        kwargs = {"actor": actuary} | kwargs
        with pytest.raises(error, match=match):
            approval_request(**kwargs)
    assert database_state() == before


@pytest.mark.parametrize("state", ["approved", "rejected", "superseded", "archived"])
def test_only_draft_or_pending_review_artefacts_can_be_reviewed(artefact, actuary, reviewer, state):
    if state in ("approved", "rejected"):
        approval = approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
        if state == "approved":
            approval_approve(
                approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
            )
        else:
            approval_reject(
                approval=approval,
                actor=reviewer,
                reason="No",
                conflict_of_interest_statement=NO_CONFLICT,
            )
    elif state == "superseded":
        artefact_new_version(artefact=artefact, upload=upload(b"v2"), actor=actuary)
    else:
        artefact_archive(artefact=artefact, actor=actuary)
    before = database_state()
    with pytest.raises(
        Conflict, match=rf"Cannot request approval of artefact .*: it is {state_words(state)}"
    ):
        approval_request(approval_type=REVIEW, artefact=fresh(artefact), actor=actuary)
    assert database_state() == before


def test_one_pending_approval_per_artefact_and_per_run(review, artefact, waiting_run, actuary):
    before = database_state()
    with pytest.raises(Conflict, match=r"another approval of artefact .* is still pending"):
        approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
    with pytest.raises(Conflict, match=r"another approval of workflow run .* is still pending"):
        approval_request(approval_type=WORKFLOW, workflow_run=waiting_run, actor=actuary)
    assert database_state() == before


# --- decisions: what they carry through -----------------------------------------------------


def test_approving_an_artefact_review(review, artefact, reviewer):
    mark = audit_mark()

    result = approval_approve(
        approval=review,
        actor=reviewer,
        notes="Reasonable",
        conflict_of_interest_statement=NO_CONFLICT,
    )

    approval, artefact = fresh(review), fresh(artefact)
    assert result.status == approval.status == "approved"
    assert approval.approver == reviewer and approval.reviewed_at is not None
    assert approval.decision_notes == "Reasonable"
    assert approval.approver_qualifications["checked_on"] == timezone.localdate().isoformat()
    [qualification] = approval.approver_qualifications["qualifications"]
    assert qualification["designation"] == "FIA"
    assert artefact.status == "approved" and artefact.updated_by == reviewer
    assert approval.history.latest().history_user == reviewer
    assert approval.history.latest().history_change_reason == "Approve"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_APPROVE and event.user == reviewer
    assert event.old_value["status"] == "pending" and event.new_value["status"] == "approved"
    assert event.new_value["approver"] == reviewer.pk
    assert event.metadata["artefact_content_hash"] == artefact.content_hash


def test_rejecting_an_artefact_review(review, artefact, reviewer):
    mark = audit_mark()
    approval_reject(
        approval=review,
        actor=reviewer,
        reason="  Wrong cut-off date ",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    approval, artefact = fresh(review), fresh(artefact)
    assert approval.status == "rejected" and approval.rejection_reason == "Wrong cut-off date"
    assert artefact.status == "rejected"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_REJECT and event.user == reviewer


def test_approving_a_workflow_approval_completes_the_run(waiting_run, reviewer):
    approval = waiting_run.approvals.get()
    mark = audit_mark()
    approval_approve(approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    run = fresh(waiting_run)
    assert run.status == "completed" and run.completed_at is not None
    events = audit_events_since(mark)
    assert actions(events) == [AuditAction.APPROVAL_APPROVE, AuditAction.WORKFLOW_COMPLETE]
    assert all(event.user == reviewer for event in events)
    complete = next(e for e in events if e.action == AuditAction.WORKFLOW_COMPLETE)
    assert complete.resource_id == run.pk and complete.metadata["approval_id"] == str(approval.pk)


def test_rejecting_a_workflow_approval_fails_the_run_with_the_reason(waiting_run, reviewer):
    approval = waiting_run.approvals.get()
    mark = audit_mark()
    approval_reject(
        approval=approval,
        actor=reviewer,
        reason="LDFs unstable",
        notes="See p.3",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    run = fresh(waiting_run)
    assert run.status == "failed"
    assert run.error_message == "Rejected by reviewer: LDFs unstable"
    assert run.error_details["rejection_reason"] == "LDFs unstable"
    assert run.error_details["decision_notes"] == "See p.3"
    assert actions(audit_events_since(mark)) == [
        AuditAction.APPROVAL_REJECT,
        AuditAction.WORKFLOW_FAIL,
    ]


def test_an_engagement_sign_off_changes_only_the_approval(engagement, actuary, reviewer):
    pending = final_sign_off_request(engagement, requester=actuary)
    mark = audit_mark()
    approval = approval_approve(
        approval=pending, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
    )
    assert approval.status == "approved"
    assert fresh(engagement).status == "draft"
    assert actions(audit_events_since(mark)) == [AuditAction.APPROVAL_APPROVE]


# --- decisions: independence, designation, qualification -----------------------------------


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_nobody_decides_their_own_request(engagement, actuary, reviewer, decide):
    approval = approval_request(
        approval_type=ApprovalType.DATA_VALIDATION, engagement=engagement, actor=reviewer
    )
    _refused(
        approval,
        decide,
        reviewer,
        NotAllowed,
        "reviewer may not decide approval .*: they requested it \\(reviews must be independent",
    )


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_nobody_decides_on_an_artefact_they_created(engagement, colleague, actuary, decide):
    artefact = artefact_in(engagement, actor=colleague)
    approval = approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
    _refused(
        approval, decide, colleague, NotAllowed, "they uploaded version 1 of “Paid claims triangle”"
    )


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_nobody_decides_on_a_run_they_started(engagement, colleague, actuary, decide):
    run = workflow_run_start(run=run_in(engagement, actor=actuary), actor=colleague)
    approval = approval_request(approval_type=WORKFLOW, workflow_run=run, actor=actuary)
    _refused(approval, decide, colleague, NotAllowed, "they started workflow run “Chain ladder")


def test_nobody_decides_on_the_output_of_a_run_they_started(engagement, colleague, actuary):
    run = workflow_run_start(run=run_in(engagement, actor=actuary), actor=colleague)
    artefact = artefact_in(engagement, actor=actuary, workflow_run=run)
    approval = approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)
    _refused(approval, "approve", colleague, NotAllowed, "they started workflow run")


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_only_the_designated_approver_decides(artefact, actuary, reviewer, peer, decide):
    approval = approval_request(
        approval_type=REVIEW, artefact=artefact, designated_approver=reviewer, actor=actuary
    )
    _refused(
        approval,
        decide,
        peer,
        NotAllowed,
        "peer may not decide approval .*: only its designated approver, reviewer, may",
    )
    _decide(approval, decide, reviewer)
    assert fresh(approval).approver == reviewer


@pytest.mark.parametrize("who", ["outsider", "observer"])
def test_only_working_team_members_decide(request, review, who):
    actor = request.getfixturevalue(who)
    _refused(review, "approve", actor, NotAllowed, "may not decide approvals on engagement")


def test_superusers_decide_without_being_on_the_team(review):
    admin = SuperUserFactory()
    assert (
        approval_approve(
            approval=review, actor=admin, conflict_of_interest_statement=NO_CONFLICT
        ).approver
        == admin
    )


@pytest.mark.parametrize("approval_type", sorted(SIGN_OFF_TYPES))
@pytest.mark.parametrize(
    ("valid_from", "valid_until", "allowed"),
    [
        (None, None, False),  # no qualification at all
        (-3650, -1, False),  # lapsed yesterday
        (1, None, False),  # not valid yet
        (-3650, 0, True),  # last day of validity
        (0, None, True),  # first day of validity
    ],
)
def test_sign_offs_need_a_qualification_valid_on_the_decision_date(
    engagement, actuary, colleague, approval_type, valid_from, valid_until, allowed
):
    today = timezone.localdate()
    if valid_from is not None:
        ProfessionalQualificationFactory(
            user=colleague,
            designation="FCAS",
            issuing_body="CAS",
            valid_from=today + datetime.timedelta(days=valid_from),
            valid_until=None if valid_until is None else today + datetime.timedelta(valid_until),
        )
    if approval_type == ApprovalType.FINAL_SIGN_OFF:
        approval = final_sign_off_request(engagement, requester=actuary)
    else:
        approval = approval_request(
            approval_type=approval_type, engagement=engagement, actor=actuary
        )
    if not allowed:
        _refused(
            approval,
            "approve",
            colleague,
            NotAllowed,
            rf"needs an approver holding a professional qualification valid on "
            rf"{format_date(today)}",
        )
        return
    approval_approve(approval=approval, actor=colleague, conflict_of_interest_statement=NO_CONFLICT)
    snapshot = fresh(approval).approver_qualifications
    assert snapshot["checked_on"] == today.isoformat()
    assert [q["designation"] for q in snapshot["qualifications"]] == ["FCAS"]


def test_other_approvals_need_no_qualification_but_snapshot_it(review, colleague):
    approval_approve(approval=review, actor=colleague, conflict_of_interest_statement=NO_CONFLICT)
    assert fresh(review).approver_qualifications["qualifications"] == []


def test_only_valid_qualifications_are_snapshot(review, reviewer):
    ProfessionalQualificationFactory(
        user=reviewer,
        designation="FSA",
        issuing_body="SOA",
        valid_from=datetime.date(2000, 1, 1),
        valid_until=datetime.date(2010, 1, 1),
    )
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    snapshot = fresh(review).approver_qualifications["qualifications"]
    assert [q["designation"] for q in snapshot] == ["FIA"]


# --- decisions: integrity, state, expiry, reasons -----------------------------------------


@pytest.mark.parametrize("tampered", ["content_hash", "version"])
def test_a_decision_is_refused_if_the_artefact_changed_since_the_request(
    review, artefact, reviewer, tampered
):
    # Services never change bytes in place; this simulates a change behind their back.
    value = "f" * 64 if tampered == "content_hash" else 7
    Artefact.objects.filter(pk=artefact.pk).update(**{tampered: value})
    _refused(
        review,
        "approve",
        reviewer,
        Conflict,
        "artefact .* changed since the approval was requested .*Request a new approval",
    )


def test_a_decision_is_refused_if_the_artefact_left_review(review, artefact, reviewer):
    Artefact.objects.filter(pk=artefact.pk).update(status="archived")  # behind the services' back
    _refused(review, "approve", reviewer, Conflict, "is archived, not pending review")


def test_a_decision_is_refused_when_the_run_no_longer_waits(waiting_run, actuary, reviewer):
    approval = waiting_run.approvals.get()
    workflow_run_cancel(run=waiting_run, actor=actuary)
    _refused(approval, "approve", reviewer, Conflict, "the run is cancelled, not waiting")


def test_rejecting_needs_a_reason(review, reviewer):
    _refused(review, "reject", reviewer, InvalidInput, "A reason is required to reject")


@pytest.mark.parametrize("first", ["approve", "reject"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_a_decided_approval_cannot_be_decided_again(review, reviewer, peer, first, second):
    _decide(review, first, reviewer)
    status = {"approve": "approved", "reject": "rejected"}[first]
    _refused(
        review,
        second,
        peer,
        InvalidTransition,
        rf"Cannot {second} .*: it is {state_words(status)} ",
    )


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_an_approval_past_its_expiry_cannot_be_decided(
    monkeypatch, artefact, actuary, reviewer, decide
):
    expires_at = timezone.now() + datetime.timedelta(days=1)
    approval = approval_request(
        approval_type=REVIEW, artefact=artefact, expires_at=expires_at, actor=actuary
    )
    later = expires_at + datetime.timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    _refused(approval, decide, reviewer, Conflict, "Cannot decide approval .*: it expired on")


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_an_expired_approval_cannot_be_decided(monkeypatch, artefact, actuary, reviewer, decide):
    expires_at = timezone.now() + datetime.timedelta(days=1)
    approval = approval_request(
        approval_type=REVIEW, artefact=artefact, expires_at=expires_at, actor=actuary
    )
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(days=2))
    approval_expire(approval=approval)
    _refused(approval, decide, reviewer, InvalidTransition, "it is expired")


def test_approvals_of_a_completed_engagement_are_frozen(engagement, actuary, reviewer):
    engagement = engagement_activate(engagement=engagement, actor=actuary)
    sign_off = final_sign_off(engagement, requester=actuary, approver=reviewer)
    pending = approval_request(
        approval_type=ApprovalType.METHODOLOGY_APPROVAL, engagement=engagement, actor=actuary
    )
    engagement_complete(engagement=engagement, actor=actuary)
    _refused(pending, "approve", reviewer, Conflict, "is completed: it accepts no new decisions")
    before = database_state()
    with pytest.raises(Conflict, match="is completed: it accepts no new revocations"):
        approval_revoke(approval=sign_off, actor=reviewer, reason="Late finding")
    assert database_state() == before


# --- revoke -------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["reviewer", "actuary", "superuser"])
def test_revoking_an_approved_review_sends_the_artefact_back(
    request, review, artefact, reviewer, who
):
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    actor = request.getfixturevalue(who)
    mark = audit_mark()

    approval_revoke(approval=review, actor=actor, reason="Data restated by the client")

    approval, artefact = fresh(review), fresh(artefact)
    assert approval.status == "revoked" and approval.revoked_by == actor
    assert approval.revocation_reason == "Data restated by the client"
    assert approval.revoked_at is not None
    assert artefact.status == "pending_review"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_REVOKE and event.user == actor
    assert event.new_value["revocation_reason"] == "Data restated by the client"
    # A new review can be requested of the same bytes.
    assert approval_request(approval_type=REVIEW, artefact=artefact, actor=actor)


def test_revoking_after_a_new_version_leaves_the_old_one_superseded(
    review, artefact, actuary, reviewer
):
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    artefact_new_version(artefact=artefact, upload=upload(b"v2"), actor=actuary)
    approval_revoke(approval=review, actor=reviewer, reason="Superseded figures")
    assert fresh(artefact).status == "superseded"


def test_revoking_a_workflow_approval_does_not_reopen_the_run(waiting_run, reviewer):
    approval = waiting_run.approvals.get()
    approval_approve(approval=approval, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    approval_revoke(approval=approval, actor=reviewer, reason="Wrong inputs")
    assert fresh(waiting_run).status == "completed"


def test_revoke_refusals_change_nothing(review, reviewer, colleague, outsider):
    before = database_state()
    with pytest.raises(InvalidTransition, match=r"Cannot revoke .*: it is pending"):
        approval_revoke(approval=review, actor=reviewer, reason="x")
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    before = database_state()
    cases = [
        (reviewer, "  ", InvalidInput, "A reason is required to revoke"),
        (colleague, "x", NotAllowed, "colleague may not revoke approval .*: only its approver"),
        (outsider, "x", NotAllowed, "may not revoke approvals on engagement"),
    ]
    for actor, reason, error, match in cases:
        with pytest.raises(error, match=match):
            approval_revoke(approval=review, actor=actor, reason=reason)
    assert database_state() == before


# --- expire and edit ----------------------------------------------------------------------


def test_the_system_expires_an_approval_past_its_date(monkeypatch, artefact, actuary):
    expires_at = timezone.now() + datetime.timedelta(hours=1)
    approval = approval_request(
        approval_type=REVIEW, artefact=artefact, expires_at=expires_at, actor=actuary
    )
    before = database_state()
    with pytest.raises(Conflict, match="it is not past its expiry date"):
        approval_expire(approval=approval)
    assert database_state() == before

    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + datetime.timedelta(hours=2))
    mark = audit_mark()
    approval_expire(approval=approval)
    assert fresh(approval).status == "expired"
    assert fresh(approval).history.latest().history_change_reason == "Expire"
    [event] = audit_events_since(mark)
    assert event.action == AuditAction.APPROVAL_EXPIRE and event.user is None
    assert event.old_value["status"] == "pending" and event.new_value["status"] == "expired"
    # The artefact waits for a new request.
    assert fresh(artefact).status == "pending_review"
    approval_request(approval_type=REVIEW, artefact=artefact, actor=actuary)


def test_an_approval_without_expiry_date_never_expires(review):
    with pytest.raises(Conflict, match=r"not past its expiry date \(none\)"):
        approval_expire(approval=review)


def test_the_requester_edits_a_pending_approval(review, actuary, reviewer):
    approval = approval_update(
        approval=review,
        actor=actuary,
        data={"request_notes": "Focus on 2021", "designated_approver": reviewer},
    )
    approval = fresh(approval)
    assert approval.request_notes == "Focus on 2021" and approval.designated_approver == reviewer
    assert approval.history.latest().history_change_reason.startswith("Edited: ")
    event = AuditLog.objects.filter(action=AuditAction.APPROVAL_UPDATE).get()
    assert event.user == actuary and event.resource_id == approval.pk
    assert event.new_value == {"request_notes": "Focus on 2021", "designated_approver": reviewer.pk}


def test_edit_refusals_change_nothing(review, actuary, reviewer, colleague):
    before = database_state()
    cases = [
        (colleague, {"request_notes": "x"}, NotAllowed, "only its requester or a superuser"),
        (actuary, {"designated_approver": actuary}, NotAllowed, "they requested it"),
        (actuary, {"status": "approved"}, InvalidInput, "Cannot change status of approval"),
        (actuary, {"approver": reviewer}, InvalidInput, "Cannot change approver"),
    ]
    for actor, data, error, match in cases:
        with pytest.raises(error, match=match):
            approval_update(approval=review, actor=actor, data=data)
    assert database_state() == before
    approval_approve(approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT)
    with pytest.raises(Conflict, match=r"it is approved \(only pending approvals"):
        approval_update(approval=review, actor=actuary, data={"request_notes": "x"})


# --- qualifications -----------------------------------------------------------------------


@pytest.fixture
def registrar(db):
    """Whoever verifies professional qualifications (holds the certify permission)."""
    return grant(UserFactory(username="registrar"), "approvals.certify_professionalqualification")


def test_recording_and_changing_a_qualification_is_a_permission_change(registrar, colleague):
    mark = audit_mark()
    qualification = qualification_create(
        user=colleague,
        designation="FIAA",
        issuing_body="Actuaries Institute",
        valid_from=datetime.date(2020, 1, 1),
        actor=registrar,
    )
    qualification = qualification_update(
        qualification=qualification,
        actor=registrar,
        data={"valid_until": datetime.date(2030, 6, 30)},
    )
    assert qualification.created_by == registrar
    created, changed = audit_events_since(mark)
    assert {created.action, changed.action} == {AuditAction.PERMISSION_CHANGE}
    assert created.user == changed.user == registrar
    assert created.new_value["designation"] == "FIAA"
    assert changed.old_value == {"valid_until": None}
    assert changed.new_value == {"valid_until": "2030-06-30"}


def test_qualification_refusals_change_nothing(registrar, colleague):
    qualification = ProfessionalQualificationFactory(user=colleague)
    fields = {"designation": "FIA", "issuing_body": "IFoA", "valid_from": datetime.date(2020, 1, 1)}
    before = database_state()
    cases = [
        (lambda: qualification_create(user=registrar, actor=registrar, **fields), "their own"),
        (lambda: qualification_create(user=registrar, actor=colleague, **fields), "permission"),
        (
            lambda: qualification_update(
                qualification=qualification, actor=colleague, data={"valid_until": None}
            ),
            "certify_professionalqualification",
        ),
    ]
    for call, match in cases:
        with pytest.raises(NotAllowed, match=match):
            call()
    with pytest.raises(InvalidInput, match="qualification_valid_until_after_from"):
        qualification_update(
            qualification=qualification,
            actor=registrar,
            data={"valid_until": datetime.date(2000, 1, 1)},
        )
    with pytest.raises(InvalidInput, match="Cannot change user of"):
        qualification_update(qualification=qualification, actor=registrar, data={"user": registrar})
    assert database_state() == before


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_approvers_deciding_at_once_end_with_one_decision(engagement, artefact, actuary):
    """Both approvers pass every check; the row locks let exactly one of them decide."""
    first, second = UserFactory(username="first"), UserFactory(username="second")
    for user in (first, second):
        ProfessionalQualificationFactory(user=user)
        EngagementMemberFactory(engagement=engagement, user=user, role=TeamRole.REVIEWER)
    approval = approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF, artefact=artefact, actor=actuary
    )
    start = threading.Barrier(2)
    outcomes = {}

    def decide(user, call):
        try:
            start.wait()
            call(user)
            outcomes[user.username] = "decided"
        except (InvalidTransition, Conflict) as error:
            outcomes[user.username] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=decide,
            args=(
                first,
                lambda u: approval_approve(
                    approval=approval, actor=u, conflict_of_interest_statement=NO_CONFLICT
                ),
            ),
        ),
        threading.Thread(
            target=decide,
            args=(
                second,
                lambda u: approval_reject(
                    approval=approval,
                    actor=u,
                    reason="No",
                    conflict_of_interest_statement=NO_CONFLICT,
                ),
            ),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    decided = [name for name, outcome in outcomes.items() if outcome == "decided"]
    assert len(outcomes) == 2 and len(decided) == 1, outcomes
    [refused] = [outcome for outcome in outcomes.values() if outcome != "decided"]
    assert isinstance(refused, InvalidTransition)
    approval = Approval.objects.get(pk=approval.pk)
    assert approval.approver.username == decided[0]
    decisions = AuditLog.objects.filter(
        resource_id=approval.pk,
        action__in=(AuditAction.APPROVAL_APPROVE, AuditAction.APPROVAL_REJECT),
    )
    assert decisions.count() == 1
    assert decisions.get().user == approval.approver
    expected = "approved" if approval.status == "approved" else "rejected"
    assert Artefact.objects.get(pk=artefact.pk).status == expected


# --- helpers ------------------------------------------------------------------------------


def _decide(approval, decide, actor):
    if decide == "approve":
        return approval_approve(
            approval=approval, actor=actor, conflict_of_interest_statement=NO_CONFLICT
        )
    return approval_reject(
        approval=approval,
        actor=actor,
        reason="Not supported",
        conflict_of_interest_statement=NO_CONFLICT,
    )


def _refused(approval, decide, actor, error, match):
    """Check that the decision is refused with `match` and that nothing changed."""
    before = database_state()
    with pytest.raises(error, match=match):
        if decide == "reject" and error is InvalidInput:
            approval_reject(
                approval=approval,
                actor=actor,
                reason="  ",
                conflict_of_interest_statement=NO_CONFLICT,
            )
        else:
            _decide(approval, decide, actor)
    assert database_state() == before
