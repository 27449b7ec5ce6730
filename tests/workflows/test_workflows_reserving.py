"""The reserving workflows end to end: services → task (immediate backend) → runner → results.

Totals are checked against the figures Mack published for RAA (1994: total IBNR
52,135, standard error 26,909) and GenIns (1993: total reserve 18,680,856, standard
error 2,447,095) and against the numerical core run directly on the same file.
"""

import csv
import io
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from approvals.choices import ApprovalStatus, ApprovalType
from approvals.services import approval_approve, approval_reject
from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from engagements.services import engagement_activate
from records.exceptions import InvalidInput, NotAllowed
from tests.admin_fixtures import actuaries_group
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import NO_CONFLICT, database_state
from tests.workflows.conftest import reserving_params, sample_csv, upload_triangle
from workflows.choices import WorkflowType
from workflows.models import WorkflowRun
from workflows.reserving import chain_ladder_mack, read_triangle, triangle_analysis
from workflows.runner import execute_run
from workflows.services import workflow_run_create, workflow_run_queue

__all__ = ("actuaries_group",)

pytestmark = pytest.mark.django_db

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("pandas", "numpy", "chainladder", "matplotlib", "openpyxl", "sklearn", "numba")
RESERVE_TYPES = (WorkflowType.RESERVE_CALCULATION, WorkflowType.IBNR_ESTIMATION)


def artefacts_of(run):
    return {a.artefact_type: a for a in Artefact.objects.filter(workflow_run=run)}


def core_result(content, **options):
    triangle = read_triangle(
        content,
        "triangle.csv",
        layout="auto",
        cumulative=True,
        measure="paid",
        allow_negative_development=True,
    )
    return chain_ladder_mack(triangle, **options)


# --- reserve calculation / IBNR estimation -------------------------------------------------


@pytest.mark.parametrize("workflow_type", RESERVE_TYPES)
def test_chain_ladder_on_raa_waits_for_approval_with_mack_totals(
    create_run, queue_and_run, raa, actuary, workflow_type
):
    run = create_run(workflow_type, reserving_params(raa, allow_negative_development=True))
    assert run.step_count == 4

    run = queue_and_run(run)

    assert run.status == "waiting_approval"
    assert (run.current_step, run.progress_percent) == (4, 100)
    assert run.queued_by == run.started_by == actuary
    summary = run.output_summary
    totals = summary["totals"]
    # Mack (1994) on RAA: total IBNR 52,135, standard error 26,909.
    assert totals["ibnr"] == pytest.approx(52_135, abs=1)
    assert totals["mack_se"] == pytest.approx(26_909, abs=1)
    expected = core_result(sample_csv("raa"))
    assert totals == {**expected.totals.to_dict(), **totals}
    assert {key: totals[key] for key in ("latest", "ultimate", "ibnr", "mack_se", "cv")} == (
        pytest.approx(
            {
                "latest": expected.totals.latest,
                "ultimate": expected.totals.ultimate,
                "ibnr": expected.totals.ibnr,
                "mack_se": expected.totals.mack_se,
                "cv": expected.totals.cv,
            }
        )
    )
    assert totals["method"] == "chain_ladder" and totals["percentiles"] is None
    ldfs = [factor["ldf"] for factor in summary["development_factors"]]
    assert ldfs == pytest.approx([factor.ldf for factor in expected.development_factors])
    assert ldfs[0] == pytest.approx(2.999359, abs=1e-6)
    assert summary["options"]["average"] == "volume" and summary["options"]["tail_factor"] is None
    assert summary["triangle"]["artefact_id"] == str(raa.pk)
    assert summary["triangle"]["content_hash"] == raa.content_hash
    assert any("negative development for origin 1982" in w for w in summary["warnings"])

    files = artefacts_of(run)
    assert set(files) == {ArtefactType.CSV, ArtefactType.EXCEL, ArtefactType.CHART}
    assert {a["id"] for a in summary["artefacts"]} == {str(a.pk) for a in files.values()}
    assert all(a.engagement_id == run.engagement_id and a.status == "draft" for a in files.values())
    assert files[ArtefactType.CHART].file_name == "chain_ladder_chart.png"
    with files[ArtefactType.CSV].file.open("rb") as handle:
        rows = list(csv.reader(io.StringIO(handle.read().decode())))
    assert rows[-1][0] == "Total" and float(rows[-1][5]) == pytest.approx(52_135.23, abs=0.01)

    [approval] = run.approvals.all()
    assert approval.approval_type == ApprovalType.WORKFLOW_APPROVAL
    assert approval.status == ApprovalStatus.PENDING and approval.requested_by == actuary
    assert "total IBNR 52,135" in approval.request_notes


