"""The final sign-off in the admin (ASOP 41): the engagement page's "Final sign-off" section
pre-fills the disclosure checklist, the checklist page edits it through the update service,
the lead actuary completes it, the sign-off request freezes it, and the approval page shows
the frozen copy, readable.

Staff actuaries of the Actuaries group: the lead (`actuary`) and the qualified reviewer on an
active engagement whose input data is one uploaded triangle.
"""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from approvals.choices import ApprovalType
from approvals.models import Approval, DisclosureChecklist
from approvals.services import (
    approval_reject,
    disclosure_checklist_complete,
    disclosure_checklist_prefill,
    disclosure_checklist_update,
)
from artefacts.choices import ArtefactType
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
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    completed_checklist,
    database_state,
    final_sign_off_request,
    record_reliances,
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

CHANGELIST = reverse("admin:approvals_disclosurechecklist_changelist")


@pytest.fixture
def active(engagement, lead):
    return engagement_activate(engagement=engagement, actor=lead)


@pytest.fixture
def triangle(active, lead):
    return artefact_in(
        active, actor=lead, name="Paid triangle", artefact_type=ArtefactType.TRIANGLE
    )


def engagement_url(engagement):
    return reverse("admin:engagements_engagement_change", args=(engagement.pk,))


def checklist_url(checklist):
    return reverse("admin:approvals_disclosurechecklist_change", args=(checklist.pk,))


def section(response):
    return response.context["final_sign_off"]


def buttons(response):
    return {button.form_id: button for button in section(response).buttons}


def press(client, response, form_id):
    """Submit a section button's form as the browser would (its own form, with `next`)."""
    button = buttons(response)[form_id]
    assert f'form="{form_id}"' in response.content.decode()
    return client.post(button.url, {"next": button.next_page})


class TestSection:
    def test_a_new_engagement_needs_reliances_and_a_checklist(self, lead_client, active, triangle):
        response = lead_client.get(engagement_url(active))
        final = section(response)
        assert final.checklist is None
        assert final.needs == [
            "1 of 1 input data artefact(s) have no data reliance entry.",
            "No disclosure checklist yet: pre-fill one from what the system holds.",
        ]
        assert final.request_url == ""
        assert list(buttons(response)) == ["prefill-disclosures"]
        html = response.content.decode()
        assert 'id="final-sign-off"' in html
        # The button's form sits outside the change form (forms do not nest).
        assert html.index('<form id="prefill-disclosures"') > html.index("</form>")

    def test_prefill_from_the_section_creates_the_checklist_and_returns(
        self, lead_client, active, triangle, lead
    ):
        page = lead_client.get(engagement_url(active))
        mark = audit_mark()

        response = press(lead_client, page, "prefill-disclosures")

        assert response.status_code == 302 and response.url == engagement_url(active)
        checklist = DisclosureChecklist.objects.get(engagement=active)
        assert (checklist.status, checklist.responsible_actuary) == ("draft", lead)
        assert [e.action for e in audit_events_since(mark)] == [
            AuditAction.DISCLOSURE_CHECKLIST_UPDATE
        ]
        [(level, text)] = admin_messages(response)
        assert level == "success" and text.startswith("Pre-fill disclosure checklist — ")

        final = section(lead_client.get(engagement_url(active)))
        assert final.checklist == checklist
        assert final.edit_url == checklist_url(checklist)

    def test_only_the_lead_is_offered_complete(
        self, client, active, triangle, lead, qualified_reviewer
    ):
        record_reliances(active, actor=lead)
        disclosure_checklist_prefill(engagement=active, actor=lead)
        client.force_login(lead)
        assert "complete-disclosures" in buttons(client.get(engagement_url(active)))
        client.force_login(qualified_reviewer)
        page = client.get(engagement_url(active))
        assert "complete-disclosures" not in buttons(page)
        assert section(page).needs == [
            "The disclosure checklist is a draft: the lead actuary, actuary, completes it."
        ]

    def test_the_lead_completes_it_then_may_request_the_final_sign_off(
        self, lead_client, active, triangle, lead
    ):
        record_reliances(active, actor=lead)
        disclosure_checklist_prefill(engagement=active, actor=lead)
        page = lead_client.get(engagement_url(active))
        mark = audit_mark()

        response = press(lead_client, page, "complete-disclosures")

        assert response.status_code == 302 and response.url == engagement_url(active)
        checklist = DisclosureChecklist.objects.get(engagement=active)
        assert (checklist.status, checklist.completed_by) == ("completed", lead)
        assert [e.action for e in audit_events_since(mark)] == [
            AuditAction.DISCLOSURE_CHECKLIST_COMPLETE
        ]
        final = section(lead_client.get(engagement_url(active)))
        assert final.needs == []
        assert final.ready.startswith(
            f"The disclosure checklist was completed by {person(lead)} on"
        )
        query = urlencode({"engagement": active.pk, "approval_type": "final_sign_off"})
        assert final.request_url == f"{reverse('admin:approvals_approval_add')}?{query}"

    def test_completing_with_data_missing_from_the_register_is_refused(
        self, lead_client, active, triangle, lead
    ):
        checklist = disclosure_checklist_prefill(engagement=active, actor=lead)
        move = reverse("admin:approvals_disclosurechecklist_move", args=(checklist.pk, "complete"))
        before = database_state()
        response = lead_client.post(move, {"next": engagement_url(active)})
        assert response.status_code == 302 and response.url == engagement_url(active)
        [(level, text)] = admin_messages(response)
        assert level == "error"
        assert "1 input data artefact(s) have no entry in the data reliance register" in text
        assert "“Paid triangle v1”" in text
        assert database_state() == before

    def test_a_reviewer_completing_is_refused_with_the_message(
        self, reviewer_client, active, triangle, lead
    ):
        record_reliances(active, actor=lead)
        checklist = disclosure_checklist_prefill(engagement=active, actor=lead)
        move = reverse("admin:approvals_disclosurechecklist_move", args=(checklist.pk, "complete"))
        before = database_state()
        response = reviewer_client.post(move)
        [(level, text)] = admin_messages(response)
        assert level == "error"
        assert text == (
            f"reviewer may not complete disclosure checklist “{checklist}”: only the "
            "engagement's lead actuary (actuary) completes it."
        )
        assert database_state() == before

    def test_a_register_changed_after_completion_is_said(self, lead_client, active, triangle, lead):
        record_reliances(active, actor=lead)
        completed_checklist(active)
        artefact_in(active, actor=lead, name="Late data", artefact_type="csv")
        record_reliances(active, actor=lead)
        final = section(lead_client.get(engagement_url(active)))
        assert final.needs == [
            "The data reliance register changed since the checklist was completed: pre-fill it "
            "again and have the lead actuary complete it."
        ]
        assert final.request_url == ""


