"""Reproducible runs (ASOP 56): provenance recorded when a run starts, and replays of it.

A replay re-executes a finished run on its recorded inputs without storing anything
and reports whether every output artefact's SHA-256 matches; it is refused when an
input changed or went away, and kept as evidence (ReplayRecord, workflow_replay).
"""

import hashlib
import io
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from artefacts.models import Artefact
from artefacts.services import artefact_delete
from audit.choices import AuditAction
from audit.models import AuditLog
from records.exceptions import Conflict, NotAllowed
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    lead,
    lead_client,
    outsider,
    outsider_client,
    reader,
)
from tests.factories import EngagementMemberFactory, UserFactory
from tests.factories.states import audit_events_since, audit_mark, database_state, run_in
from tests.workflows.conftest import reserving_params
from workflows import reserving
from workflows.choices import WorkflowType
from workflows.models import ReplayRecord
from workflows.provenance import LIBRARIES, canonical_json_hash
from workflows.services import workflow_run_replay

__all__ = ("api_client", "lead", "lead_client", "outsider", "outsider_client")

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
# What may differ within one test: a commit made to the checkout while it runs.
SAME_CODE = {"git_commit"}
RUNS = f"{API}/workflow-runs/"
RESERVE_FILES = (
    "chain_ladder_reserves.csv",
    "chain_ladder_reserves.xlsx",
    "chain_ladder_chart.png",
)


@pytest.fixture
def reserve_run(create_run, queue_and_run, raa):
    """A chain ladder run on RAA, executed by the runner (waiting for its sign-off)."""
    run = create_run(
        WorkflowType.RESERVE_CALCULATION,
        reserving_params(raa, allow_negative_development=True),
        name="Chain ladder RAA",
    )
    run = queue_and_run(run)
    assert run.status == "waiting_approval"
    return run


def corrupt(artefact, content=b"origin,development,value\n1981,12,1\n"):
    """Overwrite an artefact's stored bytes behind the back office's back."""
    with open(artefact.file.path, "wb") as handle:
        handle.write(content)


# --- provenance -----------------------------------------------------------------------------


def test_a_reserving_run_records_what_it_ran_with(reserve_run, raa):
    provenance = reserve_run.provenance
    [recorded] = provenance["inputs"]
    assert recorded == {
        "param": "triangle_artefact",
        "artefact_id": str(raa.pk),
        "name": "RAA",
        "version": 1,
        "file_name": "raa.csv",
        "file_size": raa.file_size,
        "content_hash": raa.content_hash,
    }
    assert recorded["content_hash"] == hashlib.sha256(raa.file.open("rb").read()).hexdigest()
    assert provenance["parameters"]["sha256"] == canonical_json_hash(reserve_run.input_params)
    assert provenance["workflow_type"] == "reserve_calculation"
    assert provenance["implementation"] == (
        "workflows.implementations.reserving.ReserveCalculation"
    )
    environment = provenance["environment"]
    assert environment["python"] == platform.python_version()
    assert set(environment["libraries"]) == set(LIBRARIES)
    assert all(environment["libraries"][name] for name in LIBRARIES), environment
    assert environment["app_version"]
    # The history says when it was recorded: right after the start, before step 1.
    reasons = [h.history_change_reason for h in reserve_run.history.order_by("history_date")]
    assert reasons[reasons.index("Start") + 1] == "Provenance recorded"


def test_the_provenance_is_recorded_once_and_only_while_running(reserve_run, actuary):
    from workflows.services import workflow_run_record_provenance

    before = database_state()
    with pytest.raises(Conflict, match="it is waiting for approval, not running"):
        workflow_run_record_provenance(run=reserve_run, actor=actuary, provenance={"x": 1})
    assert database_state() == before


def test_git_is_optional(monkeypatch, settings, tmp_path):
    from workflows import provenance

    settings.BASE_DIR = tmp_path  # not a checkout
    assert provenance.git_commit() is None
    monkeypatch.setattr(provenance.subprocess, "run", _raise(FileNotFoundError("git")))
    assert provenance.environment()["git_commit"] is None


