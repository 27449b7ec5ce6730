"""The run_workflow command: one run in the foreground, its progress printed, exit 1 on failure."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.factories.states import run_in
from tests.workflows.conftest import reserving_params
from workflows.choices import WorkflowType
from workflows.implementations.base import Step, WorkflowImplementation
from workflows.services import workflow_run_cancel, workflow_run_queue

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]


class Failing(WorkflowImplementation):
    label = "failing"
    steps = (Step("explode", "Explode"),)

    def explode(self):
        raise RuntimeError("the model diverged")


def run_command(*args):
    out = io.StringIO()
    call_command("run_workflow", *args, stdout=out)
    return out.getvalue()


def test_a_pending_run_is_queued_then_run_with_its_progress_printed(
    create_run, raa, actuary, reviewer
):
    run = create_run(
        WorkflowType.RESERVE_CALCULATION, reserving_params(raa, allow_negative_development=True)
    )

    output = run_command(str(run.pk), "--user", "reviewer")

    run.refresh_from_db()
    assert run.status == "waiting_approval" and run.queued_by == run.started_by == reviewer
    lines = output.splitlines()
    assert lines[0] == f"Queued workflow run “{run}” ({run.pk}) as reviewer."
    assert "[1/4] Read and check the triangle …" in lines
    assert any(
        line.startswith("[4/4] Draw latest and ultimate by origin (PNG): done in") for line in lines
    )
    assert any(line.startswith("Waiting for approval after") for line in lines)
    assert lines[-1] == f"Workflow run “{run}” is waiting for approval."


def test_a_queued_run_is_run_as_the_user_who_queued_it(create_run, raa, actuary):
    run = create_run(
        WorkflowType.TRIANGLE_ANALYSIS, reserving_params(raa, allow_negative_development=True)
    )
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    output = run_command(str(run.pk))
    run.refresh_from_db()
    assert run.status == "completed" and run.started_by == actuary
    assert "Queued" not in output and output.splitlines()[-1].endswith("is completed.")


def test_a_failing_run_exits_with_its_error(engagement, actuary, register):
    register(WorkflowType.CUSTOM, Failing)
    run = run_in(engagement, actor=actuary, workflow_type=WorkflowType.CUSTOM, step_count=0)
    with pytest.raises(
        CommandError,
        match=r"” failed: Step 1 of 1 \(Explode\) failed: RuntimeError: the model diverged",
    ):
        run_command(str(run.pk))
    run.refresh_from_db()
    assert run.status == "failed" and run.error_details["exception_type"] == "RuntimeError"


@pytest.mark.parametrize(
    ("setup", "args", "match"),
    [
        ("cancelled", (), r"is cancelled: only pending or queued runs can be run"),
        ("pending", ("--user", "nobody"), r"No active user named 'nobody'"),
        ("csm", (), r"Cannot queue workflow run .*does not run csm_calculation workflows"),
    ],
)
def test_refusals(engagement, actuary, setup, args, match):
    workflow_type = WorkflowType.CSM_CALCULATION if setup == "csm" else WorkflowType.CUSTOM
    run = run_in(engagement, actor=actuary, workflow_type=workflow_type)
    if setup == "cancelled":
        workflow_run_cancel(run=run, actor=actuary)
    with pytest.raises(CommandError, match=match):
        run_command(str(run.pk), *args)


@pytest.mark.parametrize("run_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_run_is_refused(run_id):
    with pytest.raises(CommandError, match=f"No workflow run with id {run_id}"):
        run_command(run_id)


def test_the_exit_status_is_1_when_the_run_cannot_be_run():
    result = subprocess.run(
        [sys.executable, "manage.py", "run_workflow", "not-a-uuid"],
        cwd=REPO_ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "No workflow run with id not-a-uuid" in result.stderr
