"""The reserving workbench in a real browser: the run page as a working paper, and two runs
compared, at a desktop width (1440 px) and a phone's (390 px).

The runs are made through the services (the browser tests of the whole path live with the
guided path); what is checked here is what a person sees: the grids, the marks, the charts,
and that a 390 px page never scrolls sideways (long tables scroll inside their own box).
Screenshots of each page at each width: test-output/e2e/<test>/.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from artefacts.choices import ArtefactType
from artefacts.services import artefact_create
from engagements.services import engagement_activate
from tests.factories import EngagementFactory, EngagementMemberFactory
from workflows.choices import WorkflowType
from workflows.models import WorkflowRun
from workflows.reserving import sample_triangle_csv
from workflows.services import workflow_run_create, workflow_run_queue

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WIDTHS = {"desktop": 1440, "phone": 390}
# The outermost elements reaching past the right edge of the window (named for the failure).
OFFENDERS = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  const wide = [...document.querySelectorAll("body *")].filter(
    (el) => el.getBoundingClientRect().right > width + 1 && !clipped(el)
  );
  return wide
    .filter((el) => !wide.includes(el.parentElement))
    .slice(0, 8)
    .map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`);
}"""


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def engagement(alice, bob):
    engagement = EngagementFactory(
        client_code="ACME",
        client_name="Acme General Insurance plc",
        name="FY2025 reserve review",
        lead_actuary=alice,
        reviewer=bob,
        created_by=alice,
    )
    EngagementMemberFactory(engagement=engagement, user=alice, role="lead")
    EngagementMemberFactory(engagement=engagement, user=bob, role="reviewer")
    return engagement_activate(engagement=engagement, actor=alice)


def reserve_run(engagement, alice, name: str, **choices) -> WorkflowRun:
    """Return a chain ladder on RAA with `choices`, run by the worker (waiting for approval)."""
    triangle = artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_triangle_csv("raa"), name="raa.csv"),
        actor=alice,
        name="RAA paid",
        artefact_type=ArtefactType.TRIANGLE,
    )
    run = workflow_run_create(
        engagement=engagement,
        actor=alice,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name=name,
        input_params={
            "triangle_artefact": str(triangle.pk),
            "cumulative": True,
            "measure": "paid",
            **choices,
        },
    )
    workflow_run_queue(run=run, actor=alice)
    run.refresh_from_db()
    assert run.status == "waiting_approval", run.error_message
    return run


def at_each_width(page, screenshots, name: str, section: str) -> None:
    """Screenshot the page (and its `section`) at each width; none may scroll sideways."""
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        screenshots.take(page, f"{name}-{label}")
        path = screenshots.folder / f"{len(screenshots.taken) + 1:02d}-{name}-{label}-section.png"
        page.locator(section).screenshot(path=str(path))
        screenshots.taken.append(path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        offenders = page.evaluate(OFFENDERS) if overflow > 0 else []
        assert overflow <= 0, f"{name} at {width} px scrolls sideways by {overflow} px: {offenders}"


def test_the_run_page_is_a_working_paper(sign_in, alice, engagement, screenshots):
    run = reserve_run(
        engagement,
        alice,
        "RAA chain ladder with judgment",
        exclude=[["1982", 12]],
        selected_factors={"24": {"factor": 1.75, "reason": "Market study benchmark"}},
        tail={"method": "constant", "factor": 1.05, "reason": "Industry tail"},
    )
    page = sign_in(alice)
    page.goto(f"/admin/workflows/workflowrun/{run.pk}/change/")
    paper = page.locator("#run-working-paper")
    expect(paper.locator("#wp-cumulative tbody tr").first).to_contain_text("5,012")
    expect(paper.locator("#wp-link-ratio-grid td.left-out")).to_have_text("40.4245")
    expect(paper.locator("#wp-averages-grid tr.wp-selected td.source-override")).to_have_text(
        "1.7500"
    )
    expect(paper.locator("#wp-selected-factors")).to_contain_text("Market study benchmark")
    expect(paper.locator("#wp-pattern-chart svg")).to_be_visible()
    expect(paper.locator("#wp-ranges-chart svg")).to_be_visible()
    expect(page.locator("#run-compute-time")).to_be_visible()
    expect(page.locator("#run-approval-wait")).to_contain_text("so far")
    at_each_width(page, screenshots, "run-page", "#run-working-paper")
    # The first column stays in view when a grid is scrolled sideways.
    grid = paper.locator("#wp-projected").locator("xpath=..")
    grid.evaluate("box => box.scrollLeft = 400")
    first = paper.locator("#wp-projected tbody th").first.bounding_box()
    box = grid.bounding_box()
    assert abs(first["x"] - box["x"]) < 3