def test_genins_matches_mack_1993(create_run, queue_and_run, genins):
    run = queue_and_run(create_run(WorkflowType.IBNR_ESTIMATION, reserving_params(genins)))
    totals = run.output_summary["totals"]
    assert run.status == "waiting_approval"
    assert totals["ibnr"] == pytest.approx(18_680_856, abs=1)
    assert totals["mack_se"] == pytest.approx(2_447_095, abs=1)
    assert run.output_summary["triangle"]["layout"] == "wide"


def test_average_and_tail_options_reach_the_core(create_run, queue_and_run, genins):
    params = reserving_params(genins, average="simple", tail_factor=1.05, layout="wide")
    run = queue_and_run(create_run(WorkflowType.RESERVE_CALCULATION, params))
    expected = core_result(sample_csv("genins", "wide"), average="simple", tail_factor=1.05)
    summary = run.output_summary
    assert summary["options"]["average"] == "simple"
    assert summary["options"]["tail_factor"] == 1.05
    assert summary["totals"]["ibnr"] == pytest.approx(expected.totals.ibnr)
    assert summary["development_factors"][-1]["ldf"] == pytest.approx(1.05)
    assert run.input_params == {**params, "allow_negative_development": True}


def test_approving_the_workflow_approval_completes_the_run(
    create_run, queue_and_run, raa, actuary, reviewer
):
    run = queue_and_run(
        create_run(
            WorkflowType.RESERVE_CALCULATION, reserving_params(raa, allow_negative_development=True)
        )
    )
    approval = run.approvals.get()
    # The user who queued (and so started) the run may not sign it off.
    with pytest.raises(NotAllowed, match="reviews must be independent"):
        approval_approve(
            approval=approval, actor=actuary, conflict_of_interest_statement=NO_CONFLICT
        )

    approval_approve(
        approval=approval,
        actor=reviewer,
        notes="Checked against Mack.",
        conflict_of_interest_statement=NO_CONFLICT,
    )

    run.refresh_from_db()
    assert run.status == "completed" and run.completed_at is not None
    assert run.output_summary["totals"]["ibnr"] == pytest.approx(52_135, abs=1)


def test_rejecting_the_workflow_approval_fails_the_run(create_run, queue_and_run, raa, reviewer):
    run = queue_and_run(
        create_run(
            WorkflowType.RESERVE_CALCULATION, reserving_params(raa, allow_negative_development=True)
        )
    )
    approval_reject(
        approval=run.approvals.get(),
        actor=reviewer,
        reason="tail",
        notes="Needs a tail factor.",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error_message.startswith("Rejected by")
    assert run.error_details["decision_notes"] == "Needs a tail factor."


# --- triangle analysis and data validation -----------------------------------------------


def test_triangle_analysis_writes_factors_and_heatmap_and_completes(create_run, queue_and_run, raa):
    params = reserving_params(raa, allow_negative_development=True)
    run = queue_and_run(create_run(WorkflowType.TRIANGLE_ANALYSIS, params))

    assert run.status == "completed" and not run.approvals.exists()
    assert run.current_step == run.step_count == 4
    files = artefacts_of(run)
    assert set(files) == {ArtefactType.CSV, ArtefactType.CHART}
    with files[ArtefactType.CHART].file.open("rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with files[ArtefactType.CSV].file.open("rb") as handle:
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(handle.read().decode()))}
    assert rows["origin"][:2] == ["12-24", "24-36"]
    # The 1981 factor 12-24 is 8,269 / 5,012; the volume average is chain ladder's LDF.
    assert float(rows["1981"][0]) == pytest.approx(8_269 / 5_012, abs=1e-6)
    assert float(rows["Volume-weighted average"][0]) == pytest.approx(2.999359, abs=1e-6)

    summary = run.output_summary
    expected = triangle_analysis(
        read_triangle(
            sample_csv("raa"),
            "raa.csv",
            cumulative=True,
            measure="paid",
            allow_negative_development=True,
        )
    )
    for average in ("simple", "volume"):
        assert summary["averages"][average] == pytest.approx(expected["averages"][average])
    assert summary["periods"][0] == "12-24" and summary["triangle"]["origin_count"] == 10


def test_data_validation_of_a_valid_triangle_writes_a_report(create_run, queue_and_run, genins):
    run = queue_and_run(
        create_run(WorkflowType.DATA_VALIDATION, reserving_params(genins, layout="wide"))
    )
    assert run.status == "completed"
    assert run.output_summary["valid"] is True
    assert run.output_summary["report"]["origin_count"] == 10
    [report] = Artefact.objects.filter(workflow_run=run)
    assert report.artefact_type == ArtefactType.REPORT and report.file_name.endswith(".md")
    with report.file.open("rb") as handle:
        text = handle.read().decode()
    assert "**Result: valid.**" in text and "| minimum_size | passed |" in text


