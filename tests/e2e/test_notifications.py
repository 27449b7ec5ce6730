"""Notifications in a real browser: the unread count in the header, the list, reading them.

Alice asks Bob to review a triangle (through the services, committed as in production:
the announcement runs on commit, the email is sent by the immediate task backend). Bob
signs in and sees "Notifications 1" in the header, opens the list, opens the request
from it (it becomes read, the count goes) and approves it; Alice then finds the
decision in her own list and marks everything read. Screenshots of each step:
test-output/e2e/<test name>/.
"""

import pytest
from django.core import mail

from approvals.choices import ApprovalType
from approvals.services import approval_request
from engagements.services import engagement_activate, engagement_create
from notifications.models import Notification
from tests.factories.states import artefact_in

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_the_unread_count_and_the_list_of_notifications(sign_in, alice, bob, screenshots):
    engagement = engagement_create(
        client_code="ACME",
        client_name="Acme General Insurance plc",
        name="FY2025 reserve review",
        lead_actuary=alice,
        reviewer=bob,
        actor=alice,
    )
    engagement_activate(engagement=engagement, actor=alice)
    triangle = artefact_in(engagement, actor=alice, name="RAA triangle")
    approval = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW,
        artefact=triangle,
        actor=alice,
        designated_approver=bob,
        request_notes="Please check the 1988 diagonal.",
    )
    assert [m.to for m in mail.outbox] == [[bob.email]]

    # Bob: the count in the header, the list, the request.
    review = sign_in(bob)
    expect(review.locator("#notifications-unread")).to_have_text("1")
    screenshots.take(review, "header-count-reviewer")
    with review.expect_navigation():
        review.click("#notifications-link")
    rows = review.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("strong")).to_contain_text(
        "Approval requested: The artefact review of “RAA triangle” (version 1)"
    )
    expect(rows.first).to_contain_text("ACME · FY2025 reserve review")
    screenshots.take(review, "notification-list-reviewer")
    with review.expect_navigation():
        rows.first.locator("a", has_text="Approval requested").click()
    assert review.url.endswith(f"/admin/approvals/approval/{approval.pk}/change/")
    expect(review.locator("#notifications-link")).to_have_text("Notifications")
    expect(review.locator("#notifications-unread")).to_have_count(0)
    screenshots.take(review, "request-opened-count-gone")

    # Bob approves; Alice hears of it.
    with review.expect_navigation():
        review.click("a[href$='/move/approve/']")
    review.fill("#id_conflict_of_interest_statement", "No involvement in preparing this work.")
    review.fill("#id_notes", "Diagonal reconciles to the ledger.")
    with review.expect_navigation():
        review.click("input[type=submit][value=Approve]")
    expect(review.locator(".messagelist .success")).to_contain_text("now approved")

    lead = sign_in(alice)
    expect(lead.locator("#notifications-unread")).to_have_text("1")
    with lead.expect_navigation():
        lead.click("#notifications-link")
    rows = lead.locator("#result_list tbody tr")
    expect(rows.first).to_contain_text(
        "Approved: The artefact review of “RAA triangle” (version 1)"
    )
    expect(rows.first).to_contain_text("bob")
    screenshots.take(lead, "notification-list-lead")
    with lead.expect_navigation():
        lead.click("#notifications-read-all button")
    expect(lead.locator(".messagelist .success")).to_contain_text(
        "Marked 1 notification(s) as read."
    )
    expect(lead.locator("#notifications-unread")).to_have_count(0)
    expect(lead.locator("#result_list tbody tr strong")).to_have_count(0)
    screenshots.take(lead, "all-read-lead")
    assert not Notification.objects.filter(read_at__isnull=True).exists()

    # Her preferences are one click away.
    with lead.expect_navigation():
        lead.click("text=My notification preferences")
    expect(lead.locator("#id_events")).to_contain_text("Approval approved or rejected")
    screenshots.take(lead, "preferences-lead")
