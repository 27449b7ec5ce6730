"""Review points in the admin (APS X2): raised, answered, resolved and reopened on record.

Staff actuaries of the Actuaries group: the lead requests a sign-off of her reserve results,
the qualified reviewer challenges it from the approval page; the lead answers, the reviewer
resolves or reopens. Every move calls the services; a refusal is an error message and
changes nothing. An open point stops the approval, and the page says so before anyone clicks.
"""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.errors import APPROVAL_OPEN_POINTS
from approvals.models import Approval, ReviewPoint
from approvals.selectors import addressed_to_viewer, approval_decision_refusal
from approvals.services import (
    approval_reject,
    approval_request,
    review_point_raise,
    review_point_resolve,
    review_point_respond,
)
from artefacts.models import Artefact
from audit.choices import AuditAction
from engagements.services import engagement_activate
from records.formatting import person
from tests.admin_fixtures import (
    actuaries_group,
    count_queries,
    lead,
    lead_client,
    outsider,
    outsider_engagement,
    qualified_reviewer,
    reviewer_client,
)
from tests.factories.states import (
    NO_CONFLICT,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
)

__all__ = (
    "actuaries_group",
    "lead",
    "lead_client",
    "outsider",
    "outsider_engagement",
    "qualified_reviewer",
    "reviewer_client",
)

pytestmark = pytest.mark.django_db

POINT_TEXT = "The tail factor is not supported by the development beyond 108 months."
CHANGELIST = reverse("admin:approvals_reviewpoint_changelist")


@pytest.fixture
def active(engagement, lead):
    return engagement_activate(engagement=engagement, actor=lead)


@pytest.fixture
def results(active, lead):
    return artefact_in(active, actor=lead, name="Reserve results")


@pytest.fixture
def sign_off(results, lead):
    return approval_request(
        approval_type=ApprovalType.ACTUARIAL_SIGN_OFF, artefact=results, actor=lead
    )


@pytest.fixture
def point(sign_off, qualified_reviewer):
    return review_point_raise(
        approval=sign_off, actor=qualified_reviewer, text=POINT_TEXT, severity="major"
    )


def change_url(approval):
    return reverse("admin:approvals_approval_change", args=(approval.pk,))


def approval_move(approval, move):
    return reverse("admin:approvals_approval_move", args=(approval.pk, move))


def point_move(point, move):
    return reverse("admin:approvals_reviewpoint_move", args=(point.pk, move))


def with_next(url, approval):
    """Return a move's page that returns to the approval page afterwards."""
    return f"{url}?{urlencode({'next': change_url(approval)})}"


def actions(response, point):
    """Return the moves the approval page offers the viewer on `point`."""
    [row] = [r for r in response.context["review_points"].rows if r.point == point]
    return [css.removeprefix("review-point-") for _label, _url, css in row.actions]


class TestRaise:
    def test_the_reviewer_raises_a_point_from_the_approval_page(
        self, reviewer_client, sign_off, results, qualified_reviewer, active, lead
    ):
        page = reviewer_client.get(change_url(sign_off))
        section = page.context["review_points"]
        assert section.raise_url == with_next(
            approval_move(sign_off, "raise_review_point"), sign_off
        )
        assert 'id="raise-review-point"' in page.content.decode()
        other = artefact_in(active, actor=lead, name="Other results")

        form = reviewer_client.get(section.raise_url).context["form"]
        assert list(form.fields) == ["severity", "text", "artefact", "workflow_run"]
        assert set(form.fields["artefact"].queryset) == {results, other}
        assert form.fields["artefact"].initial == results.pk
        mark = audit_mark()

        response = reviewer_client.post(
            section.raise_url, {"severity": "major", "text": POINT_TEXT, "artefact": results.pk}
        )

        assert response.status_code == 302 and response.url == change_url(sign_off)
        point = ReviewPoint.objects.get(approval=sign_off)
        assert (point.severity, point.status, point.raised_by) == (
            "major",
            "open",
            qualified_reviewer,
        )
        assert point.artefact == results and point.text == POINT_TEXT
        [(level, text)] = admin_messages(response)
        assert level == "success" and text.startswith("Raise review point — Major point on")
        assert [e.action for e in audit_events_since(mark)] == [AuditAction.REVIEW_POINT_RAISE]

    def test_the_point_is_listed_with_its_severity_text_and_concerns(
        self, reviewer_client, sign_off, point, results
    ):
        html = reviewer_client.get(change_url(sign_off)).content.decode()
        assert 'id="review-points"' in html and "(1, 1 not resolved)" in html
        assert 'class="workspace-badge severity-major">Major' in html
        assert POINT_TEXT in html
        assert reverse("admin:approvals_reviewpoint_change", args=(point.pk,)) in html
        assert 'class="workspace-badge status-open">Open' in html

    def test_a_point_on_another_engagements_artefact_is_not_a_valid_choice(
        self, reviewer_client, sign_off, outsider_engagement
    ):
        theirs = outsider_engagement.outsider_artefact
        before = database_state()
        response = reviewer_client.post(
            approval_move(sign_off, "raise_review_point"),
            {"severity": "minor", "text": "Compare", "artefact": theirs.pk},
        )
        assert response.status_code == 200 and "artefact" in response.context["form"].errors
        assert database_state() == before

    def test_the_requester_is_not_offered_raising_and_is_refused(self, lead_client, sign_off, lead):
        page = lead_client.get(change_url(sign_off))
        assert page.context["review_points"].raise_url == ""
        warning = lead_client.get(approval_move(sign_off, "raise_review_point")).context[
            "move_warning"
        ]
        assert "they requested it" in warning
        before = database_state()
        response = lead_client.post(
            approval_move(sign_off, "raise_review_point"), {"severity": "minor", "text": "Mine"}
        )
        [(level, text)] = admin_messages(response)
        assert level == "error"
        assert text == (
            f"actuary may not raise review points on approval “{sign_off}”: they requested it "
            "(reviews must be independent)."
        )
        assert database_state() == before

    def test_a_point_needs_its_text(self, reviewer_client, sign_off):
        before = database_state()
        response = reviewer_client.post(
            approval_move(sign_off, "raise_review_point"), {"severity": "minor", "text": ""}
        )
        assert response.status_code == 200 and "text" in response.context["form"].errors
        assert database_state() == before


