"""Review points (APS X2): raised by the reviewer, answered by the preparer, resolved on record.

An approval is not approved while a point is unresolved; the resolved points export
as a review memo (Markdown and Word artefacts). Services and API.
"""

import io

import docx
import pytest

from approvals.choices import ApprovalType
from approvals.models import ReviewPoint
from approvals.services import (
    approval_approve,
    approval_reject,
    approval_request,
    review_memo_export,
    review_point_raise,
    review_point_reopen,
    review_point_resolve,
    review_point_respond,
)
from artefacts.models import Artefact
from audit.choices import AuditAction
from engagements.choices import TeamRole
from records.exceptions import Conflict, InvalidInput, InvalidTransition, NotAllowed
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
    reviewer_client,
    reviewer_user,
    teammate,
    teammate_client,
)
from tests.factories import (
    ArtefactFactory,
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    UserFactory,
)
from tests.factories.states import (
    NO_CONFLICT,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
)
from tests.lifecycle import state_words

__all__ = (
    "api_client",
    "lead",
    "lead_client",
    "outsider",
    "outsider_client",
    "reviewer_client",
    "reviewer_user",
    "teammate",
    "teammate_client",
)

pytestmark = pytest.mark.django_db

POINTS = f"{API}/review-points/"
APPROVALS = f"{API}/approvals/"
COI = {"conflict_of_interest_statement": NO_CONFLICT}
TAIL = "The tail factor of 1.05 is not supported by the development beyond 108 months."
ANSWER = "Benchmarked against the industry tail for motor liability (1.04 to 1.06)."


@pytest.fixture
def preparer(engagement):
    """An actuary on the team who prepared the work and asks for its review."""
    preparer = UserFactory(username="preparer", first_name="Pat", last_name="Preparer")
    EngagementMemberFactory(engagement=engagement, user=preparer, role=TeamRole.ACTUARY)
    return preparer


@pytest.fixture
def peer(engagement):
    """A second qualified reviewer on the team, independent of the work."""
    peer = UserFactory(username="peer")
    ProfessionalQualificationFactory(user=peer, designation="FSA", issuing_body="SOA")
    EngagementMemberFactory(engagement=engagement, user=peer, role=TeamRole.REVIEWER)
    return peer


@pytest.fixture
def artefact(engagement, preparer):
    return artefact_in(engagement, actor=preparer, name="Reserve report")


@pytest.fixture
def review(artefact, preparer):
    """A pending artefact review requested by the preparer."""
    return approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=preparer
    )


@pytest.fixture
def point(review, reviewer, artefact):
    """An open major point the (independent) reviewer raised on the artefact."""
    return review_point_raise(
        approval=review, actor=reviewer, text=TAIL, severity="major", artefact=artefact
    )


def fresh(obj):
    return type(obj)._base_manager.get(pk=obj.pk)


def answered(point, preparer):
    return review_point_respond(point=point, actor=preparer, response=ANSWER)


def resolved(point, preparer, reviewer):
    return review_point_resolve(
        point=answered(point, preparer), actor=reviewer, notes="Benchmark accepted."
    )


# --- raising --------------------------------------------------------------------------------


def test_the_reviewer_raises_a_point_on_record(review, reviewer, artefact):
    mark = audit_mark()
    point = review_point_raise(
        approval=review, actor=reviewer, text=f"  {TAIL} ", severity="critical", artefact=artefact
    )
    point = fresh(point)
    assert (point.status, point.severity, point.text, point.raised_by) == (
        "open",
        "critical",
        TAIL,
        reviewer,
    )
    assert point.artefact == artefact and point.created_by == reviewer
    assert point.history.latest().history_change_reason == "Raised"
    [event] = audit_events_since(mark)
    assert (event.action, event.user, event.resource_id) == (
        AuditAction.REVIEW_POINT_RAISE,
        reviewer,
        point.pk,
    )
    assert event.engagement_id == review.engagement_id
    assert event.new_value["text"] == TAIL


