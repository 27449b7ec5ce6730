"""A working day in the admin, in a real browser: from a new engagement to signed-off reserves.

The lead actuary (Alice) opens and activates an engagement, uploads the RAA triangle and
runs a chain ladder; the run waits for its workflow approval, which Alice may not give
herself; the reviewer (Bob, FCAS) approves it and the run completes with its results,
chart and timeline. A second test requests a review of an artefact from its page and has
it rejected with a reason. Screenshots of each step: test-output/e2e/<test>/.
"""

import datetime

import pytest
from django.utils import timezone

from approvals.models import Approval
from artefacts.models import Artefact
from engagements.models import Engagement
from tests.factories.states import artefact_in
from workflows.models import WorkflowRun
from workflows.reserving import sample_triangle_csv

from .conftest import choose

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Mack (1994) on RAA: total IBNR 52,135 (chain ladder, volume-weighted, no tail).
RAA_TOTAL_IBNR = "52,135"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_engagement(page, alice, bob, screenshots):
    """Create the engagement in the add form, then activate it with its button."""
    page.goto("/admin/engagements/engagement/add/")
    page.fill("#id_client_code", "ACME")
    page.fill("#id_client_name", "Acme General Insurance plc")
    page.fill("#id_name", "FY2025 reserve review")
    page.select_option("#id_engagement_type", "reserving")
    due = timezone.localdate() + datetime.timedelta(days=14)
    page.fill("#id_due_date", due.strftime("%d/%m/%Y"))
    choose(page, "id_lead_actuary", alice.username)
    choose(page, "id_reviewer", bob.username)
    screenshots.take(page, "engagement-form")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    with page.expect_navigation():
        page.click("button[name=move][value=activate]")
    expect(page.locator(".messagelist .success")).to_contain_text("now active")
    screenshots.take(page, "engagement-active")
    return Engagement.objects.get(client_code="ACME")


def upload_triangle(page, tmp_path, screenshots):
    """Upload the RAA triangle from the engagement page's "Upload artefact" link."""
    triangle = tmp_path / "raa_triangle.csv"
    triangle.write_bytes(sample_triangle_csv("raa", layout="long"))
    with page.expect_navigation():
        page.click("text=Upload artefact")
    page.select_option("#id_artefact_type", "triangle")
    page.fill("#id_name", "RAA general liability triangle")
    page.set_input_files("#id_file", str(triangle))
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("#artefact-preview")).to_contain_text("1981")
    screenshots.take(page, "triangle-uploaded")
    return Artefact.objects.get(name="RAA general liability triangle")


def create_and_queue_run(page, engagement, screenshots):
    """Create a reserve calculation with the reserving fields, then queue it from its page."""
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    with page.expect_navigation():
        page.click("text=New workflow run")
    page.select_option("#id_workflow_type", "reserve_calculation")
    page.fill("#id_name", "Chain ladder with Mack: RAA")
    page.fill("#id_period", "2025-12")
    page.select_option(
        "#id_triangle_artefact",
        label=page.locator(
            "#id_triangle_artefact option", has_text="RAA general liability triangle"
        ).first.inner_text(),
    )
    page.select_option("#id_cumulative", "true")
    page.select_option("#id_measure", "incurred")
    # RAA has one negative development (1982, 72 to 84 months).
    page.check("#id_allow_negative_development")
    screenshots.take(page, "run-form")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    expect(page.locator("#run-progress")).to_contain_text("Pending")
    run = WorkflowRun.objects.get(name="Chain ladder with Mack: RAA")
    # The immediate task backend runs the calculation in the request that queues it.
    with page.expect_navigation():
        page.click("button[name=move][value=queue]")
    expect(page.locator("#run-progress")).to_contain_text("Waiting for approval")
    expect(page.locator("#run-progress")).to_contain_text("100% · step 4 of 4")
    screenshots.take(page, "run-waiting-for-approval")
    return run