# --- replay ---------------------------------------------------------------------------------


def test_a_replay_of_a_reserving_run_matches(reserve_run, reviewer):
    artefacts_before = Artefact.all_objects.count()
    mark = audit_mark()

    record = workflow_run_replay(run=reserve_run, actor=reviewer)

    assert record.matched is True and record.error_message == ""
    assert [o["file_name"] for o in record.outputs] == list(RESERVE_FILES)
    stored = {a.file_name: a for a in Artefact.objects.filter(workflow_run=reserve_run)}
    for output in record.outputs:
        assert output["match"] is True
        assert output["original_hash"] == output["replay_hash"]
        assert output["original_hash"] == stored[output["file_name"]].content_hash
        assert output["artefact_id"] == str(stored[output["file_name"]].pk)
    assert set(record.environment["differences"]) <= SAME_CODE
    assert (
        record.environment["replay"]["libraries"]
        == reserve_run.provenance["environment"]["libraries"]
    )
    assert record.inputs[0]["content_hash"] == reserve_run.provenance["inputs"][0]["content_hash"]
    # Evidence on record; no artefact stored, and the run is as it was.
    assert Artefact.all_objects.count() == artefacts_before
    assert record.replayed_by == reviewer and record.history.count() == 1
    reserve_run.refresh_from_db()
    assert reserve_run.status == "waiting_approval"
    events = audit_events_since(mark)
    replay_events = [e for e in events if e.action == AuditAction.WORKFLOW_REPLAY]
    assert [(e.user, e.resource_id, e.severity) for e in replay_events] == [
        (reviewer, reserve_run.pk, "info")
    ]
    assert replay_events[0].new_value == {"replay_record": str(record.pk), "matched": True}
    # The inputs were read back (and checked) on record.
    assert {e.metadata["purpose"] for e in events if e.action == AuditAction.ARTEFACT_ACCESS} == {
        "replay input check",
        "workflow input",
    }


def test_a_data_validation_run_replays_too(create_run, queue_and_run, raa, actuary):
    run = queue_and_run(create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa)))
    assert run.status == "completed"
    record = workflow_run_replay(run=run, actor=actuary)
    assert record.matched and [o["file_name"] for o in record.outputs] == [
        "triangle_validation_report.md"
    ]


def test_a_replay_after_the_input_file_changed_is_refused(reserve_run, raa, reviewer):
    corrupt(raa)
    with pytest.raises(
        Conflict,
        match=r"Cannot replay workflow run “Chain ladder RAA”: its input “RAA” \(version 1\) "
        r"cannot be read as recorded",
    ):
        workflow_run_replay(run=reserve_run, actor=reviewer)
    assert not ReplayRecord.objects.exists()
    # The bad bytes were reported as an incident.
    assert AuditLog.objects.filter(
        action=AuditAction.ARTEFACT_ACCESS, severity="critical", resource_id=raa.pk
    ).exists()


def test_a_replay_after_the_input_went_away_is_refused(reserve_run, raa, actuary):
    artefact_delete(artefact=raa, actor=actuary)
    with pytest.raises(Conflict, match=r"its input “RAA” .* no longer exists or was deleted"):
        workflow_run_replay(run=reserve_run, actor=actuary)
    assert not ReplayRecord.objects.exists()


def test_a_replay_whose_output_differs_reports_the_mismatch(reserve_run, reviewer, monkeypatch):
    original = reserving.reserve_result_csv
    monkeypatch.setattr(
        reserving, "reserve_result_csv", lambda result: original(result) + b"# changed\n"
    )

    record = workflow_run_replay(run=reserve_run, actor=reviewer)

    assert record.matched is False
    matches = {o["file_name"]: o["match"] for o in record.outputs}
    assert matches == {
        "chain_ladder_reserves.csv": False,
        "chain_ladder_reserves.xlsx": True,
        "chain_ladder_chart.png": True,
    }
    event = AuditLog.objects.get(action=AuditAction.WORKFLOW_REPLAY)
    assert event.severity == "warning" and event.new_value["matched"] is False