@pytest.mark.parametrize(
    ("who", "match"),
    [
        ("preparer", "preparer may not raise review points on approval .*: they requested it"),
        ("observer", "role on its team is observer"),
        ("stranger", "not on its team"),
    ],
)
def test_only_someone_who_may_decide_raises_points(engagement, review, who, match):
    users = {
        "preparer": review.requested_by,
        "observer": UserFactory(username="observer"),
        "stranger": UserFactory(username="stranger"),
    }
    if who == "observer":
        EngagementMemberFactory(engagement=engagement, user=users[who], role=TeamRole.OBSERVER)
    before = database_state()
    with pytest.raises(NotAllowed, match=match):
        review_point_raise(approval=review, actor=users[who], text=TAIL)
    assert database_state() == before


def test_someone_in_the_provenance_raises_no_points(engagement, preparer, peer):
    # The peer uploaded an earlier version: they are part of the work, not its reviewer.
    earlier = artefact_in(engagement, actor=peer, name="Claims data", content=b"v1,a\n1,2\n")
    later = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=_new_version(earlier, preparer),
        actor=preparer,
    )
    with pytest.raises(NotAllowed, match="they uploaded version 1 of “Claims data”"):
        review_point_raise(approval=later, actor=peer, text=TAIL)


def test_only_the_designated_approver_raises_points(review, preparer, reviewer, peer):
    from approvals.services import approval_update

    approval_update(approval=review, actor=preparer, data={"designated_approver": peer})
    with pytest.raises(NotAllowed, match="only its designated approver, peer, may"):
        review_point_raise(approval=review, actor=reviewer, text=TAIL)
    assert review_point_raise(approval=review, actor=peer, text=TAIL).raised_by == peer


@pytest.mark.parametrize(
    ("kwargs", "field", "match"),
    [
        ({"text": "  "}, "text", "its text is required"),
        ({"text": TAIL, "artefact": "elsewhere"}, "artefact", "belongs to another engagement"),
        ({"text": TAIL, "severity": "fatal"}, None, "severity: Value 'fatal'"),
    ],
)
def test_raising_refuses_bad_input(review, reviewer, kwargs, field, match):
    if kwargs.get("artefact") == "elsewhere":
        kwargs["artefact"] = ArtefactFactory(engagement=EngagementFactory())
    before = database_state()
    with pytest.raises(InvalidInput, match=match) as refusal:
        review_point_raise(approval=review, actor=reviewer, **kwargs)
    assert refusal.value.field == field
    assert database_state() == before


# --- the rule: no approval while a point is unresolved --------------------------------------


def test_an_approval_with_an_open_point_cannot_be_approved(point, review, reviewer):
    before = database_state()
    with pytest.raises(
        Conflict,
        match=r"Cannot approve approval .*: 1 review point\(s\) not resolved \(1 major\)",
    ):
        approval_approve(
            approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )
    assert database_state() == before


def test_the_refusal_counts_every_unresolved_point_by_severity(
    point, review, reviewer, preparer, artefact
):
    answered(point, preparer)  # responded is not resolved
    review_point_raise(approval=review, actor=reviewer, text="Cut-off date?", severity="critical")
    review_point_raise(approval=review, actor=reviewer, text="Typo on p.3", severity="minor")
    with pytest.raises(
        Conflict, match=r"3 review point\(s\) not resolved \(1 critical, 1 major, 1 minor\)"
    ):
        approval_approve(
            approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )


def test_once_resolved_the_approval_can_be_approved(point, review, reviewer, preparer):
    resolved(point, preparer, reviewer)
    approval = approval_approve(
        approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
    )
    assert approval.status == "approved"


def test_a_reopened_point_blocks_the_approval_again(point, review, reviewer, preparer):
    point = resolved(point, preparer, reviewer)
    review_point_reopen(point=point, actor=reviewer, reason="The benchmark is for another line.")
    with pytest.raises(Conflict, match=r"1 review point\(s\) not resolved \(1 major\)"):
        approval_approve(
            approval=review, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )


