"""load_reserving_demo: real chain ladder results for a first look, loaded once."""

import pytest

from approvals.choices import ApprovalStatus
from artefacts.models import Artefact
from demo.reserving import load_reserving_demo
from tests.factories.states import database_state
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def test_the_demo_uploads_two_triangles_and_runs_chain_ladder_on_them(
    engagement, actuary, reviewer
):
    demo = load_reserving_demo(engagement=engagement, actor=actuary, reviewer=reviewer)

    assert set(demo.triangles) == {"raa", "genins"}
    assert {a.artefact_type for a in demo.triangles.values()} == {"triangle"}
    raa_run, genins_run = demo.runs
    assert raa_run.status == "waiting_approval"
    assert raa_run.output_summary["totals"]["ibnr"] == pytest.approx(52_135, abs=1)
    assert raa_run.approvals.get().status == ApprovalStatus.PENDING
    assert genins_run.status == "completed"
    assert genins_run.output_summary["totals"]["ibnr"] == pytest.approx(18_680_856, abs=1)
    approval = genins_run.approvals.get()
    assert approval.status == ApprovalStatus.APPROVED and approval.approver == reviewer
    assert raa_run.started_by == genins_run.started_by == actuary
    assert Artefact.objects.filter(workflow_run__in=demo.runs).count() == 6
    assert len(demo.created) == 5


def test_the_demo_is_loaded_once(engagement, actuary, reviewer):
    load_reserving_demo(engagement=engagement, actor=actuary, reviewer=reviewer)
    before = database_state()

    again = load_reserving_demo(engagement=engagement, actor=actuary, reviewer=reviewer)

    assert again.created == [] and database_state() == before
    assert WorkflowRun.objects.filter(engagement=engagement).count() == 2


def test_without_a_reviewer_both_runs_wait_for_approval(engagement, actuary):
    demo = load_reserving_demo(engagement=engagement, actor=actuary)
    assert [run.status for run in demo.runs] == ["waiting_approval", "waiting_approval"]
