"""Reproducible runs in the admin: the run page shows what it ran with, its replays, and replays.

A real chain ladder run on RAA (the immediate task backend), fetched and replayed by staff
actuaries of the Actuaries group through the run page's Replay button, which calls
`workflow_run_replay`; refusals are error messages, a mismatch a warning.
"""

import pytest
from django.urls import reverse

from artefacts.services import artefact_delete
from audit.choices import AuditAction
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
from tests.factories import ReplayRecordFactory
from tests.factories.states import (
    admin_messages,
    audit_events_since,
    audit_mark,
    database_state,
    run_in,
)
from workflows import reserving
from workflows.choices import WorkflowType
from workflows.models import ReplayRecord

from .conftest import reserving_params

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

RESERVE_FILES = {
    "chain_ladder_reserves.csv",
    "chain_ladder_reserves.xlsx",
    "chain_ladder_chart.png",
}


@pytest.fixture
def reserve_run(create_run, queue_and_run, raa, lead):
    """A chain ladder run on RAA, executed by the runner as the lead (waiting for sign-off)."""
    run = create_run(
        WorkflowType.RESERVE_CALCULATION,
        reserving_params(raa, allow_negative_development=True),
        name="Chain ladder RAA",
    )
    run = queue_and_run(run)
    assert run.status == "waiting_approval"
    return run


def change_url(run):
    return reverse("admin:workflows_workflowrun_change", args=(run.pk,))


def replay_url(run):
    return reverse("admin:workflows_workflowrun_move", args=(run.pk, "replay"))


def test_the_run_page_shows_its_provenance_readably(lead_client, reserve_run, raa):
    response = lead_client.get(change_url(reserve_run))
    provenance = response.context["run_details"].provenance
    [triangle] = provenance.inputs
    assert triangle["param"] == "triangle_artefact" and triangle["artefact"].pk == raa.pk
    assert triangle["content_hash"] == raa.content_hash and triangle["unchanged"]
    recorded = reserve_run.provenance
    assert provenance.parameters_hash == recorded["parameters"]["sha256"]
    assert (
        dict(provenance.libraries)["chainladder"]
        == recorded["environment"]["libraries"]["chainladder"]
    )
    assert provenance.implementation.endswith("ReserveCalculation")
    html = response.content.decode()
    assert 'id="run-provenance"' in html and raa.content_hash in html
    assert recorded["parameters"]["sha256"] in html
    assert reverse("admin:artefacts_artefact_change", args=(raa.pk,)) in html
    # The raw JSON is no longer a field of its own: the section shows it.
    assert "provenance" not in response.context["adminform"].form.fields
    assert "Not replayed yet" in html


def test_the_replay_button_is_offered_for_finished_runnable_runs_only(
    lead_client, reserve_run, engagement, lead
):
    assert replay_url(reserve_run) in lead_client.get(change_url(reserve_run)).content.decode()
    custom = run_in(engagement, actor=lead, name="Spreadsheet study", start=True)
    assert replay_url(custom) not in lead_client.get(change_url(custom)).content.decode()


def test_replay_from_the_run_page_matches(lead_client, reserve_run, lead):
    mark = audit_mark()

    response = lead_client.post(replay_url(reserve_run))

    assert response.status_code == 302 and response.url == change_url(reserve_run)
    [(level, text)] = admin_messages(response)
    assert level == "success"
    assert text == (
        "Replay of workflow run “Chain ladder RAA”: matched — all 3 output(s) reproduced "
        "byte for byte."
    )
    record = ReplayRecord.objects.get(run=reserve_run)
    assert record.matched and record.replayed_by == lead
    assert AuditAction.WORKFLOW_REPLAY in [event.action for event in audit_events_since(mark)]

    page = lead_client.get(change_url(reserve_run))
    [replay] = page.context["run_details"].replays
    assert replay.record == record
    assert {output["file_name"] for output in replay.outputs} == RESERVE_FILES
    html = page.content.decode()
    assert f'id="replay-{record.pk}"' in html and "✓ same bytes" in html


def test_a_replay_that_does_not_match_is_a_warning(lead_client, reserve_run, monkeypatch):
    original = reserving.reserve_result_csv
    monkeypatch.setattr(
        reserving, "reserve_result_csv", lambda result: original(result) + b"# changed\n"
    )

    response = lead_client.post(replay_url(reserve_run))

    [(level, text)] = admin_messages(response)
    assert level == "warning"
    assert text == (
        "Replay of workflow run “Chain ladder RAA”: did not match — chain_ladder_reserves.csv "
        "differ from the stored artefacts (see the replay below)."
    )
    html = lead_client.get(change_url(reserve_run)).content.decode()
    assert "did not match" in html and "✗ differs" in html


def test_a_replay_whose_input_went_away_is_refused_with_the_message(
    lead_client, reserve_run, raa, lead
):
    artefact_delete(artefact=raa, actor=lead)
    before = database_state()
    response = lead_client.post(replay_url(reserve_run))
    [(level, text)] = admin_messages(response)
    assert level == "error"
    assert text.startswith(
        "Cannot replay workflow run “Chain ladder RAA”: its input “RAA” (version 1, artefact"
    )
    assert database_state() == before
    page = lead_client.get(change_url(reserve_run))
    assert "changed or gone" in page.content.decode()


def test_another_team_cannot_replay(client, reserve_run, outsider):
    client.force_login(outsider)
    response = client.post(replay_url(reserve_run))
    assert response.status_code == 302 and response.url == reverse("admin:index")
    assert not ReplayRecord.objects.exists()


def test_the_run_page_costs_the_same_with_many_replays(lead_client, reserve_run):
    url = change_url(reserve_run)
    lead_client.post(replay_url(reserve_run))
    for _ in range(2):
        ReplayRecordFactory(run=reserve_run, outputs=ReplayRecord.objects.first().outputs)
    few, _ = count_queries(lead_client, url)
    for _ in range(30):
        ReplayRecordFactory(run=reserve_run, matched=False, error_message="Step 2 failed")
    many, response = count_queries(lead_client, url)
    details = response.context["run_details"]
    assert len(details.replays) == 20 and details.more_replays
    assert many == few, f"{few} queries with 3 replays, {many} with 33"
