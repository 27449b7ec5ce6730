"""Professional standards in a real browser: review points, independence, data reliance,
disclosures and a replay (issue 10's main path).

Alice (lead actuary, FIA) ran a chain ladder on the RAA triangle; it waits for its workflow
approval. Bob (reviewer, FCAS) raises a major review point and cannot approve while it is
open; Alice answers, Bob resolves it, exports the review memo and approves with his
conflict-of-interest statement. Alice records the triangle in the data reliance register,
pre-fills, edits and completes the disclosure checklist and requests the final sign-off;
Bob approves it with the frozen checklist in front of him. Alice replays the run from its
page: every output matches. A second test: Bob started a run himself, and is refused its
approval with a message naming the run. Screenshots of each step: test-output/e2e/<test>/.
"""

import datetime

import pytest
from django.core.files.base import ContentFile

from approvals.models import Approval, DisclosureChecklist, ReviewPoint
from artefacts.choices import ArtefactType
from artefacts.models import Artefact, DataReliance
from artefacts.services import artefact_create
from engagements.services import engagement_activate, engagement_create
from workflows.choices import WorkflowType
from workflows.models import ReplayRecord
from workflows.reserving import sample_triangle_csv
from workflows.services import workflow_run_create, workflow_run_queue, workflow_run_start

from .conftest import choose

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POINT = "Mack's tail is not tested: show that no tail factor is needed beyond 120 months."
ANSWER = "Development from 108 to 120 months is 1.0009; a tail test is in the run's notes."
COI = "No conflict: I took no part in this engagement's data, runs or reports."


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def engagement_with_waiting_run(alice, bob):
    """Return the engagement and Alice's chain ladder run on RAA, waiting for its approval.

    Made through the services (the browser path to here is issue 9's test); queueing runs
    the calculation at once (immediate task backend) in Alice's name.
    """
    engagement = engagement_create(
        client_code="ACME",
        client_name="Acme General Insurance plc",
        name="FY2025 reserve review",
        engagement_type="reserving",
        period_end=datetime.date(2025, 12, 31),
        due_date=datetime.date.today() + datetime.timedelta(days=14),
        lead_actuary=alice,
        reviewer=bob,
        actor=alice,
    )
    engagement = engagement_activate(engagement=engagement, actor=alice)
    triangle = artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_triangle_csv("raa", layout="long"), name="raa_triangle.csv"),
        actor=alice,
        name="RAA general liability triangle",
        artefact_type=ArtefactType.TRIANGLE,
    )
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name="Chain ladder with Mack: RAA",
        input_params={
            "triangle_artefact": str(triangle.pk),
            "cumulative": True,
            "measure": "incurred",
            "allow_negative_development": True,
        },
        actor=alice,
    )
    workflow_run_queue(run=run, actor=alice)
    run.refresh_from_db()
    assert run.status == "waiting_approval", run.error_message
    return engagement, run


def message(page, level):
    """Return the admin's message of `level` (not the approval page's "You may decide" note)."""
    return page.locator(f"ul.messagelist:not(#decision-allowed) li.{level}")


def approval_page(page, approval):
    page.goto(f"/admin/approvals/approval/{approval.pk}/change/")


def submit(page, selector):
    with page.expect_navigation():
        page.click(selector)


def submit_to(page, url):
    """Open a move's page by its address (the page offers no button for it)."""
    page.goto(url)