def test_data_validation_reports_an_invalid_triangle_without_failing(
    create_run, queue_and_run, raa
):
    # RAA falls from 15,599 to 15,496 (1982, 72 to 84 months): refused unless allowed.
    run = queue_and_run(create_run(WorkflowType.DATA_VALIDATION, reserving_params(raa)))
    assert run.status == "completed"
    report = run.output_summary["report"]
    assert run.output_summary["valid"] is False
    assert "negative development for origin 1982" in report["errors"][0]
    assert report["errors"][0].startswith("row ")
    [artefact] = Artefact.objects.filter(workflow_run=run)
    with artefact.file.open("rb") as handle:
        text = handle.read().decode()
    assert "**Result: not valid.**" in text and "negative development for origin 1982" in text


# --- bad input ---------------------------------------------------------------------------


@pytest.fixture
def other_engagement(db, actuary):
    engagement = EngagementFactory(lead_actuary=actuary)
    EngagementMemberFactory(engagement=engagement, user=actuary, role="lead")
    return engagement


BAD_PARAMS = [
    ("not an object", lambda a: ["raa"], "must be a JSON object of named parameters, not list"),
    (
        "missing artefact",
        lambda a: {"cumulative": True, "measure": "paid"},
        "triangle_artefact is required",
    ),
    (
        "not a uuid",
        lambda a: reserving_params(a, triangle_artefact="raa.csv"),
        "must be the id \\(a UUID\\)",
    ),
    (
        "unknown artefact",
        lambda a: reserving_params(a, triangle_artefact="00000000-0000-0000-0000-000000000001"),
        "has no artefact 00000000-0000-0000-0000-000000000001 \\(it does not exist",
    ),
    (
        "bad layout",
        lambda a: reserving_params(a, layout="diagonal"),
        "layout must be one of long, wide, auto, not 'diagonal'",
    ),
    (
        "cumulative missing",
        lambda a: {"triangle_artefact": str(a.pk), "measure": "paid"},
        "cumulative is required",
    ),
    (
        "cumulative not bool",
        lambda a: reserving_params(a, cumulative="yes"),
        "cumulative must be true or false",
    ),
    (
        "bad measure",
        lambda a: reserving_params(a, measure="reported"),
        "measure must be one of paid, incurred",
    ),
    (
        "bad average",
        lambda a: reserving_params(a, average="median"),
        "average must be one of volume, simple, regression",
    ),
    (
        "tail below 1",
        lambda a: reserving_params(a, tail_factor=0.95),
        "tail_factor must be a number of at least 1",
    ),
    (
        "tail not a number",
        lambda a: reserving_params(a, tail_factor="1.05"),
        "tail_factor must be a number",
    ),
    (
        "unknown param",
        lambda a: reserving_params(a, tial_factor=1.05),
        "unknown parameter\\(s\\) tial_factor \\(accepted: ",
    ),
    (
        "negative development refused when asked",
        lambda a: reserving_params(a, allow_negative_development=False),
        "Triangle artefact “RAA v1” \\(raa.csv\\) is not a usable triangle: row \\d+, column C "
        "\\('value'\\): negative development for origin 1982",
    ),
]


@pytest.mark.parametrize(("case", "params", "match"), BAD_PARAMS, ids=[c[0] for c in BAD_PARAMS])
def test_bad_input_params_are_refused_at_creation(engagement, actuary, raa, case, params, match):
    before = database_state()
    with pytest.raises(
        InvalidInput, match=r"Invalid input_params \(reserve_calculation\): .*" + match
    ):
        workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.RESERVE_CALCULATION,
            name="Chain ladder",
            input_params=params(raa),
            actor=actuary,
        )
    assert database_state() == before


def test_a_triangle_of_another_engagement_is_refused(engagement, other_engagement, actuary):
    elsewhere = upload_triangle(other_engagement, actor=actuary, content=sample_csv("genins"))
    with pytest.raises(InvalidInput, match=r"has no artefact .* or belongs to another engagement"):
        workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.IBNR_ESTIMATION,
            name="IBNR",
            input_params=reserving_params(elsewhere),
            actor=actuary,
        )


def test_an_unreadable_triangle_names_the_row_and_column(engagement, actuary):
    text_in_numbers = (
        b"origin,development,value\n2019,12,100\n2019,24,n/a\n2020,12,110\n2021,12,120\n"
    )
    artefact = upload_triangle(engagement, actor=actuary, content=text_in_numbers, name="Bad")
    with pytest.raises(
        InvalidInput,
        match=r"Triangle artefact “Bad v1” \(triangle.csv\) is not a usable triangle: "
        r"row 3, column C \('value'\): 'n/a' is not a number",
    ):
        workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.TRIANGLE_ANALYSIS,
            name="Factors",
            input_params=reserving_params(artefact),
            actor=actuary,
        )


