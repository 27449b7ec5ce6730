"""The guided reserving analysis in a real browser: a client's file to signed-off reserves.

Alice (lead) starts "New reserving analysis" from the engagement page, uploads the
client's RAA triangle with its own headers (AccidentYear, DevMonths, PaidLoss), maps
its columns while the preview names each problem by its cell, runs a chain ladder,
re-runs it with an excluded link ratio and an overridden factor, and runs a
Bornhuetter-Ferguson with an exposure file she uploads on the way. Bob (FCAS) signs the
re-run off. The immediate task backend executes each run in the request that queues it.
Screenshots of each step: test-output/e2e/<test>/.
"""

import openpyxl
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from approvals.models import Approval
from artefacts.services import artefact_create
from engagements.services import engagement_activate, engagement_create
from workflows.models import WorkflowRun
from workflows.reserving import sample_triangle_csv

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLIENT_HEADER = b"AccidentYear,DevMonths,PaidLoss"
# Earned premium by accident year for the BF a-priori (a made-up but plausible book).
PREMIUM = "AccidentYear,EarnedPremium\n" + "\n".join(
    f"{year},{30000 + 1500 * (year - 1981)}" for year in range(1981, 1991)
)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def settle(page):
    """Wait until htmx has swapped in its answer (no request in flight)."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("!document.querySelector('.htmx-request')")


@pytest.fixture
def engagement(alice, bob):
    engagement = engagement_create(
        client_code="ACME",
        client_name="Acme General Insurance plc",
        name="FY2025 reserve review",
        lead_actuary=alice,
        reviewer=bob,
        actor=alice,
    )
    return engagement_activate(engagement=engagement, actor=alice)


def client_files(tmp_path):
    triangle = tmp_path / "acme_paid_triangle.csv"
    raa = sample_triangle_csv("raa", layout="long")
    triangle.write_bytes(CLIENT_HEADER + raa[raa.index(b"\n") :])
    premium = tmp_path / "acme_earned_premium.csv"
    premium.write_text(PREMIUM + "\n")
    return triangle, premium


def map_columns(page, screenshots, *, first_time: bool):
    """Step 2: the headers are recognised; a wrong mapping and the negative development
    are named by cell; ticking the box gives the triangle."""
    expect(page.locator("#id_origin")).to_have_value("AccidentYear")
    expect(page.locator("#id_development")).to_have_value("DevMonths")
    expect(page.locator("#id_value")).to_have_value("PaidLoss")
    problems = page.locator("#triangle-problems")
    # RAA falls from 15,599 to 15,496 for 1982 between 72 and 84 months.
    expect(problems).to_contain_text("row 18, column C ('PaidLoss'): negative development")
    expect(problems).to_contain_text("tick “Allow negative development”")
    if first_time:
        screenshots.take(page, "columns-recognised-negative-development")
        page.select_option("#id_value", "DevMonths")
        settle(page)
        expect(problems).to_contain_text("the value column is mapped to 'DevMonths'")
        screenshots.take(page, "columns-wrong-mapping")
        page.select_option("#id_value", "PaidLoss")
        settle(page)
    page.check("#id_allow_negative_development")
    settle(page)
    grid = page.locator("#triangle-grid")
    expect(grid.locator("tbody tr")).to_have_count(10)
    expect(grid).to_contain_text("18,834")  # 1981 at 120 months
    expect(page.locator("#triangle-warnings")).to_contain_text("negative development")
    if first_time:
        screenshots.take(page, "columns-triangle-preview")
    with page.expect_navigation():
        page.click("#to-method")


def test_a_client_file_to_signed_off_chain_ladder_and_bf(
    sign_in, alice, bob, engagement, screenshots, tmp_path
):
    triangle_file, premium_file = client_files(tmp_path)
    page = sign_in(alice)
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    with page.expect_navigation():
        page.click("text=New reserving analysis")
    screenshots.take(page, "step-1-triangle")

    # 1. Upload the client's file.
    page.set_input_files("#id_file", str(triangle_file))
    page.fill("#id_name", "Acme paid triangle")
    with page.expect_navigation():
        page.click("#upload-button")
    expect(page.locator(".messagelist .success")).to_contain_text("Acme paid triangle")

    # 2. Map the columns.
    map_columns(page, screenshots, first_time=True)

    # 3. Chain ladder, and Run.
    expect(page.locator("#link-ratios tbody tr")).to_have_count(10 + 4 + 3 + 3)
    page.fill("#id_name", "Acme chain ladder")
    page.fill("#id_period", "2025-12")
    screenshots.take(page, "step-3-method")
    with page.expect_navigation():
        page.click("#run-button")
    expect(page.locator(".messagelist .success")).to_contain_text("is queued")
    expect(page.locator("#run-progress")).to_contain_text("Waiting for approval")
    screenshots.take(page, "chain-ladder-waiting-for-approval")
    first = WorkflowRun.objects.get(name="Acme chain ladder")
    assert first.input_params["columns"] == {
        "origin": "AccidentYear",
        "development": "DevMonths",
        "value": "PaidLoss",
    }

    # Re-run with an exclusion and an override.
    with page.expect_navigation():
        page.click("#rerun-with-changes")
    selected = page.locator("#selected-factors td").first
    before = selected.inner_text()
    page.click("td[data-ratio='1982|12'] label")
    settle(page)
    expect(page.locator("td[data-ratio='1982|12']")).to_have_class("ratio excluded")
    expect(selected).not_to_have_text(before)
    page.fill("#id_factor_8", "1.0100")
    page.fill("#id_reason_8", "Benchmark: Acme's tail of 1% beyond 108 months")
    page.press("#id_reason_8", "Tab")
    settle(page)
    expect(page.locator("#selected-factors td").nth(8)).to_have_text("1.0100")
    page.select_option("#id_tail", "exponential")
    settle(page)
    expect(page.locator("#selected-tail")).to_contain_text("xponential")
    page.fill("#id_name", "Acme chain ladder: judgment")
    screenshots.take(page, "rerun-exclusion")
    # The grid scrolls sideways: show its last periods, where the override is.
    page.locator("#selection-panel").evaluate("panel => { panel.scrollLeft = panel.scrollWidth; }")
    screenshots.take(page, "rerun-override")
    with page.expect_navigation():
        page.click("#run-button")
    expect(page.locator("#run-progress")).to_contain_text("Waiting for approval")
    screenshots.take(page, "rerun-waiting-for-approval")
    rerun = WorkflowRun.objects.get(name="Acme chain ladder: judgment")
    assert rerun.rerun_of == first
    assert rerun.input_params["exclude"] == [["1982", 12]]
    assert rerun.input_params["selected_factors"]["108"]["factor"] == 1.01
    assert rerun.input_params["tail"] == {"method": "exponential"}

    # A Bornhuetter-Ferguson on the same triangle, with the premium uploaded on the way.
    page.goto(f"/admin/engagements/engagement/{engagement.pk}/change/")
    with page.expect_navigation():
        page.click("text=New reserving analysis")
    with page.expect_navigation():
        page.click("a.pick-triangle")
    map_columns(page, screenshots, first_time=False)
    page.select_option("#id_method", "bornhuetter_ferguson")
    page.set_input_files("#id_exposure_file", str(premium_file))
    page.fill("#id_apriori_loss_ratio", "0.65")
    page.fill("#id_name", "Acme Bornhuetter-Ferguson")
    screenshots.take(page, "bf-method")
    with page.expect_navigation():
        page.click("#run-button")
    expect(page.locator("#run-progress")).to_contain_text("Waiting for approval")
    screenshots.take(page, "bf-waiting-for-approval")
    bf = WorkflowRun.objects.get(name="Acme Bornhuetter-Ferguson")
    assert bf.output_summary["method"] == "bornhuetter_ferguson"

    # The BF beside the chain ladder with judgment, from the BF's page.
    judged = page.locator("#compare-with-run option", has_text="Acme chain ladder: judgment")
    page.select_option("#compare-with-run", judged.get_attribute("value"))
    with page.expect_navigation():
        page.click("#compare-with button")
    expect(page.locator("#compare-origins tr.compare-total")).to_contain_text("Total")
    expect(page.locator("#compare")).to_contain_text("Bornhuetter-Ferguson")
    screenshots.take(page, "bf-compared-with-chain-ladder")

    # Bob signs the re-run off (Alice may not: she queued it).
    review = sign_in(bob)
    review.goto(f"/admin/workflows/workflowrun/{rerun.pk}/change/")
    with review.expect_navigation():
        review.click("#run-approvals a")
    with review.expect_navigation():
        review.click("a[href$='/move/approve/']")
    review.fill("#id_conflict_of_interest_statement", "No conflict: I took no part in the runs.")
    review.fill("#id_notes", "Exclusion of 1982 at 12 months and the 1% tail agreed.")
    with review.expect_navigation():
        review.click("input[type=submit][value=Approve]")
    expect(review.locator(".messagelist .success")).to_contain_text("now approved")
    review.goto(f"/admin/workflows/workflowrun/{rerun.pk}/change/")
    expect(review.locator("#run-progress")).to_contain_text("Completed")
    screenshots.take(review, "rerun-signed-off")
    rerun.refresh_from_db()
    assert rerun.status == "completed"
    assert Approval.objects.get(workflow_run=rerun).approver == bob

    # The signed-off working paper, downloaded and opened as a firm files it.
    with review.expect_download() as download:
        review.click("#download-working-paper")
    paper = tmp_path / download.value.suggested_filename
    assert paper.suffix == ".xlsx"
    download.value.save_as(paper)
    workbook = openpyxl.load_workbook(paper)
    assert {"Reserves", "Triangle", "Link ratios"} <= set(workbook.sheetnames)
    header = {
        row[0]: row[1]
        for row in workbook["Reserves"].iter_rows(min_row=1, max_row=20, values_only=True)
        if row[0]
    }
    assert header["Status"] == "APPROVED"
    assert header["Run"] == "Acme chain ladder: judgment"
    assert "Bob" in str(header["Approved by"]) or "bob" in str(header["Approved by"])


def test_a_queued_runs_page_follows_it_until_it_has_finished(
    sign_in, alice, engagement, screenshots, tmp_path, monkeypatch
):
    """No worker picks the run up: its page says so, and reloads once it has run."""
    # As on a machine whose worker is not running: queueing sends no task.
    monkeypatch.setattr("workflows.services.runs._enqueue_run", lambda run_id: None)
    triangle_file, _premium = client_files(tmp_path)
    triangle = artefact_create(
        engagement=engagement,
        upload=ContentFile(triangle_file.read_bytes(), name="acme.csv"),
        actor=alice,
        name="Acme paid triangle",
        artefact_type="triangle",
    )
    page = sign_in(alice)
    page.goto(f"/admin/workflows/workflowrun/analysis/{engagement.pk}/{triangle.pk}/columns/")
    map_columns(page, screenshots, first_time=False)
    page.fill("#id_name", "Acme chain ladder, queued")
    with page.expect_navigation():
        page.click("#run-button")
    status = page.locator("#run-status")
    expect(status).to_have_text("Queued: waiting for a worker to start it")
    screenshots.take(page, "queued-waiting-for-a-worker")

    # Hold the page's status requests while the run executes in this thread (the live
    # server shares this test's database connection), then let them through.
    page.route("**/status/", lambda route: route.continue_())
    run = WorkflowRun.objects.get(name="Acme chain ladder, queued")
    call_command("run_workflow", str(run.pk))
    expect(page.locator("#run-progress")).to_contain_text("Waiting for approval", timeout=30_000)
    expect(page.locator("#run-status")).to_have_count(0)
    screenshots.take(page, "reloaded-when-done")