class TestChecklistPage:
    @pytest.fixture
    def checklist(self, active, triangle, lead):
        record_reliances(active, actor=lead)
        return disclosure_checklist_prefill(engagement=active, actor=lead)

    def test_it_shows_the_reliances_and_edits_what_people_write(
        self, reviewer_client, checklist, qualified_reviewer, triangle
    ):
        url = checklist_url(checklist)
        page = reviewer_client.get(url)
        form = page.context["adminform"].form
        assert set(form.fields) == {
            "responsible_actuary",
            "information_date",
            "material_changes",
            "other_disclosures",
        }
        assert {user.username for user in form.fields["responsible_actuary"].queryset} == {
            "actuary",
            "reviewer",
        }
        html = page.content.decode()
        assert "reliance-snapshot-table" in html and "Paid triangle" in html
        assert triangle.content_hash[:12] in html
        mark = audit_mark()
        data = admin_form_data(page) | {"other_disclosures": "Reserves are net of reinsurance."}

        response = reviewer_client.post(url, data)

        assert response.status_code == 302
        checklist.refresh_from_db()
        assert checklist.other_disclosures == "Reserves are net of reinsurance."
        assert checklist.updated_by == qualified_reviewer
        [event] = audit_events_since(mark)
        assert event.action == AuditAction.DISCLOSURE_CHECKLIST_UPDATE
        assert event.new_value == {"other_disclosures": "Reserves are net of reinsurance."}

    def test_editing_a_completed_checklist_sends_it_back_to_draft(
        self, lead_client, checklist, lead
    ):
        disclosure_checklist_complete(checklist=checklist, actor=lead)
        url = checklist_url(checklist)
        data = admin_form_data(lead_client.get(url)) | {"material_changes": "None."}
        assert lead_client.post(url, data).status_code == 302
        checklist.refresh_from_db()
        assert (checklist.status, checklist.material_changes) == ("draft", "None.")

    def test_its_buttons_prefill_again_and_complete(self, lead_client, checklist):
        html = lead_client.get(checklist_url(checklist)).content.decode()
        for move in ("prefill", "complete"):
            url = reverse("admin:approvals_disclosurechecklist_move", args=(checklist.pk, move))
            assert url in html

    def test_checklists_are_pre_filled_never_added_or_deleted_here(self, lead_client, checklist):
        add = reverse("admin:approvals_disclosurechecklist_add")
        assert lead_client.get(add).status_code == 403
        delete = reverse("admin:approvals_disclosurechecklist_delete", args=(checklist.pk,))
        assert lead_client.post(delete, {"post": "yes"}).status_code == 403