def test_a_replay_whose_step_fails_is_recorded_as_not_matching(reserve_run, reviewer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the numerical core changed")

    monkeypatch.setattr(reserving, "chain_ladder_mack", broken)
    record = workflow_run_replay(run=reserve_run, actor=reviewer)
    assert record.matched is False and record.outputs == []
    assert record.error_message == (
        "The replay of workflow run “Chain ladder RAA” failed at step 2 of 4 (Fit chain ladder "
        "with Mack standard errors): RuntimeError: the numerical core changed"
    )


def test_environment_differences_are_reported(reserve_run, reviewer, monkeypatch):
    from workflows import provenance

    real = provenance.environment

    def newer():
        environment = real()
        environment["libraries"] = {**environment["libraries"], "numpy": "99.0"}
        return environment

    monkeypatch.setattr(provenance, "environment", newer)
    record = workflow_run_replay(run=reserve_run, actor=reviewer)
    assert record.matched  # same bytes all the same
    original = reserve_run.provenance["environment"]["libraries"]["numpy"]
    differences = record.environment["differences"]
    assert differences["numpy"] == {"original": original, "replay": "99.0"}
    assert set(differences) <= {"numpy", *SAME_CODE}


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("custom", "does not run custom workflows itself"),
        ("pending", "it is pending"),
        ("cancelled", "it is cancelled"),
    ],
)
def test_replays_are_refused_for_what_cannot_be_replayed(
    engagement, actuary, raa, create_run, kind, match
):
    if kind == "custom":
        run = run_in(engagement, actor=actuary, start=True)
    else:
        params = reserving_params(raa, allow_negative_development=True)
        run = create_run(WorkflowType.RESERVE_CALCULATION, params)
    if kind == "cancelled":
        from workflows.services import workflow_run_cancel

        run = workflow_run_cancel(run=run, actor=actuary)
    before = database_state()
    with pytest.raises(Conflict, match=match):
        workflow_run_replay(run=run, actor=actuary)
    assert database_state() == before


def test_a_run_without_recorded_provenance_is_not_replayed(reserve_run, actuary):
    # As a run the runner finished before provenance was recorded: its inputs are unknown.
    type(reserve_run).objects.filter(pk=reserve_run.pk).update(provenance={})
    with pytest.raises(Conflict, match="has no recorded provenance"):
        workflow_run_replay(run=reserve_run, actor=actuary)
    assert not ReplayRecord.objects.exists()


def test_only_working_team_members_replay(reserve_run, engagement):
    outsider = UserFactory(username="outsider")
    with pytest.raises(NotAllowed, match="may not replay workflow runs of engagement"):
        workflow_run_replay(run=reserve_run, actor=outsider)


# --- the replay_workflow command ------------------------------------------------------------


def test_the_command_reports_a_match(reserve_run, reviewer):
    out = io.StringIO()
    call_command("replay_workflow", str(reserve_run.pk), "--user", "reviewer", stdout=out)
    text = out.getvalue()
    assert "✓ Chain ladder RAA: chain ladder reserves (CSV) (chain_ladder_reserves.csv)" in text
    assert "matched: every output is reproduced byte for byte" in text
    assert ReplayRecord.objects.get().replayed_by == reviewer


def test_the_command_exits_1_on_a_mismatch(reserve_run, actuary, monkeypatch):
    original = reserving.reserve_result_csv
    monkeypatch.setattr(reserving, "reserve_result_csv", lambda r: original(r) + b"#\n")
    out = io.StringIO()
    # A CommandError is what manage.py turns into exit status 1 (its returncode).
    with pytest.raises(CommandError, match="did not match: see the outputs marked ✗") as error:
        call_command("replay_workflow", str(reserve_run.pk), stdout=out)
    assert error.value.returncode == 1
    assert "✗ Chain ladder RAA: chain ladder reserves (CSV)" in out.getvalue()
    assert "✓ Chain ladder RAA: chain ladder reserves (Excel)" in out.getvalue()
    # Default actor: the engagement's lead actuary.
    assert ReplayRecord.objects.get().replayed_by == actuary