class TestOpenPointsStopTheApproval:
    def test_the_page_and_the_approve_page_say_so_before_anyone_clicks(
        self, reviewer_client, sign_off, point
    ):
        expected = APPROVAL_OPEN_POINTS.format(approval=sign_off, count=1, severities="1 major")
        assert approval_decision_refusal(approval=sign_off, user=point.raised_by) == expected
        page = reviewer_client.get(change_url(sign_off))
        # The page says it to the reviewer; Approve is not offered, Reject still is.
        assert page.context["decision_refusal"] == addressed_to_viewer(expected)
        assert page.context["decision_refusal"].startswith("You cannot approve this yet: 1 review")
        assert 'id="decision-refusal"' in page.content.decode()
        assert approval_move(sign_off, "approve") not in page.content.decode()
        assert approval_move(sign_off, "reject") in page.content.decode()
        assert (
            reviewer_client.get(approval_move(sign_off, "approve")).context["move_warning"]
            == expected
        )
        # Open points never stop a rejection: they may be its reason.
        assert (
            reviewer_client.get(approval_move(sign_off, "reject")).context["move_warning"] is None
        )

    def test_approving_is_refused_with_the_services_message(self, reviewer_client, sign_off, point):
        before = database_state()
        response = reviewer_client.post(
            approval_move(sign_off, "approve"), {"conflict_of_interest_statement": NO_CONFLICT}
        )
        assert response.status_code == 302 and response.url == change_url(sign_off)
        [(level, text)] = admin_messages(response)
        assert level == "error"
        assert text == APPROVAL_OPEN_POINTS.format(approval=sign_off, count=1, severities="1 major")
        assert database_state() == before

    def test_a_responded_point_still_stops_it(self, sign_off, point, lead, qualified_reviewer):
        review_point_respond(point=point, actor=lead, response="Tail removed.")
        refusal = approval_decision_refusal(approval=sign_off, user=qualified_reviewer)
        assert "1 review point(s) not resolved (1 major)" in refusal


class TestRespond:
    def test_the_preparer_is_offered_respond_and_answers(self, lead_client, sign_off, point, lead):
        page = lead_client.get(change_url(sign_off))
        assert actions(page, point) == ["respond"]
        url = with_next(point_move(point, "respond"), sign_off)
        assert url in page.content.decode().replace("&amp;", "&")
        assert list(lead_client.get(url).context["form"].fields) == ["response"]
        mark = audit_mark()

        response = lead_client.post(url, {"response": "Tail factor removed; see run 2."})

        assert response.status_code == 302 and response.url == change_url(sign_off)
        point.refresh_from_db()
        assert (point.status, point.responded_by, point.response) == (
            "responded",
            lead,
            "Tail factor removed; see run 2.",
        )
        assert [e.action for e in audit_events_since(mark)] == [AuditAction.REVIEW_POINT_RESPOND]
        assert (
            "Tail factor removed; see run 2."
            in lead_client.get(change_url(sign_off)).content.decode()
        )

    def test_a_response_is_required(self, lead_client, point):
        before = database_state()
        response = lead_client.post(point_move(point, "respond"), {"response": ""})
        assert response.status_code == 200 and "response" in response.context["form"].errors
        assert database_state() == before

    def test_the_reviewer_is_not_offered_respond_and_is_refused(
        self, reviewer_client, sign_off, point
    ):
        assert actions(reviewer_client.get(change_url(sign_off)), point) == []
        before = database_state()
        response = reviewer_client.post(point_move(point, "respond"), {"response": "Fine"})
        [(level, text)] = admin_messages(response)
        assert level == "error"
        assert text == (
            f"reviewer may not respond to review point “{point}”: they raised it (a challenge is "
            "answered and accepted by different people)."
        )
        assert database_state() == before