class TestFrozenIntoTheFinalSignOff:
    def test_the_request_from_the_admin_freezes_it(self, lead_client, active, triangle, lead):
        record_reliances(active, actor=lead)
        checklist = completed_checklist(active)
        url = section(lead_client.get(engagement_url(active))).request_url
        page = lead_client.get(url)
        form = page.context["adminform"].form
        assert form.initial["approval_type"] == "final_sign_off"
        data = admin_form_data(page) | {"metadata": "{}"}

        response = lead_client.post(url, data)

        assert response.status_code == 302, admin_messages(response)
        approval = Approval.objects.get(approval_type=ApprovalType.FINAL_SIGN_OFF)
        checklist.refresh_from_db()
        assert checklist.frozen_into == approval
        assert approval.disclosures["checklist_id"] == str(checklist.pk)

    def test_the_approval_page_shows_the_frozen_copy_readably(
        self, reviewer_client, active, triangle, lead
    ):
        approval = final_sign_off_request(active, requester=lead)
        checklist = DisclosureChecklist.objects.get(frozen_into=approval)
        response = reviewer_client.get(
            reverse("admin:approvals_approval_change", args=(approval.pk,))
        )
        view = response.context["frozen_disclosures"]
        assert view.responsible_actuary == f"{lead.get_full_name()} (actuary)"
        [reliance] = view.reliances
        assert reliance["artefact"] == "Paid triangle" and reliance["provider_label"] == "Client"
        html = response.content.decode()
        assert 'id="frozen-disclosures"' in html
        assert "Reconciled to the general ledger." in html
        assert checklist_url(checklist) in html

        # Later edits never reach the signed-off copy.
        new = disclosure_checklist_prefill(engagement=active, actor=lead)
        disclosure_checklist_update(
            checklist=new, actor=lead, data={"other_disclosures": "Added later."}
        )
        html = reviewer_client.get(
            reverse("admin:approvals_approval_change", args=(approval.pk,))
        ).content.decode()
        assert "Added later." not in html

    def test_the_frozen_checklist_is_read_only_without_moves(
        self, lead_client, active, triangle, lead
    ):
        approval = final_sign_off_request(active, requester=lead)
        checklist = DisclosureChecklist.objects.get(frozen_into=approval)
        page = lead_client.get(checklist_url(checklist))
        assert page.context["adminform"].form.fields == {}
        html = page.content.decode()
        assert "Frozen into the final sign-off on" in html
        assert "/move/complete/" not in html and "/move/prefill/" not in html

    def test_the_reviewer_approves_it(self, reviewer_client, active, triangle, lead):
        approval = final_sign_off_request(active, requester=lead)
        move = reverse("admin:approvals_approval_move", args=(approval.pk, "approve"))
        assert reviewer_client.get(move).context["move_warning"] is None
        response = reviewer_client.post(move, {"conflict_of_interest_statement": NO_CONFLICT})
        assert response.status_code == 302
        approval.refresh_from_db()
        assert approval.status == "approved"
        final = section(reviewer_client.get(engagement_url(active)))
        assert [sign_off.status for sign_off in final.sign_offs] == ["approved"]


def test_the_changelist_filters_open_and_frozen(lead_client, active, triangle, lead):
    approval = final_sign_off_request(active, requester=lead)
    frozen = DisclosureChecklist.objects.get(frozen_into=approval)
    open_one = disclosure_checklist_prefill(engagement=active, actor=lead)
    assert set(lead_client.get(CHANGELIST).context["cl"].result_list) == {frozen, open_one}
    assert list(lead_client.get(CHANGELIST, {"frozen": "no"}).context["cl"].result_list) == [
        open_one
    ]
    assert list(lead_client.get(CHANGELIST, {"frozen": "yes"}).context["cl"].result_list) == [
        frozen
    ]


def test_the_final_sign_off_page_costs_the_same_with_many_reliances(reviewer_client, active, lead):
    def sign_off_with(count, start):
        for number in range(start, start + count):
            artefact_in(
                active,
                actor=lead,
                name=f"Data {number}",
                content=f"claim,paid\n{number},1\n".encode(),
                artefact_type="csv",
            )
        return final_sign_off_request(active, requester=lead)

    few_approval = sign_off_with(3, 0)
    few, _ = count_queries(
        reviewer_client, reverse("admin:approvals_approval_change", args=(few_approval.pk,))
    )
    approval_reject(
        approval=few_approval,
        actor=active.reviewer,
        reason="Redo with all data",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    many_approval = sign_off_with(30, 3)
    many, response = count_queries(
        reviewer_client, reverse("admin:approvals_approval_change", args=(many_approval.pk,))
    )
    assert len(response.context["frozen_disclosures"].reliances) == 33
    assert many == few, f"{few} queries with 3 reliances, {many} with 33"