def test_open_points_never_stop_a_rejection(point, review, reviewer):
    approval = approval_reject(
        approval=review,
        actor=reviewer,
        reason="tail_unsupported",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    assert approval.status == "rejected"


# --- respond, resolve, reopen ---------------------------------------------------------------


def test_the_preparer_responds_on_record(point, preparer):
    mark = audit_mark()
    point = review_point_respond(point=point, actor=preparer, response=f" {ANSWER} ")
    point = fresh(point)
    assert (point.status, point.response, point.responded_by) == ("responded", ANSWER, preparer)
    assert point.responded_at is not None
    assert point.history.latest().history_change_reason == "Respond"
    [event] = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.REVIEW_POINT_RESPOND, preparer)
    assert event.new_value["status"] == "responded"


def test_the_lead_actuary_may_answer_for_the_team(point, actuary):
    assert review_point_respond(point=point, actor=actuary, response=ANSWER).responded_by == actuary


def test_someone_who_ran_the_work_under_review_may_answer(engagement, reviewer, preparer, peer):
    run = run_in(engagement, actor=preparer, start=True, name="Chain ladder RAA")
    approval = approval_request(
        approval_type=ApprovalType.WORKFLOW_APPROVAL, workflow_run=run, actor=peer
    )
    point = review_point_raise(approval=approval, actor=reviewer, text=TAIL, workflow_run=run)
    assert review_point_respond(point=point, actor=preparer, response=ANSWER).status == "responded"


@pytest.mark.parametrize(
    ("who", "error", "match"),
    [
        ("reviewer", NotAllowed, "reviewer may not respond to review point .*: they raised it"),
        ("peer", NotAllowed, "peer may not respond to review point .*: only the preparer"),
        ("outsider", NotAllowed, "not on its team"),
    ],
)
def test_only_the_preparer_responds(request, point, who, error, match):
    actor = UserFactory(username="outsider") if who == "outsider" else request.getfixturevalue(who)
    before = database_state()
    with pytest.raises(error, match=match):
        review_point_respond(point=point, actor=actor, response=ANSWER)
    assert database_state() == before


def test_a_response_needs_text(point, preparer):
    before = database_state()
    with pytest.raises(InvalidInput, match="A response is required") as refusal:
        review_point_respond(point=point, actor=preparer, response="  ")
    assert refusal.value.field == "response"
    assert database_state() == before


def test_the_reviewer_resolves_and_the_record_says_who(point, preparer, reviewer):
    point = answered(point, preparer)
    mark = audit_mark()
    point = fresh(review_point_resolve(point=point, actor=reviewer, notes="Accepted."))
    assert (point.status, point.resolved_by, point.resolution_notes) == (
        "resolved",
        reviewer,
        "Accepted.",
    )
    [event] = audit_events_since(mark)
    assert (event.action, event.user) == (AuditAction.REVIEW_POINT_RESOLVE, reviewer)


def test_another_eligible_reviewer_may_resolve(point, preparer, peer):
    assert review_point_resolve(point=answered(point, preparer), actor=peer).status == "resolved"


@pytest.mark.parametrize(
    ("who", "match"),
    [
        ("preparer", "preparer may not resolve review point .*: they answered it"),
        ("actuary", "actuary may not resolve review point .*: they answered it"),
    ],
)
def test_nobody_resolves_their_own_answer_or_their_own_request(request, point, who, match):
    actor = request.getfixturevalue(who)
    point = review_point_respond(point=point, actor=actor, response=ANSWER)
    before = database_state()
    with pytest.raises(NotAllowed, match=match):
        review_point_resolve(point=point, actor=actor)
    assert database_state() == before


def test_the_requester_does_not_resolve_what_someone_else_answered(point, actuary, preparer):
    point = review_point_respond(point=point, actor=actuary, response=ANSWER)
    with pytest.raises(NotAllowed, match=r"preparer may not resolve review points on .*requested"):
        review_point_resolve(point=point, actor=preparer)


