"""The data reliance register in the admin (ASOP 23): listed on the engagement page, recorded
and edited through `reliance_record` / `reliance_update`.

Staff actuaries of the Actuaries group on an active engagement whose lead uploaded a
triangle (input data). A completed data_validation run of it supports the checks; runs of
other types or other engagements are not offered.
"""

from urllib.parse import urlencode

import pytest
from django.urls import reverse

from artefacts.choices import ArtefactType
from artefacts.models import DataReliance
from artefacts.services import RELIANCE_REASON_REQUIRED, reliance_record
from audit.choices import AuditAction
from engagements.services import engagement_activate, engagement_complete
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
    admin_form_data,
    admin_messages,
    artefact_in,
    audit_events_since,
    audit_mark,
    database_state,
    final_sign_off,
    run_in,
    runnable_run_in,
)
from workflows.runner import execute_run
from workflows.services import workflow_run_queue

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

ADD = reverse("admin:artefacts_datareliance_add")
CHANGELIST = reverse("admin:artefacts_datareliance_changelist")


@pytest.fixture
def active(engagement, lead):
    return engagement_activate(engagement=engagement, actor=lead)


@pytest.fixture
def triangle(active, lead):
    return artefact_in(
        active, actor=lead, name="Paid triangle", artefact_type=ArtefactType.TRIANGLE
    )


