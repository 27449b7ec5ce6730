"""A record people can read, in a real browser at 1440 px and on a 390 px phone (issue 17).

On the demo data: Alice's dashboard, Bob's approval queue and the approval page of the
RAA run he reviews, and the ACME file note. At 390 px no page scrolls sideways (long
tables scroll inside their own box). Screenshots: test-output/e2e/<test>/.
"""

import pytest
from django.core.management import call_command
from django.urls import reverse

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.models import Approval
from engagements.models import Engagement

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WIDTHS = {"desktop": 1440, "phone": 390}


@pytest.fixture
def demo(transactional_db):
    call_command("load_demo", force=True)


@pytest.fixture
def open_as(browser, live_server):
    """Return a function opening a page signed in as a demo user at a width."""
    contexts = []

    def open_as(username, width):
        context = browser.new_context(
            viewport={"width": width, "height": 900}, base_url=live_server.url
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", username)
        page.fill("#id_password", username)  # the demo's password is the username
        page.click("input[type=submit]")
        page.wait_for_selector("#workspace-dashboard")
        return page

    yield open_as
    for context in contexts:
        context.close()


def fits(page) -> bool:
    """Return whether the page has no horizontal scrolling."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def widest(page) -> str:
    """Name the elements wider than the window (to say why a page does not fit)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
            .filter(e => !e.closest('.workspace-scroll, .results, #changelist-filter'))
            .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className).join(', ')"""
    )


@pytest.mark.parametrize("device", WIDTHS)
def test_the_dashboard_of_the_person_doing_the_work(demo, open_as, screenshots, device):
    page = open_as("alice", WIDTHS[device])
    assert page.locator("#dashboard-my-runs-in-review").inner_text().count("RAA") == 1
    assert page.locator("#start-analysis-button").count() == 1
    screenshots.take(page, f"dashboard-{device}")
    if device == "phone":
        assert fits(page), widest(page)


@pytest.mark.parametrize("device", WIDTHS)
def test_the_reviewers_queue_and_page(demo, open_as, screenshots, device):
    page = open_as("bob", WIDTHS[device])
    page.goto(reverse("admin:approvals_approval_changelist"))
    rows = page.locator("#result_list tbody tr")
    labels = [rows.nth(i).locator("th, td").nth(1).inner_text() for i in range(rows.count())]
    assert len(labels) == len(set(labels))
    screenshots.take(page, f"queue-{device}")
    if device == "phone":
        assert fits(page), widest(page)

    approval = Approval.objects.get(
        approval_type=ApprovalType.WORKFLOW_APPROVAL, status=ApprovalStatus.PENDING
    )
    page.goto(reverse("admin:approvals_approval_change", args=(approval.pk,)))
    subject = page.locator("#decision-subject")
    assert "52,135" in subject.locator("#decision-totals").inner_text()
    assert "negative development" in subject.inner_text()
    assert page.locator("#decision-allowed").count() == 1
    assert page.locator(".object-tools a", has_text="Approve").count() == 1
    screenshots.take(page, f"approval-{device}")
    if device == "phone":
        assert fits(page), widest(page)

    # Alice asked for it: she is told why she may not decide, and offered no decision.
    alice = open_as("alice", WIDTHS[device])
    alice.goto(reverse("admin:approvals_approval_change", args=(approval.pk,)))
    assert "you requested it" in alice.locator("#decision-refusal").inner_text()
    assert alice.locator(".object-tools a", has_text="Approve").count() == 0
    screenshots.take(alice, f"approval-requester-{device}")


@pytest.mark.parametrize("device", WIDTHS)
def test_the_file_note(demo, open_as, screenshots, device):
    acme = Engagement.objects.get(client_code="ACME")
    page = open_as("alice", WIDTHS[device])
    page.goto(reverse("admin:audit_auditlog_timeline", args=(acme.pk,)))
    note = page.locator("#timeline").inner_text()
    assert "Bob Castellano (FCAS) approved the workflow approval of run" in note
    assert "read the file of" not in note
    screenshots.take(page, f"file-note-{device}")
    if device == "phone":
        assert fits(page), widest(page)