def test_reopen_needs_a_reason_and_keeps_the_earlier_answer_in_history(point, preparer, reviewer):
    point = resolved(point, preparer, reviewer)
    with pytest.raises(InvalidInput, match="A reason is required to reopen") as refusal:
        review_point_reopen(point=point, actor=reviewer, reason=" ")
    assert refusal.value.field == "reason"
    mark = audit_mark()
    point = fresh(review_point_reopen(point=point, actor=reviewer, reason="Wrong line of business"))
    assert (point.status, point.reopen_reason, point.resolved_by) == (
        "open",
        "Wrong line of business",
        None,
    )
    assert point.response == ANSWER  # answered again through respond; the history keeps it
    [event] = audit_events_since(mark)
    assert (event.action, event.severity) == (AuditAction.REVIEW_POINT_REOPEN, "warning")
    assert [h.status for h in point.history.order_by("history_date")] == [
        "open",
        "responded",
        "resolved",
        "open",
    ]


# Every move from every state: (move, state) -> allowed.
POINT_MOVES = {
    "respond": {"open"},
    "resolve": {"responded"},
    "reopen": {"responded", "resolved"},
}


@pytest.mark.parametrize("state", ["open", "responded", "resolved"])
@pytest.mark.parametrize("move", list(POINT_MOVES))
def test_every_point_move_from_every_state(point, preparer, reviewer, move, state):
    if state in ("responded", "resolved"):
        point = answered(point, preparer)
    if state == "resolved":
        point = review_point_resolve(point=point, actor=reviewer)
    calls = {
        "respond": lambda: review_point_respond(point=point, actor=preparer, response=ANSWER),
        "resolve": lambda: review_point_resolve(point=point, actor=reviewer),
        "reopen": lambda: review_point_reopen(point=point, actor=reviewer, reason="Again"),
    }
    if state in POINT_MOVES[move]:
        assert calls[move]().status == {"respond": "responded", "resolve": "resolved"}.get(
            move, "open"
        )
        return
    before = database_state()
    with pytest.raises(InvalidTransition, match=f"it is {state_words(state)}"):
        calls[move]()
    assert database_state() == before


def test_points_of_a_decided_approval_are_fixed(point, review, reviewer, preparer):
    approval_reject(
        approval=review, actor=reviewer, reason="no", conflict_of_interest_statement=NO_CONFLICT
    )
    before = database_state()
    with pytest.raises(Conflict, match=r"Cannot respond to review points of approval .*rejected"):
        review_point_respond(point=point, actor=preparer, response=ANSWER)
    with pytest.raises(Conflict, match=r"Cannot raise review points of approval .*rejected"):
        review_point_raise(approval=review, actor=reviewer, text=TAIL)
    assert database_state() == before


# --- the review memo ------------------------------------------------------------------------


@pytest.fixture
def closed_points(review, point, preparer, reviewer):
    """Two resolved points and one still open."""
    resolved(point, preparer, reviewer)
    second = review_point_raise(
        approval=review, actor=reviewer, text="State the cut-off date.", severity="minor"
    )
    review_point_resolve(
        point=review_point_respond(point=second, actor=preparer, response="Cut-off 31/12/2025."),
        actor=reviewer,
    )
    review_point_raise(approval=review, actor=reviewer, text="Still open: sensitivity?")
    return review.review_points.filter(status="resolved")