def test_review_points_reliance_disclosures_and_a_replay(sign_in, alice, bob, screenshots):
    engagement, run = engagement_with_waiting_run(alice, bob)
    approval = Approval.objects.get(workflow_run=run)

    # The reviewer raises a major point from the approval page.
    review = sign_in(bob)
    with review.expect_navigation():
        review.locator("#dashboard-approvals a", has_text="Workflow approval").click()
    expect(review.locator("#decision-allowed")).to_contain_text("You may decide")
    screenshots.take(review, "approval-before-review")
    submit(review, "#raise-review-point")
    review.select_option("#id_severity", "major")
    review.fill("#id_text", POINT)
    screenshots.take(review, "raise-point-form")
    submit(review, "input[type=submit][value='Raise review point']")
    expect(message(review, "success")).to_contain_text("Raise review point")
    points = review.locator("#review-points-table")
    expect(points).to_contain_text(POINT)
    expect(points.locator(".severity-major")).to_have_text("Major")
    expect(points.locator(".status-open")).to_have_text("Open")
    expect(review.locator("#decision-refusal")).to_contain_text(
        "1 review point(s) not resolved (1 major)"
    )
    screenshots.take(review, "point-raised")

    # Approving is refused while it is open: the page offers no Approve (Reject stays), the
    # approve page opened by hand warns, and the decision says why.
    expect(review.locator("a[href$='/move/approve/']")).to_have_count(0)
    expect(review.locator("a[href$='/move/reject/']")).to_have_count(1)
    submit_to(review, f"/admin/approvals/approval/{approval.pk}/move/approve/")
    expect(review.locator("#move-warning")).to_contain_text("not resolved (1 major)")
    review.fill("#id_conflict_of_interest_statement", COI)
    submit(review, "input[type=submit][value=Approve]")
    refusal = message(review, "error")
    expect(refusal).to_contain_text("Cannot approve approval")
    expect(refusal).to_contain_text("1 review point(s) not resolved (1 major)")
    screenshots.take(review, "approval-refused-while-open")
    approval.refresh_from_db()
    assert approval.status == "pending"

    # The preparer answers it.
    page = sign_in(alice)
    approval_page(page, approval)
    expect(page.locator("#decision-refusal")).to_contain_text("you requested it")
    submit(page, "a.review-point-respond")
    page.fill("#id_response", ANSWER)
    submit(page, "input[type=submit][value=Respond]")
    expect(message(page, "success")).to_contain_text("now responded")
    expect(page.locator("#review-points-table")).to_contain_text(ANSWER)
    screenshots.take(page, "point-answered")

    # The reviewer resolves it, exports the memo, and approves with his statement.
    approval_page(review, approval)
    submit(review, "a.review-point-resolve")
    review.fill("#id_notes", "Accepted: the tail test supports no tail factor.")
    submit(review, "input[type=submit][value=Resolve]")
    expect(review.locator("#review-points-table .status-resolved")).to_have_text("Resolved")
    expect(review.locator("#decision-allowed")).to_contain_text("You may decide")
    screenshots.take(review, "point-resolved")
    submit(review, "#export-review-memo")
    submit(review, "input[type=submit][value='Export review memo']")
    exported = message(review, "success")
    expect(exported).to_contain_text("Review memo exported")
    expect(exported.locator("a.review-memo-link")).to_have_count(2)
    expect(review.locator("#review-memos")).to_contain_text("review_memo.docx")
    screenshots.take(review, "memo-exported")
    submit(review, "a[href$='/move/approve/']")
    review.fill("#id_conflict_of_interest_statement", COI)
    review.fill("#id_notes", "Chain ladder agrees with Mack (1994); the point is resolved.")
    submit(review, "input[type=submit][value=Approve]")
    expect(message(review, "success")).to_contain_text("now approved")
    screenshots.take(review, "approved-with-statement")
    approval.refresh_from_db()
    assert approval.conflict_of_interest_statement == COI
    assert ReviewPoint.objects.get(approval=approval).status == "resolved"

    # The lead records the triangle in the data reliance register.
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    reliance = page.locator("#data-reliance")
    expect(reliance.locator("tr.reliance-missing")).to_contain_text(
        "RAA general liability triangle"
    )
    expect(page.locator("#final-sign-off-needs")).to_contain_text(
        "1 of 1 input data artefact(s) have no data reliance entry"
    )
    page.locator("#data-reliance").scroll_into_view_if_needed()
    screenshots.take(page, "reliance-missing")
    submit(page, "#data-reliance a.record-reliance")
    page.select_option("#id_provider_type", "client")
    page.fill("#id_provider_name", "Acme General Insurance plc")
    page.fill("#id_data_as_of", "31/12/2025")
    page.fill("#id_checks_performed", "Reconciled to the general ledger; 1981 totals agreed.")
    page.fill("#id_known_limitations", "Incurred includes case reserves set by the client.")
    page.check("#id_reviewed")
    screenshots.take(page, "reliance-form")
    submit(page, "input[name=_save]")
    expect(message(page, "success")).to_contain_text("Data reliance recorded")
    expect(reliance.locator("tr.reliance-row")).to_contain_text("Acme General Insurance plc")
    expect(reliance.locator("tr.reliance-missing")).to_have_count(0)
    screenshots.take(page, "reliance-recorded")
    assert DataReliance.objects.get(engagement=engagement).created_by == alice

    # The lead pre-fills the disclosure checklist, edits it and completes it.
    submit(page, "#prefill-disclosures-button")
    expect(message(page, "success")).to_contain_text("Pre-fill disclosure checklist")
    expect(page.locator("#disclosure-checklist")).to_contain_text("Draft")
    submit(page, "#edit-disclosures")
    expect(page.locator(".reliance-snapshot-table")).to_contain_text(
        "RAA general liability triangle"
    )
    page.fill("#id_other_disclosures", "Reserves are gross of reinsurance; amounts in USD '000.")
    screenshots.take(page, "checklist-edit")
    submit(page, "input[name=_save]")
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    submit(page, "#complete-disclosures-button")
    expect(message(page, "success")).to_contain_text("now completed")
    expect(page.locator("#final-sign-off-ready")).to_contain_text("Ready")
    page.locator("#final-sign-off").scroll_into_view_if_needed()
    screenshots.take(page, "checklist-completed")

    # The lead requests the final sign-off: the checklist is frozen into it.
    submit(page, "#request-final-sign-off")
    expect(page.locator("#id_approval_type")).to_have_value("final_sign_off")
    submit(page, "input[name=_continue]")
    expect(message(page, "success")).to_contain_text("was added successfully")
    frozen = page.locator("#frozen-disclosures")
    expect(frozen).to_contain_text("RAA general liability triangle")
    expect(frozen).to_contain_text("gross of reinsurance")
    final = Approval.objects.get(approval_type="final_sign_off")
    assert DisclosureChecklist.objects.get(frozen_into=final).is_frozen

    # The reviewer approves the final sign-off with the frozen checklist in front of him.
    review.goto("/admin/")
    with review.expect_navigation():
        review.locator("#dashboard-approvals a", has_text="Final sign-off").click()
    frozen = review.locator("#frozen-disclosures")
    expect(frozen.locator(".disclosure-responsible-actuary")).to_contain_text("Alice Fairweather")
    expect(frozen.locator(".disclosure-information-date")).to_have_text("2025-12-31")
    expect(frozen.locator(".reliance-snapshot")).to_contain_text("Acme General Insurance plc")
    expect(frozen).to_contain_text("gross of reinsurance")
    screenshots.take(review, "final-sign-off-frozen-checklist")
    submit(review, "a[href$='/move/approve/']")
    review.fill("#id_conflict_of_interest_statement", COI)
    submit(review, "input[type=submit][value=Approve]")
    expect(message(review, "success")).to_contain_text("now approved")
    expect(review.locator("#frozen-disclosures")).to_be_visible()
    screenshots.take(review, "final-sign-off-approved")
    final.refresh_from_db()
    assert final.status == "approved" and final.approver == bob

    # The lead replays the reserving run from its page: every output matches.
    page.goto(f"/admin/workflows/workflowrun/{run.pk}/change/")
    expect(page.locator("#provenance-inputs")).to_contain_text("RAA general liability triangle")
    expect(page.locator("#run-replays")).to_contain_text("Not replayed yet")
    submit(page, "button[name=move][value=replay]")
    expect(message(page, "success")).to_contain_text(
        "matched — all 3 output(s) reproduced byte for byte"
    )
    replay = page.locator("#run-replays .run-replay").first
    expect(replay.locator(".workspace-badge.matched").first).to_have_text("matched")
    expect(replay.locator("tr.replay-output")).to_have_count(3)
    expect(replay.locator("tr.replay-mismatch")).to_have_count(0)
    page.locator("#run-provenance").scroll_into_view_if_needed()
    screenshots.take(page, "replay-matched")
    assert ReplayRecord.objects.get(run=run).matched