@pytest.fixture
def answered(point, lead):
    return review_point_respond(point=point, actor=lead, response="Tail factor removed.")


class TestResolveAndReopen:
    def test_the_reviewer_is_offered_resolve_and_reopen_and_resolves(
        self, reviewer_client, sign_off, answered, qualified_reviewer
    ):
        assert actions(reviewer_client.get(change_url(sign_off)), answered) == ["resolve", "reopen"]
        mark = audit_mark()

        response = reviewer_client.post(
            with_next(point_move(answered, "resolve"), sign_off), {"notes": "Agreed."}
        )

        assert response.status_code == 302 and response.url == change_url(sign_off)
        answered.refresh_from_db()
        assert (answered.status, answered.resolved_by, answered.resolution_notes) == (
            "resolved",
            qualified_reviewer,
            "Agreed.",
        )
        assert [e.action for e in audit_events_since(mark)] == [AuditAction.REVIEW_POINT_RESOLVE]
        page = reviewer_client.get(change_url(sign_off))
        assert page.context["decision_refusal"] is None
        # People are named as people read them (records.formatting.person).
        assert f"resolved by {person(qualified_reviewer)}" in page.content.decode()
        assert actions(page, answered) == ["reopen"]

        response = reviewer_client.post(
            approval_move(sign_off, "approve"), {"conflict_of_interest_statement": NO_CONFLICT}
        )
        sign_off.refresh_from_db()
        assert sign_off.status == "approved"

    def test_the_preparer_may_not_resolve(self, lead_client, sign_off, answered):
        assert actions(lead_client.get(change_url(sign_off)), answered) == []
        before = database_state()
        response = lead_client.post(point_move(answered, "resolve"), {"notes": ""})
        [(level, text)] = admin_messages(response)
        assert level == "error" and "they answered it" in text
        assert database_state() == before

    def test_reopen_needs_a_reason_then_opens_the_point_again(
        self, reviewer_client, sign_off, answered, qualified_reviewer
    ):
        review_point_resolve(point=answered, actor=qualified_reviewer)
        before = database_state()
        page = reviewer_client.post(point_move(answered, "reopen"), {"reason": ""})
        assert page.status_code == 200 and "reason" in page.context["form"].errors
        assert database_state() == before

        response = reviewer_client.post(
            with_next(point_move(answered, "reopen"), sign_off),
            {"reason": "The 2020 diagonal was restated."},
        )

        assert response.status_code == 302 and response.url == change_url(sign_off)
        answered.refresh_from_db()
        assert (answered.status, answered.reopen_reason) == (
            "open",
            "The 2020 diagonal was restated.",
        )
        html = reviewer_client.get(change_url(sign_off)).content.decode()
        assert "Reopened: The 2020 diagonal was restated." in html

    def test_a_decided_approval_offers_no_moves(
        self, reviewer_client, sign_off, point, qualified_reviewer
    ):
        approval_reject(
            approval=sign_off,
            actor=qualified_reviewer,
            reason="Tail unsupported",
            conflict_of_interest_statement=NO_CONFLICT,
        )
        section = reviewer_client.get(change_url(sign_off)).context["review_points"]
        assert section.raise_url == "" and section.rows[0].actions == []
        response = reviewer_client.post(point_move(point, "reopen"), {"reason": "Again"})
        [(level, text)] = admin_messages(response)
        assert level == "error" and "it is rejected" in text