def test_the_memo_lists_the_closed_points_as_markdown(review, closed_points, reviewer, actuary):
    mark = audit_mark()
    [memo] = review_memo_export(approval=review, actor=actuary, format="markdown")
    assert (memo.artefact_type, memo.file_name, memo.status) == (
        "markdown",
        "review_memo.md",
        "draft",
    )
    assert memo.metadata == {"review_memo_of": str(review.pk), "memo_format": "markdown"}
    text = memo.file.open("rb").read().decode()
    assert text.startswith(f"# Review memo: {review}\n")
    assert "Resolved review points: 2 (1 major, 1 minor)" in text
    assert TAIL in text and ANSWER in text and "Cut-off 31/12/2025." in text
    assert "Still open: sensitivity?" not in text
    assert "1 further review point(s) are not resolved" in text
    assert "Pat Preparer" in text  # who answered
    events = audit_events_since(mark)
    assert [e.action for e in events] == [AuditAction.ARTEFACT_CREATE, AuditAction.DATA_EXPORT]
    assert events[1].metadata["resolved_points"] == 2


def test_the_memo_opens_in_word(review, closed_points, actuary):
    [memo] = review_memo_export(approval=review, actor=actuary, format="docx")
    assert (memo.artefact_type, memo.file_name) == ("word", "review_memo.docx")
    document = docx.Document(io.BytesIO(memo.file.open("rb").read()))
    text = "\n".join(paragraph.text for paragraph in document.paragraphs)
    cells = "\n".join(cell.text for table in document.tables for cell in table._cells)
    assert f"Review memo: {review}" in text
    assert TAIL in cells and ANSWER in cells
    assert document.core_properties.title.startswith("Review memo")


def test_exporting_again_stores_a_new_version_only_when_the_points_changed(
    review, closed_points, reviewer, preparer, actuary
):
    first = review_memo_export(approval=review, actor=actuary)
    assert [a.artefact_type for a in first] == ["markdown", "word"]
    count = Artefact.objects.count()
    again = review_memo_export(approval=review, actor=actuary)
    assert [a.pk for a in again] == [a.pk for a in first]  # same bytes: the same artefacts
    assert Artefact.objects.count() == count
    open_point = review.review_points.get(status="open")
    review_point_resolve(
        point=review_point_respond(point=open_point, actor=preparer, response="Added."),
        actor=reviewer,
    )
    later = review_memo_export(approval=review, actor=actuary)
    assert [(a.version, a.previous_version_id) for a in later] == [(2, a.pk) for a in first]


def test_the_memo_format_is_checked(review, actuary):
    with pytest.raises(InvalidInput, match="format must be one of markdown, docx, both") as refusal:
        review_memo_export(approval=review, actor=actuary, format="pdf")
    assert refusal.value.field == "format"


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api_review(engagement, lead, teammate):
    """A review of the teammate's artefact, requested by the teammate (API users)."""
    artefact = artefact_in(engagement, actor=teammate, name="Reserve report")
    return approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=artefact, actor=teammate
    )


def point_url(point, suffix=""):
    return f"{POINTS}{point.pk}/{suffix}"


def test_api_review_points_from_raise_to_approval(
    api_review, reviewer_user, reviewer_client, teammate, teammate_client
):
    mark = audit_mark()
    response = reviewer_client.post(
        POINTS, {"approval": str(api_review.pk), "severity": "major", "text": TAIL}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["raised_by"], body["available_moves"]) == (
        "open",
        reviewer_user.pk,
        ["respond"],
    )
    point = ReviewPoint.objects.get(pk=body["id"])
    assert [e.action for e in audit_events_since(mark)] == [AuditAction.REVIEW_POINT_RAISE]

    refused = reviewer_client.post(f"{APPROVALS}{api_review.pk}/approve/", COI)
    assert_error(refused, 409, "conflict", match="1 review point(s) not resolved (1 major)")

    response = teammate_client.post(point_url(point, "respond/"), {"response": ANSWER})
    assert response.json()["status"] == "responded", response.content
    response = reviewer_client.post(point_url(point, "resolve/"), {"notes": "OK"})
    assert response.json()["status"] == "resolved", response.content
    response = reviewer_client.post(f"{APPROVALS}{api_review.pk}/approve/", COI)
    assert response.json()["status"] == "approved", response.content