def test_a_reviewer_who_started_the_run_is_refused_naming_it(sign_in, alice, bob, screenshots):
    engagement = engagement_create(
        client_code="NORD",
        client_name="Nordic Mutual",
        name="Tail study",
        engagement_type="reserving",
        lead_actuary=alice,
        reviewer=bob,
        actor=alice,
    )
    engagement = engagement_activate(engagement=engagement, actor=alice)
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.CUSTOM,
        name="Tail factor selection",
        description="Spreadsheet study of the tail beyond 120 months.",
        step_count=2,
        actor=alice,
    )

    # Bob helps out: he starts the spreadsheet run himself. A custom run has no runner, so
    # its progress is reported through the API (the admin offers no Start for it).
    workflow_run_start(run=run, actor=bob)
    review = sign_in(bob)
    review.goto(f"/admin/workflows/workflowrun/{run.pk}/change/")
    expect(review.locator("button[name=move][value=start]")).to_have_count(0)
    expect(review.locator("#run-progress")).to_contain_text("Running")
    expect(review.locator("#run-progress")).to_contain_text("by bob")
    screenshots.take(review, "run-started-by-reviewer")

    # Alice asks for the run's workflow approval from the engagement page.
    page = sign_in(alice)
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    submit(page, "text=Request sign-off")
    page.select_option("#id_approval_type", "workflow_approval")
    choose(page, "id_workflow_run", "Tail factor selection")
    page.fill("#id_request_notes", "Please review the tail selection.")
    screenshots.take(page, "request-form")
    submit(page, "input[name=_continue]")
    expect(message(page, "success")).to_contain_text("was added successfully")
    approval = Approval.objects.get(workflow_run=run)

    # Bob is told before clicking, and refused on deciding, naming the run he started.
    approval_page(review, approval)
    naming = "they started workflow run “Tail factor selection” (reviews must be independent)"
    # The page says it to him, and offers him no decision to press in vain.
    expect(review.locator("#decision-refusal")).to_contain_text(
        "You may not decide this approval: you started workflow run “Tail factor selection”"
    )
    expect(review.locator("a[href$='/move/approve/']")).to_have_count(0)
    expect(review.locator("#raise-review-point")).to_have_count(0)
    screenshots.take(review, "refusal-before-clicking")
    submit_to(review, f"/admin/approvals/approval/{approval.pk}/move/approve/")
    expect(review.locator("#move-warning")).to_contain_text(naming)
    review.fill("#id_conflict_of_interest_statement", "I only started the spreadsheet run.")
    submit(review, "input[type=submit][value=Approve]")
    refusal = message(review, "error")
    # The admin shows messages with a capital first letter ("Bob may not …").
    expect(refusal).to_contain_text(f"Bob may not decide approval “{approval}”")
    expect(refusal).to_contain_text(naming)
    screenshots.take(review, "refused-naming-the-run")
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert not Artefact.objects.filter(engagement=engagement).exists()