def executed(run, *, actor):
    """Queue the run as `actor` and execute it through the runner (as the worker would)."""
    workflow_run_queue(run=run, actor=actor, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


@pytest.fixture
def validation(active, lead, triangle):
    """A completed data_validation run of the triangle."""
    run = executed(runnable_run_in(active, actor=lead, triangle=triangle), actor=lead)
    assert run.status == "completed", run.error_message
    return run


def engagement_url(engagement):
    return reverse("admin:engagements_engagement_change", args=(engagement.pk,))


def record_link(artefact, engagement):
    return f"{ADD}?{urlencode({'artefact': artefact.pk, 'next': engagement_url(engagement)})}"


ENTRY = {
    "provider_type": "client",
    "provider_name": "Acme General Insurance plc",
    "data_as_of": "2025-12-31",
    "checks_performed": "Reconciled to the general ledger.",
    "known_limitations": "1981 is incomplete.",
    "reviewed": "on",
}


class TestEngagementPage:
    def test_input_data_without_an_entry_links_to_recording_it(self, lead_client, active, triangle):
        response = lead_client.get(engagement_url(active))
        [row] = response.context["data_reliance"]
        assert row.artefact == triangle and row.reliance is None
        assert row.record_url == record_link(triangle, active)
        html = response.content.decode()
        assert 'id="data-reliance"' in html and "missing" in html
        assert row.record_url.replace("&", "&amp;") in html

    def test_an_entry_is_shown_with_its_link(self, lead_client, active, triangle, lead):
        reliance = reliance_record(
            artefact=triangle,
            actor=lead,
            provider_type="third_party",
            provider_name="Broker data",
            data_as_of="2025-12-31",
            reviewed=False,
            not_reviewed_reason="Received after the cut-off.",
        )
        response = lead_client.get(engagement_url(active))
        [row] = response.context["data_reliance"]
        assert row.reliance == reliance and row.record_url == ""
        html = response.content.decode()
        assert reverse("admin:artefacts_datareliance_change", args=(reliance.pk,)) in html
        assert "no: Received after the cut-off." in html

    def test_results_of_runs_are_not_input_data(self, lead_client, active, lead):
        run = run_in(active, actor=lead, start=True)
        artefact_in(active, actor=lead, name="Reserves", workflow_run=run)
        assert lead_client.get(engagement_url(active)).context["data_reliance"] == []


class TestRecord:
    def test_the_add_form_offers_this_engagements_input_data_and_validation_runs(
        self, lead_client, active, triangle, validation, lead, outsider_engagement, outsider
    ):
        other_data = artefact_in(active, actor=lead, name="Claims", artefact_type="csv")
        run_in(active, actor=lead, name="Not a validation", start=True)
        executed(
            runnable_run_in(outsider_engagement, actor=outsider), actor=outsider
        )  # their validation run
        form = lead_client.get(record_link(triangle, active)).context["adminform"].form
        assert list(form.fields) == [
            "artefact",
            "provider_type",
            "provider_name",
            "data_as_of",
            "checks_performed",
            "validation_run",
            "known_limitations",
            "reviewed",
            "not_reviewed_reason",
        ]
        assert set(form.fields["artefact"].queryset) == {triangle, other_data}
        assert form.initial["artefact"] == str(triangle.pk)
        assert list(form.fields["validation_run"].queryset) == [validation]

    def test_recording_goes_through_the_service_and_returns_to_the_engagement(
        self, lead_client, active, triangle, validation, lead
    ):
        url = record_link(triangle, active)
        mark = audit_mark()
        data = (
            admin_form_data(lead_client.get(url))
            | ENTRY
            | {
                "artefact": triangle.pk,
                "validation_run": validation.pk,
            }
        )

        response = lead_client.post(url, data)

        assert response.status_code == 302 and response.url == engagement_url(active)
        reliance = DataReliance.objects.get(artefact=triangle)
        assert (reliance.engagement, reliance.validation_run, reliance.created_by) == (
            active,
            validation,
            lead,
        )
        assert reliance.reviewed and reliance.known_limitations == "1981 is incomplete."
        assert [e.action for e in audit_events_since(mark)] == [AuditAction.DATA_RELIANCE_RECORD]
        [(level, text)] = admin_messages(response)
        assert level == "success" and text == f"Data reliance recorded — {reliance}."

    def test_unreviewed_data_needs_a_reason_said_next_to_the_field(
        self, lead_client, active, triangle
    ):
        url = record_link(triangle, active)
        data = admin_form_data(lead_client.get(url)) | ENTRY | {"artefact": triangle.pk}
        data.pop("reviewed")
        before = database_state()
        response = lead_client.post(url, data)
        assert response.status_code == 200
        errors = response.context["adminform"].form.errors
        assert errors["not_reviewed_reason"] == [RELIANCE_REASON_REQUIRED.format(artefact=triangle)]
        assert database_state() == before

    def test_a_refusal_of_the_service_is_shown_on_the_form(
        self, lead_client, active, triangle, validation, lead
    ):
        # The validation run checked the triangle, not this other data file.
        other = artefact_in(active, actor=lead, name="Claims", artefact_type="csv")
        url = record_link(other, active)
        data = (
            admin_form_data(lead_client.get(url))
            | ENTRY
            | {
                "artefact": other.pk,
                "validation_run": validation.pk,
            }
        )
        before = database_state()
        response = lead_client.post(url, data)
        assert response.status_code == 200
        [(level, text)] = admin_messages(response)
        assert level == "error" and "did not check artefact “Claims v1”" in text
        assert "validation_run" in response.context["adminform"].form.errors
        assert database_state() == before


@pytest.fixture
def reliance(triangle, lead):
    return reliance_record(
        artefact=triangle,
        actor=lead,
        provider_type="client",
        provider_name="Acme",
        data_as_of="2025-12-31",
        reviewed=True,
    )


class TestChange:
    def test_editing_goes_through_the_update_service(
        self, reviewer_client, reliance, validation, qualified_reviewer
    ):
        url = reverse("admin:artefacts_datareliance_change", args=(reliance.pk,))
        page = reviewer_client.get(url)
        form = page.context["adminform"].form
        assert "artefact" not in form.fields  # an entry belongs to its artefact for good
        assert list(form.fields["validation_run"].queryset) == [validation]
        mark = audit_mark()
        data = admin_form_data(page) | {
            "known_limitations": "Large losses capped at 1m.",
            "validation_run": validation.pk,
        }

        response = reviewer_client.post(url, data)

        assert response.status_code == 302
        reliance.refresh_from_db()
        assert reliance.known_limitations == "Large losses capped at 1m."
        assert reliance.validation_run == validation
        assert reliance.updated_by == qualified_reviewer
        [event] = audit_events_since(mark)
        assert event.action == AuditAction.DATA_RELIANCE_UPDATE
        assert set(event.new_value) == {"known_limitations", "validation_run"}

    def test_a_completed_engagements_register_is_closed(
        self, lead_client, active, reliance, lead, qualified_reviewer
    ):
        url = reverse("admin:artefacts_datareliance_change", args=(reliance.pk,))
        data = admin_form_data(lead_client.get(url)) | {"provider_name": "Acme Group"}
        final_sign_off(active, requester=lead, approver=qualified_reviewer)
        engagement_complete(engagement=active, actor=lead)
        before = database_state()
        response = lead_client.post(url, data)
        assert response.status_code == 200
        [(level, text)] = admin_messages(response)
        assert level == "error" and "accepts no new data reliance entries" in text
        assert database_state() == before

    def test_entries_are_never_deleted(self, reviewer_client, reliance):
        delete = reverse("admin:artefacts_datareliance_delete", args=(reliance.pk,))
        assert reviewer_client.post(delete, {"post": "yes"}).status_code == 403
        assert DataReliance.objects.filter(pk=reliance.pk).exists()

    def test_the_changelist_filters_by_provider_and_review(
        self, lead_client, reliance, active, lead
    ):
        unreviewed = reliance_record(
            artefact=artefact_in(active, actor=lead, name="Broker", artefact_type="csv"),
            actor=lead,
            provider_type="third_party",
            provider_name="Broker",
            data_as_of="2025-12-31",
            reviewed=False,
            not_reviewed_reason="Late.",
        )
        assert set(lead_client.get(CHANGELIST).context["cl"].result_list) == {
            reliance,
            unreviewed,
        }
        response = lead_client.get(CHANGELIST, {"reviewed__exact": "0"})
        assert list(response.context["cl"].result_list) == [unreviewed]
        response = lead_client.get(CHANGELIST, {"provider_type__exact": "client"})
        assert list(response.context["cl"].result_list) == [reliance]


def test_the_engagement_page_costs_the_same_with_many_input_data(lead_client, active, lead):
    url = engagement_url(active)

    def grow(count, start):
        for number in range(start, start + count):
            data = artefact_in(
                active,
                actor=lead,
                name=f"Data {number}",
                content=f"claim,paid\n{number},1\n".encode(),
                artefact_type="csv",
            )
            if number % 2:
                reliance_record(
                    artefact=data,
                    actor=lead,
                    provider_type="internal",
                    provider_name="Claims system",
                    data_as_of="2025-12-31",
                    reviewed=True,
                )

    grow(3, 0)
    few, _ = count_queries(lead_client, url)
    grow(30, 3)
    many, response = count_queries(lead_client, url)
    assert len(response.context["data_reliance"]) == 33
    # The page's latest timeline events name what their changes point at: one query per
    # kind of object among them (audit.file_note), which the newest events decide.
    assert abs(many - few) <= 3, f"{few} queries with 3 input data, {many} with 33"