def test_a_triangle_whose_file_is_gone_is_refused(engagement, actuary, raa):
    raa.file.storage.delete(raa.file.name)
    with pytest.raises(InvalidInput, match="Triangle artefact “RAA v1” cannot be read: "):
        workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.DATA_VALIDATION,
            name="Check",
            input_params=reserving_params(raa),
            actor=actuary,
        )


def test_data_validation_needs_only_a_readable_file(engagement, actuary, raa):
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.DATA_VALIDATION,
        name="Check RAA",
        input_params=reserving_params(raa),
        actor=actuary,
    )
    assert run.input_params == {
        "triangle_artefact": str(raa.pk),
        "layout": "auto",
        "cumulative": True,
        "measure": "paid",
        "allow_negative_development": False,
    }


def test_a_triangle_deleted_after_queueing_fails_the_run_at_its_input_check(
    engagement, actuary, create_run, raa
):
    from artefacts.services import artefact_delete

    run = create_run(
        WorkflowType.RESERVE_CALCULATION, reserving_params(raa, allow_negative_development=True)
    )
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    artefact_delete(artefact=raa, actor=actuary)

    report = execute_run(run.pk)

    run.refresh_from_db()
    assert report.outcome == run.status == "failed"
    assert run.error_message.startswith("The input check before step 1 of 4 failed: ")
    assert "has no artefact" in run.error_message
    assert run.error_details["step"] == "validate_input"
    assert run.error_details["exception_type"] == "records.exceptions.InvalidInput"


# --- import cost -------------------------------------------------------------------------


def test_the_web_app_imports_no_numerical_library():
    code = (
        "import sys, django; django.setup(); "
        "import workflows.tasks, workflows.registry, workflows.services, demo.reserving; "
        "import django.urls; django.urls.get_resolver().url_patterns; "
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stderr


# --- benchmark ---------------------------------------------------------------------------


@pytest.mark.benchmark
def test_benchmark_reserving_runs_per_minute(engagement, actuary, raa, genins):
    """Print reserve calculations per minute on the bundled triangles, one worker.

    Each run goes the whole way a worker takes it: create, queue (no task: executed
    here, as `run_workflow` does), claim, four steps writing CSV, Excel and PNG
    artefacts, and the sign-off request. One warm-up run (library imports) is excluded.
    """
    engagement_activate(engagement=engagement, actor=actuary)
    triangles = {
        raa: reserving_params(raa, allow_negative_development=True),
        genins: reserving_params(genins),
    }

    def one_run(artefact, number):
        run = workflow_run_create(
            engagement=engagement,
            workflow_type=WorkflowType.RESERVE_CALCULATION,
            name=f"Benchmark {number}",
            input_params=triangles[artefact],
            actor=actuary,
        )
        workflow_run_queue(run=run, actor=actuary, enqueue=False)
        assert execute_run(run.pk).outcome == "waiting_approval"

    one_run(raa, 0)
    runs = 20
    started = time.perf_counter()
    for number in range(runs):
        one_run(list(triangles)[number % 2], number + 1)
    seconds = time.perf_counter() - started
    per_minute = runs * 60 / seconds
    print(
        f"\nreserve_calculation, RAA and GenIns alternating, one worker: {runs} runs in "
        f"{seconds:.1f} s = {per_minute:.0f} runs/minute ({seconds / runs * 1000:.0f} ms per run)"
    )
    assert WorkflowRun.objects.filter(status="waiting_approval").count() == runs + 1
    assert math.isfinite(per_minute)


# --- the admin's reserving fields keep the choices they have no field for ---------------------


def test_editing_the_admin_fields_keeps_the_other_reserving_choices(
    client, actuaries_group, actuary, create_run, genins
):
    from django.urls import reverse

    from tests.admin_fixtures import in_group
    from tests.factories.states import admin_form_data

    client.force_login(in_group(actuary, actuaries_group))
    params = reserving_params(
        genins,
        method="bootstrap_odp",
        random_seed=11,
        exclude=[["2001", 12]],
        tail={"method": "constant", "factor": 1.01, "reason": "benchmark"},
    )
    run = create_run(WorkflowType.RESERVE_CALCULATION, params)
    url = reverse("admin:workflows_workflowrun_change", args=(run.pk,))
    page = client.get(url)
    response = client.post(url, admin_form_data(page) | {"average": "simple"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.input_params["average"] == "simple"
    assert run.input_params["method"] == "bootstrap_odp"
    assert run.input_params["random_seed"] == 11
    assert run.input_params["exclude"] == [["2001", 12]]
    assert run.input_params["tail"]["reason"] == "benchmark"
