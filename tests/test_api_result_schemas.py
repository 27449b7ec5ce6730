"""The typed result fields of the schema are what the server really writes.

Real values, made the way production makes them (the reserving engine, the runner,
decisions and sign-offs through the services and the API), are validated against the
schema's components with every object closed (tests/openapi_shapes.py): a key added to
a result without its schema, or a schema key a result leaves out, fails here. The
reserving result's shapes are derived from the engine's dataclasses
(`records.api.shapes.dataclass_shape`), checked here for every method.
"""

import dataclasses
import datetime
import inspect
import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject
from artefacts.choices import ArtefactType
from artefacts.services import artefact_create, artefact_delete
from engagements.services import engagement_activate, engagement_complete
from records.api.shapes import Shape, dataclass_shape
from tests.api_fixtures import API, client_for, lead, lead_client, results, worker
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import NO_CONFLICT, final_sign_off, final_sign_off_request
from tests.openapi_shapes import assert_shape, components, openapi_schema
from tests.reserving.conftest import QUIET_CHAINLADDER, sample
from tests.workflows.conftest import reserving_params, sample_csv
from tests.workflows.reserving_api import csv_of, premium_csv
from workflows import reserving
from workflows.choices import WorkflowType
from workflows.reserving import DevelopmentSelection, FactorOverride, TailSelection
from workflows.reserving import results as engine_results
from workflows.runner import execute_run
from workflows.services import workflow_run_create, workflow_run_queue

__all__ = ("lead", "lead_client")

RUNS = f"{API}/workflow-runs/"
# What a reserving run adds to the engine's ReserveResult.to_dict().
RUN_KEYS = ("triangle", "exposure", "prior_run", "artefacts")
SHAPED_DATACLASSES = (
    engine_results.OriginReserve,
    engine_results.ReserveTotals,
    engine_results.DevelopmentFactor,
    engine_results.ExcludedPoint,
    engine_results.TailResult,
    engine_results.BootstrapSummary,
    engine_results.OriginEmergence,
    engine_results.ActualVsExpected,
)


# --- the shapes derived from dataclasses ------------------------------------------------------


def test_every_result_dataclass_is_a_named_component():
    schemas = components()
    for cls in SHAPED_DATACLASSES:
        assert cls.__name__ in schemas, cls
        assert schemas[cls.__name__]["description"] == inspect.cleandoc(cls.__doc__)
    summary = schemas["ReservingRunSummary"]
    assert set(summary["properties"]) == {
        *(field.name for field in dataclasses.fields(engine_results.ReserveResult)),
        *RUN_KEYS,
    }
    totals = schemas["ReserveTotals"]
    assert set(totals["required"]) == set(totals["properties"])
    assert totals["properties"]["mack_se"]["nullable"] is True
    assert totals["properties"]["percentiles"]["additionalProperties"] == {
        "type": "number",
        "format": "double",
    }
    assert schemas["ReservingRunSummary"]["properties"]["method"] == {
        "$ref": "#/components/schemas/ReservingMethodEnum"
    }
    assert schemas["ReservingMethodEnum"]["enum"] == list(reserving.METHODS)


def test_a_dataclass_shape_follows_the_type_hints():
    @dataclasses.dataclass(frozen=True)
    class Point:
        """A point."""

        label: str
        x: int | float
        weight: float | None
        tags: tuple[str, ...]
        extra: dict

    @dataclasses.dataclass(frozen=True)
    class Path:
        """Points in order."""

        points: tuple[Point, ...]
        start: Point | None = None

    with pytest.raises(TypeError, match=r"Path.points: declare the shape of Point"):
        dataclass_shape(Path)
    point = dataclass_shape(Point, help_texts={"x": "Across."})
    path = dataclass_shape(Path, exclude=("start",))
    fields = point().fields
    assert list(fields) == ["label", "x", "weight", "tags", "extra"]
    assert fields["x"].help_text == "Across." and not fields["x"].allow_null
    assert fields["weight"].allow_null
    assert list(path().fields) == ["points"]
    assert issubclass(path, Shape)
    with pytest.raises(ValueError, match=r"The shape of .*Point.* is already declared"):
        dataclass_shape(Point)
    with pytest.raises(NotImplementedError, match="describes output"):
        point(data={}).is_valid()


# --- the engine's results, every method --------------------------------------------------------


def exposure_of(name: str, column: str) -> dict[str, float]:
    origins, _ages, values = reserving.sample_triangle_rows(name, column)
    rows = zip(origins, values, strict=True)
    return {origin: [v for v in row if v is not None][-1] for origin, row in rows}