def test_the_exit_status_is_1_when_the_run_cannot_be_replayed():
    result = subprocess.run(
        [sys.executable, "manage.py", "replay_workflow", "not-a-uuid"],
        cwd=REPO_ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "No workflow run with id not-a-uuid" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["not-a-uuid"], "No workflow run with id not-a-uuid."),
        (["{run}", "--user", "nobody"], "No active user named 'nobody'."),
    ],
)
def test_the_command_refuses_unknown_runs_and_users(reserve_run, arguments, message):
    arguments = [a.format(run=reserve_run.pk) for a in arguments]
    with pytest.raises(CommandError, match=message):
        call_command("replay_workflow", *arguments)


def test_the_command_refuses_a_changed_input(reserve_run, raa):
    corrupt(raa)
    with pytest.raises(CommandError, match="Cannot replay workflow run “Chain ladder RAA”"):
        call_command("replay_workflow", str(reserve_run.pk), stdout=io.StringIO())


# --- API ------------------------------------------------------------------------------------


@pytest.fixture
def api_run(engagement, lead, raa):
    """A data validation run executed by the runner for the lead (an API user)."""
    from tests.factories.states import runnable_run_in
    from workflows.runner import execute_run
    from workflows.services import workflow_run_queue

    run = runnable_run_in(engagement, actor=lead, triangle=raa, name="RAA check")
    workflow_run_queue(run=run, actor=lead, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    assert run.status == "completed", run.error_message
    return run


def test_api_replays_a_run_and_lists_its_replays(api_run, lead, lead_client):
    response = lead_client.post(f"{RUNS}{api_run.pk}/replay/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["matched"] is True and body["run"] == str(api_run.pk)
    assert body["replayed_by"] == lead.pk
    [output] = body["outputs"]
    assert output["match"] is True and output["original_hash"] == output["replay_hash"]
    assert set(body["environment"]["differences"]) <= SAME_CODE
    listed = lead_client.get(f"{RUNS}{api_run.pk}/replays/")
    assert listed.json()["count"] == 1
    assert [row["id"] for row in listed.json()["results"]] == [body["id"]]
    detail = lead_client.get(f"{RUNS}{api_run.pk}/").json()
    assert (
        detail["provenance"]["inputs"][0]["artefact_id"]
        == api_run.input_params["triangle_artefact"]
    )


def test_api_replay_of_a_changed_input_is_409(api_run, raa, lead_client):
    corrupt(raa)
    response = lead_client.post(f"{RUNS}{api_run.pk}/replay/")
    assert_error(response, 409, "conflict", match="cannot be read as recorded")
    assert not ReplayRecord.objects.exists()


def test_api_replays_are_scoped_and_need_permissions(api_run, engagement, outsider_client):
    assert_error(outsider_client.post(f"{RUNS}{api_run.pk}/replay/"), 404, "not_found")
    assert_error(outsider_client.get(f"{RUNS}{api_run.pk}/replays/"), 404, "not_found")
    validator = UserFactory(username="validator")
    EngagementMemberFactory(engagement=engagement, user=validator, role="reviewer")
    viewer = client_for(reader(validator))
    assert_error(viewer.post(f"{RUNS}{api_run.pk}/replay/"), 403, "permission_denied")
    assert viewer.get(f"{RUNS}{api_run.pk}/replays/").status_code == 200


def test_placeholder_runs_are_400(engagement, lead_client):
    response = lead_client.post(
        RUNS,
        {"engagement": str(engagement.pk), "workflow_type": "ibnr_estimation", "name": "IBNR"},
        format="json",
    )
    body = assert_error(response, 400, "invalid", match="triangle_artefact is required")
    assert set(body["errors"]) == {"input_params"}


def _raise(error):
    def raiser(*args, **kwargs):
        raise error

    return raiser