def test_a_reserving_run_from_upload_to_sign_off(sign_in, alice, bob, screenshots, tmp_path):
    page = sign_in(alice)
    screenshots.take(page, "dashboard-lead")
    engagement = open_engagement(page, alice, bob, screenshots)
    upload_triangle(page, tmp_path, screenshots)
    run = create_and_queue_run(page, engagement, screenshots)
    approval = Approval.objects.get(workflow_run=run)
    assert approval.status == "pending" and approval.requested_by == alice

    # The refusal path: the lead may not approve her own work. The page says so, to her,
    # and offers no Approve; the approve page, opened by hand, is refused by the service.
    page.click("#run-approvals a")
    expect(page.locator("#decision-refusal")).to_contain_text("you requested it")
    expect(page.locator("a[href$='/move/approve/']")).to_have_count(0)
    with page.expect_navigation():
        page.goto(f"/admin/approvals/approval/{approval.pk}/move/approve/")
    expect(page.locator("#move-warning")).to_contain_text("reviews must be independent")
    page.fill("#id_conflict_of_interest_statement", "None.")
    page.fill("#id_notes", "Looks right to me")
    with page.expect_navigation():
        page.click("input[type=submit][value=Approve]")
    refusal = page.locator(".messagelist .error")
    expect(refusal).to_contain_text("may not decide approval")
    expect(refusal).to_contain_text("they requested it (reviews must be independent)")
    screenshots.take(page, "own-approval-refused")
    approval.refresh_from_db()
    assert approval.status == "pending"

    # The reviewer finds it on his dashboard and approves it with notes.
    review = sign_in(bob)
    expect(review.locator("#dashboard-approvals")).to_contain_text("Workflow approval")
    expect(review.locator("#dashboard-due")).to_contain_text("FY2025 reserve review")
    screenshots.take(review, "dashboard-reviewer")
    with review.expect_navigation():
        review.locator("#dashboard-approvals a", has_text="Workflow approval").click()
    expect(review.locator("#decision-allowed")).to_contain_text("You may decide")
    with review.expect_navigation():
        review.click("a[href$='/move/approve/']")
    review.fill(
        "#id_conflict_of_interest_statement",
        "No conflict: I took no part in this engagement's data or runs.",
    )
    review.fill("#id_notes", "Chain ladder agrees with Mack (1994); tail not needed.")
    with review.expect_navigation():
        review.click("input[type=submit][value=Approve]")
    expect(review.locator(".messagelist .success")).to_contain_text("now approved")
    screenshots.take(review, "approved")

    run.refresh_from_db()
    assert run.status == "completed"
    review.goto(f"/admin/workflows/workflowrun/{run.pk}/change/")
    expect(review.locator("#run-progress")).to_contain_text("Completed")
    expect(review.locator("tr.reserve-origin")).to_have_count(10)
    expect(review.locator("tr.reserve-total")).to_contain_text(RAA_TOTAL_IBNR)
    expect(review.locator("#development-factors tr.ldf-row")).to_contain_text("2.9994")
    chart = review.locator("img.run-chart")
    expect(chart).to_have_count(1)
    chart.scroll_into_view_if_needed()
    review.wait_for_function("document.querySelector('img.run-chart').naturalWidth > 0")
    screenshots.take(review, "run-completed")

    review.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    expect(review.locator("#engagement-timeline")).to_contain_text(
        "Bob Castellano (FCAS) approved the workflow approval of run"
    )
    with review.expect_navigation():
        review.click("a.workspace-timeline-link")
    timeline = review.locator("#timeline")
    expect(timeline).to_contain_text("Bob Castellano completed workflow run")
    expect(timeline).to_contain_text("Status: Pending → Approved")
    screenshots.take(review, "timeline")


def test_an_artefact_review_requested_and_rejected_with_a_reason(sign_in, alice, bob, screenshots):
    from engagements.services import engagement_activate, engagement_create

    engagement = engagement_create(
        client_code="NORD",
        client_name="Nordic Life",
        name="CSM roll-forward",
        lead_actuary=alice,
        reviewer=bob,
        actor=alice,
    )
    engagement_activate(engagement=engagement, actor=alice)
    report = artefact_in(engagement, actor=alice, name="CSM report", content=b"# CSM\n")

    page = sign_in(alice)
    page.goto(f"/admin/artefacts/artefact/{report.pk}/change/")
    with page.expect_navigation():
        page.click("a[href$='/move/request_approval/']")
    page.select_option("#id_approval_type", "actuarial_sign_off")
    page.select_option(
        "#id_designated_approver",
        label=page.locator("#id_designated_approver option", has_text="bob").inner_text(),
    )
    page.fill("#id_request_notes", "Sign-off before the audit committee.")
    screenshots.take(page, "request-form")
    with page.expect_navigation():
        page.click("input[type=submit][value='Request approval']")
    expect(page.locator(".messagelist .success")).to_contain_text("now pending")
    screenshots.take(page, "requested")

    review = sign_in(bob)
    expect(review.locator("#dashboard-approvals")).to_contain_text("designated to me")
    with review.expect_navigation():
        review.locator("#dashboard-approvals a", has_text="Actuarial sign-off").click()
    with review.expect_navigation():
        review.click("a[href$='/move/reject/']")
    review.fill("#id_reason", "Cut-off date wrong")
    review.fill("#id_conflict_of_interest_statement", "No conflict.")
    with review.expect_navigation():
        review.click("input[type=submit][value=Reject]")
    expect(review.locator(".messagelist .success")).to_contain_text("now rejected")
    screenshots.take(review, "rejected")
    report.refresh_from_db()
    assert report.status == "rejected"