def engine_results_of_every_method():
    raa = sample("raa")
    auto = sample("friedland_us_industry_auto", "Paid Claims")
    premium = exposure_of("friedland_us_industry_auto", "Earned Premium")
    judged = DevelopmentSelection(
        average="simple",
        drop_high=1,
        exclude=(("1982", 12),),
        selected_factors=(FactorOverride(108, 1.003, "class action settled"),),
    )
    curve = TailSelection("exponential", fit_from_age=24)
    yield "chain_ladder", reserving.chain_ladder_mack(raa, selection=judged, tail=curve)
    yield "chain_ladder (no tail)", reserving.chain_ladder_mack(raa)
    yield (
        "bornhuetter_ferguson",
        reserving.bornhuetter_ferguson(auto, exposure=premium, apriori_loss_ratio=0.7),
    )
    ratios = {origin: 0.6 + 0.01 * i for i, origin in enumerate(auto.origins)}
    yield (
        "benktander",
        reserving.benktander(
            auto,
            exposure=premium,
            apriori_loss_ratio=ratios,
            n_iterations=2,
            tail=TailSelection("constant", 1.02, "from the incurred"),
        ),
    )
    yield "cape_cod", reserving.cape_cod(auto, exposure=premium, trend=0.02, decay=0.9)
    yield (
        "bootstrap_odp",
        reserving.bootstrap_odp(raa, random_seed=2025, n_sims=200, percentiles=(50, 99.5)),
    )


@QUIET_CHAINLADDER
def test_the_engine_result_of_every_method_matches_the_schema():
    seen = set()
    for label, result in engine_results_of_every_method():
        summary = result.to_dict()
        assert_shape(summary, "ReservingRunSummary", without=RUN_KEYS)
        seen.add(summary["method"])
        if label == "chain_ladder":
            assert summary["excluded_points"] and summary["tail"]
            assert summary["options"]["selected_factors"]["108"]["factor"] == 1.003
        if label == "bootstrap_odp":
            assert summary["bootstrap"]["histogram"]["counts"]
            assert set(summary["totals"]["percentiles"]) == {"50", "99.5"}
    assert seen == set(reserving.METHODS)


@QUIET_CHAINLADDER
def test_actual_against_expected_matches_the_schema():
    earlier = reserving.read_triangle(
        csv_of("friedland_us_industry_auto", "Paid Claims", drop_last_diagonal=True),
        "auto_2006.csv",
        cumulative=True,
        measure="paid",
    )
    now = sample("friedland_us_industry_auto", "Paid Claims")
    prior = reserving.chain_ladder_mack(earlier).to_dict()
    current = reserving.chain_ladder_mack(now)
    prior_info = {
        "run_id": "6f0d5c8e-9a55-4f41-a0b5-7d3c0d6f6a10",
        "name": "2006",
        "period": "2006",
        "engagement_id": "0b9c7d47-2a51-4c0a-9d55-49a3c6a1f1e2",
        "engagement": "Auto 2006",
        "method": "chain_ladder",
        "completed_at": None,
        "output_sha256": "0" * 64,
    }
    comparison = reserving.actual_vs_expected(
        current.to_dict(), prior, prior_info=prior_info, triangle=now
    )
    summary = dataclasses.replace(current, actual_vs_expected=comparison).to_dict()
    assert_shape(summary, "ReservingRunSummary", without=RUN_KEYS)
    assert summary["actual_vs_expected"]["origins"]


# --- what the runner records -----------------------------------------------------------------


@pytest.fixture
def raa(engagement, actuary):
    return artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_csv("raa"), name="raa.csv"),
        actor=actuary,
        name="RAA",
        artefact_type=ArtefactType.TRIANGLE,
    )


def executed(engagement, actuary, workflow_type, input_params, name="run"):
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=workflow_type,
        name=name,
        input_params=input_params,
        actor=actuary,
    )
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    execute_run(run.pk)
    run.refresh_from_db()
    return run