class TestMemo:
    def test_export_stores_markdown_and_word_and_links_them(
        self, reviewer_client, sign_off, answered, qualified_reviewer
    ):
        review_point_resolve(point=answered, actor=qualified_reviewer)
        section = reviewer_client.get(change_url(sign_off)).context["review_points"]
        form = reviewer_client.get(section.export_url).context["form"]
        assert form.fields["format"].initial == "both"
        mark = audit_mark()

        response = reviewer_client.post(section.export_url, {"format": "both"})

        assert response.status_code == 302 and response.url == change_url(sign_off)
        memos = Artefact.objects.filter(metadata__review_memo_of=str(sign_off.pk))
        assert {memo.file_name for memo in memos} == {"review_memo.md", "review_memo.docx"}
        [(level, text)] = admin_messages(response)
        assert level == "success" and text.startswith("Review memo exported: ")
        for memo in memos:
            assert reverse("admin:artefacts_artefact_change", args=(memo.pk,)) in text
        assert AuditAction.DATA_EXPORT in [e.action for e in audit_events_since(mark)]
        page = reviewer_client.get(change_url(sign_off))
        assert set(page.context["review_points"].memos) == set(memos)
        assert 'id="review-memos"' in page.content.decode()

    def test_no_points_no_export_button(self, reviewer_client, sign_off):
        assert reviewer_client.get(change_url(sign_off)).context["review_points"].export_url == ""


class TestReviewPointAdmin:
    def test_the_changelist_filters_by_status_and_severity(
        self, reviewer_client, sign_off, point, answered, qualified_reviewer
    ):
        minor = review_point_raise(approval=sign_off, actor=qualified_reviewer, text="Typo")
        listed = reviewer_client.get(CHANGELIST).context["cl"].result_list
        assert set(listed) == {point, minor}
        by_status = reviewer_client.get(CHANGELIST, {"status__exact": "open"})
        assert list(by_status.context["cl"].result_list) == [minor]
        by_severity = reviewer_client.get(CHANGELIST, {"severity__exact": "major"})
        assert list(by_severity.context["cl"].result_list) == [point]

    def test_a_point_page_is_read_only_with_its_moves(self, reviewer_client, answered):
        page = reviewer_client.get(
            reverse("admin:approvals_reviewpoint_change", args=(answered.pk,))
        )
        assert page.status_code == 200
        assert list(page.context["adminform"].form.fields) == []
        html = page.content.decode()
        assert point_move(answered, "resolve") in html and point_move(answered, "reopen") in html
        assert point_move(answered, "respond") not in html

    def test_points_are_never_added_or_deleted_here(self, reviewer_client, point):
        assert reviewer_client.get(reverse("admin:approvals_reviewpoint_add")).status_code == 403
        delete = reverse("admin:approvals_reviewpoint_delete", args=(point.pk,))
        assert reviewer_client.post(delete, {"post": "yes"}).status_code == 403
        assert ReviewPoint.objects.filter(pk=point.pk).exists()

    def test_bulk_resolve_resolves_each_and_reports_refusals(
        self, reviewer_client, sign_off, answered, point, qualified_reviewer
    ):
        still_open = review_point_raise(approval=sign_off, actor=qualified_reviewer, text="Typo")
        selection = {
            "action": "move_resolve",
            "_selected_action": [answered.pk, still_open.pk],
            "apply": "1",
            "notes": "",
        }
        response = reviewer_client.post(CHANGELIST, selection)
        assert response.status_code == 302
        answered.refresh_from_db()
        still_open.refresh_from_db()
        assert (answered.status, still_open.status) == ("resolved", "open")
        messages = admin_messages(response)
        assert ("success", "Resolve: done for 1 review point.") in messages
        assert any(level == "error" and "Cannot resolve" in text for level, text in messages)


def test_the_approval_page_costs_the_same_with_many_points(
    reviewer_client, sign_off, qualified_reviewer, lead, active
):
    run = run_in(active, actor=lead, name="Chain ladder")

    def raise_points(count):
        for number in range(count):
            point = review_point_raise(
                approval=sign_off,
                actor=qualified_reviewer,
                text=f"Point {number}",
                severity=("minor", "major", "critical")[number % 3],
                artefact=sign_off.artefact,
                workflow_run=run,
            )
            if number % 2:
                review_point_respond(point=point, actor=lead, response=f"Answer {number}")

    url = change_url(sign_off)
    raise_points(3)
    few, _ = count_queries(reviewer_client, url)
    raise_points(30)
    many, response = count_queries(reviewer_client, url)
    assert len(response.context["review_points"].rows) == 33
    assert many == few, f"{few} queries with 3 points, {many} with 33"


def test_the_dashboard_warns_of_open_points(reviewer_client, sign_off, point):
    [item] = reviewer_client.get(reverse("admin:index")).context["dashboard"].pending_approvals
    assert item.approval == sign_off
    assert item.refusal == APPROVAL_OPEN_POINTS.format(
        approval=sign_off, count=1, severities="1 major"
    )
    assert Approval.objects.get(pk=sign_off.pk).status == "pending"