def test_api_respond_needs_a_response_and_the_preparer(
    api_review, reviewer_user, reviewer_client, teammate_client
):
    point = review_point_raise(approval=api_review, actor=reviewer_user, text=TAIL)
    body = assert_error(teammate_client.post(point_url(point, "respond/"), {}), 400, "invalid")
    assert set(body["errors"]) == {"response"}
    response = reviewer_client.post(point_url(point, "respond/"), {"response": "x"})
    assert_error(response, 403, "not_allowed", match="they raised it")
    assert ReviewPoint.objects.get(pk=point.pk).status == "open"


def test_api_reopen_needs_a_reason(api_review, reviewer, reviewer_client, teammate):
    point = review_point_respond(
        point=review_point_raise(approval=api_review, actor=reviewer, text=TAIL),
        actor=teammate,
        response=ANSWER,
    )
    body = assert_error(reviewer_client.post(point_url(point, "reopen/"), {}), 400, "invalid")
    assert set(body["errors"]) == {"reason"}
    response = reviewer_client.post(point_url(point, "reopen/"), {"reason": "Not convinced"})
    assert response.json()["status"] == "open"


def test_api_points_are_scoped_to_your_engagements(
    api_review, reviewer, lead_client, outsider_client
):
    point = review_point_raise(approval=api_review, actor=reviewer, text=TAIL)
    assert ids(lead_client.get(POINTS)) == {str(point.pk)}
    assert ids(outsider_client.get(POINTS)) == set()
    assert_error(outsider_client.get(point_url(point)), 404, "not_found")
    assert_error(outsider_client.post(point_url(point, "respond/"), {}), 404, "not_found")
    response = outsider_client.post(POINTS, {"approval": str(api_review.pk), "text": TAIL})
    assert "does not exist" in assert_error(response, 400, "invalid")["errors"]["approval"][0]


def test_api_points_need_model_permissions(engagement, api_review, reviewer):
    viewer = reader(reviewer)
    point = review_point_raise(approval=api_review, actor=viewer, text=TAIL)
    client = client_for(viewer)
    assert client.get(point_url(point)).status_code == 200
    assert_error(
        client.post(POINTS, {"approval": str(api_review.pk), "text": TAIL}),
        403,
        "permission_denied",
    )
    assert_error(
        client.post(point_url(point, "reopen/"), {"reason": "x"}), 403, "permission_denied"
    )


def test_api_filters_points(api_review, reviewer, lead_client):
    first = review_point_raise(approval=api_review, actor=reviewer, text=TAIL, severity="critical")
    review_point_raise(approval=api_review, actor=reviewer, text="Minor", severity="minor")
    assert ids(lead_client.get(POINTS, {"severity": "critical"})) == {str(first.pk)}
    assert len(ids(lead_client.get(POINTS, {"approval_id": str(api_review.pk)}))) == 2
    assert ids(lead_client.get(POINTS, {"status": "resolved"})) == set()


def test_api_exports_the_review_memo(api_review, reviewer, teammate, lead, lead_client):
    point = review_point_raise(approval=api_review, actor=reviewer, text=TAIL)
    review_point_resolve(
        point=review_point_respond(point=point, actor=teammate, response=ANSWER), actor=reviewer
    )
    response = lead_client.post(f"{APPROVALS}{api_review.pk}/review-memo/", {"format": "both"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert [row["artefact_type"] for row in body] == ["markdown", "word"]
    assert all(row["download_url"].endswith("/download/") for row in body)
    bad = lead_client.post(f"{APPROVALS}{api_review.pk}/review-memo/", {"format": "pdf"})
    assert set(assert_error(bad, 400, "invalid")["errors"]) == {"format"}


def test_api_review_memo_is_scoped(api_review, outsider_client):
    response = outsider_client.post(f"{APPROVALS}{api_review.pk}/review-memo/", {})
    assert_error(response, 404, "not_found")


def _new_version(artefact, actor):
    from artefacts.services import artefact_new_version
    from tests.factories.states import upload

    return artefact_new_version(artefact=artefact, upload=upload(b"v2,a\n1,3\n"), actor=actor)