def run_body(client, run) -> dict:
    response = client.get(f"{RUNS}{run.pk}/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert_shape(body, "WorkflowRun")
    return body


@pytest.mark.django_db
@QUIET_CHAINLADDER
def test_a_reserving_run_with_exposure_and_prior_run_matches_its_schema(
    engagement, actuary, reviewer, lead_client
):
    engagement_activate(engagement=engagement, actor=actuary)

    def upload(content, name, artefact_type=ArtefactType.TRIANGLE):
        return artefact_create(
            engagement=engagement,
            upload=ContentFile(content, name=name),
            actor=actuary,
            name=name,
            artefact_type=artefact_type,
        )

    earlier = upload(
        csv_of("friedland_us_industry_auto", "Paid Claims", drop_last_diagonal=True), "a06.csv"
    )
    auto = upload(csv_of("friedland_us_industry_auto", "Paid Claims"), "a07.csv")
    premium = upload(premium_csv(), "premium.csv", ArtefactType.DATA_FILE)
    prior = executed(
        engagement, actuary, WorkflowType.RESERVE_CALCULATION, reserving_params(earlier), "2006"
    )
    approval_approve(
        approval=prior.approvals.get(), actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
    )
    run = executed(
        engagement,
        actuary,
        WorkflowType.RESERVE_CALCULATION,
        reserving_params(
            auto,
            method="bornhuetter_ferguson",
            exposure_artefact=str(premium.pk),
            apriori_loss_ratio=0.7,
            prior_run=str(prior.pk),
        ),
    )
    assert run.status == "waiting_approval", run.error_message

    body = run_body(lead_client, run)
    summary = body["output_summary"]
    assert_shape(summary, "ReservingRunSummary")
    assert summary["exposure"]["column"] and summary["prior_run"]["name"] == "2006"
    assert summary["actual_vs_expected"]["prior"]["run_id"] == str(prior.pk)
    assert_shape(body["metrics"], "WorkflowRunMetrics", complete=True)
    assert_shape(body["provenance"], "RunProvenance", complete=True)
    assert [item["param"] for item in body["provenance"]["inputs"]] == [
        "triangle_artefact",
        "exposure_artefact",
    ]

    replay = lead_client.post(f"{RUNS}{run.pk}/replay/")
    assert replay.status_code == 200, replay.content
    record = replay.json()
    assert_shape(record, "ReplayRecord")
    assert record["matched"] is True and len(record["outputs"]) == len(summary["artefacts"])
    assert_shape(record["environment"], "ReplayEnvironment", complete=True)


@pytest.mark.django_db
def test_triangle_analysis_and_data_validation_match_their_schemas(
    engagement, actuary, raa, lead_client
):
    engagement_activate(engagement=engagement, actor=actuary)
    params = reserving_params(raa, allow_negative_development=True)
    analysis = executed(engagement, actuary, WorkflowType.TRIANGLE_ANALYSIS, params)
    assert_shape(run_body(lead_client, analysis)["output_summary"], "TriangleAnalysisSummary")
    for allow in (True, False):
        validation = executed(
            engagement,
            actuary,
            WorkflowType.DATA_VALIDATION,
            reserving_params(raa, allow_negative_development=allow),
        )
        summary = run_body(lead_client, validation)["output_summary"]
        assert_shape(summary, "DataValidationSummary")
        assert summary["valid"] is allow  # RAA develops negatively once


@pytest.mark.django_db
def test_failures_match_their_schemas(engagement, actuary, reviewer, raa, lead_client):
    engagement_activate(engagement=engagement, actor=actuary)
    params = reserving_params(raa, allow_negative_development=True)
    run = workflow_run_create(
        engagement=engagement,
        workflow_type=WorkflowType.RESERVE_CALCULATION,
        name="gone",
        input_params=params,
        actor=actuary,
    )
    workflow_run_queue(run=run, actor=actuary, enqueue=False)
    artefact_delete(artefact=raa, actor=actuary)
    execute_run(run.pk)
    body = run_body(lead_client, run)
    assert body["status"] == "failed"
    assert_shape(body["error_details"], "StepFailure", complete=True)

    other = artefact_create(
        engagement=engagement,
        upload=ContentFile(sample_csv("raa"), name="raa2.csv"),
        actor=actuary,
        name="RAA again",
        artefact_type=ArtefactType.TRIANGLE,
    )
    rejected = executed(
        engagement,
        actuary,
        WorkflowType.RESERVE_CALCULATION,
        reserving_params(other, allow_negative_development=True),
    )
    approval_reject(
        approval=rejected.approvals.get(),
        actor=reviewer,
        reason="Tail not supported",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    body = run_body(lead_client, rejected)
    assert body["status"] == "failed"
    assert_shape(body["error_details"], "ApprovalRejection", complete=True)


# --- approvals: qualifications and disclosures -------------------------------------------------


@pytest.mark.django_db
@QUIET_CHAINLADDER
def test_decisions_and_sign_offs_match_their_schemas(engagement, actuary, reviewer):
    """A final sign-off compared with a previous engagement holds every disclosure."""
    previous = EngagementFactory(
        client_code=engagement.client_code,
        engagement_type=engagement.engagement_type,
        period_start=datetime.date(2024, 1, 1),
        period_end=datetime.date(2024, 12, 31),
        lead_actuary=actuary,
        reviewer=reviewer,
    )
    EngagementMemberFactory(engagement=previous, user=actuary, role="lead")
    EngagementMemberFactory(engagement=previous, user=reviewer, role="reviewer")
    for which in (previous, engagement):
        engagement_activate(engagement=which, actor=actuary)
        triangle = artefact_create(
            engagement=which,
            upload=ContentFile(sample_csv("raa"), name="raa.csv"),
            actor=actuary,
            name="RAA",
            artefact_type=ArtefactType.TRIANGLE,
        )
        run = executed(
            which,
            actuary,
            WorkflowType.RESERVE_CALCULATION,
            reserving_params(triangle, allow_negative_development=True),
        )
        approval_approve(
            approval=run.approvals.get(), actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
        )
        if which is previous:
            final_sign_off(previous, requester=actuary, approver=reviewer)
            engagement_complete(engagement=previous, actor=actuary)
    pending = final_sign_off_request(engagement, requester=actuary)
    assert pending.approval_type == ApprovalType.FINAL_SIGN_OFF

    client = client_for(worker(reviewer))
    pending_body = client.get(f"{API}/approvals/{pending.pk}/").json()
    assert_shape(pending_body, "Approval")
    assert pending_body["approver_qualifications"] == {}
    disclosures = pending_body["disclosures"]
    assert_shape(disclosures, "Disclosures", complete=True)
    assert_shape(disclosures["comparison"], "MaterialChangesComparison", complete=True)
    assert disclosures["comparison"]["results"][0]["previous"]["totals"]["ibnr"] > 0
    assert disclosures["reliances"]

    decided = approval_approve(
        approval=pending, actor=reviewer, conflict_of_interest_statement=NO_CONFLICT
    )
    body = client.get(f"{API}/approvals/{decided.pk}/").json()
    assert_shape(body, "Approval")
    assert_shape(body["approver_qualifications"], "ApproverQualifications", complete=True)
    assert body["approver_qualifications"]["qualifications"][0]["designation"]

    checklists = client.get(f"{API}/disclosure-checklists/", {"engagement_id": previous.pk})
    for checklist in results(checklists):
        assert_shape(checklist, "DisclosureChecklist")

    entries = results(client.get(f"{API}/audit-logs/", {"page_size": 100}))
    assert entries
    for entry in entries:
        assert_shape(entry, "AuditLog")


@pytest.mark.django_db
def test_a_backup_record_matches_its_schema(engagement, lead_client, settings, tmp_path):
    settings.BACKUP_ROOT = tmp_path / "backups"
    call_command(
        "backup", "--engagement", str(engagement.pk), "--no-progress", stdout=io.StringIO()
    )
    [backup] = results(lead_client.get(f"{API}/backups/"))
    assert_shape(backup, "Backup")
    assert backup["status"] == "completed" and "engagements.engagement" in backup["tables_included"]
    assert backup["metadata"]["counts"]


def test_the_output_summary_is_any_of_the_runner_results_then_what_was_reported():
    run = components()["WorkflowRun"]["properties"]
    assert run["output_summary"]["anyOf"] == [
        {"$ref": f"#/components/schemas/{name}"}
        for name in (
            "ReservingRunSummary",
            "TriangleAnalysisSummary",
            "DataValidationSummary",
            "ReportedOutputSummary",
        )
    ]
    assert run["output_summary"]["nullable"] is True
    assert components()["ReportedOutputSummary"]["additionalProperties"] == {}
    assert openapi_schema()["components"]["schemas"]["AuditValues"]["type"] == "object"


@QUIET_CHAINLADDER
def test_the_check_fails_on_an_unknown_key_a_missing_key_or_a_wrong_type():
    summary = reserving.chain_ladder_mack(sample("raa")).to_dict()
    assert_shape(summary, "ReservingRunSummary", without=RUN_KEYS)
    changes = (
        lambda s: s["totals"].update(new_figure=1.0),
        lambda s: s["origins"][0].pop("cdf"),
        lambda s: s["development_factors"][0].update(ldf="1.5"),
        lambda s: s.update(method="mack"),
        lambda s: s["totals"].update(percentiles={"50": "x"}),
    )
    for change in changes:
        broken = reserving.chain_ladder_mack(sample("raa")).to_dict()
        change(broken)
        with pytest.raises(AssertionError, match="ReservingRunSummary: at "):
            assert_shape(broken, "ReservingRunSummary", without=RUN_KEYS)
