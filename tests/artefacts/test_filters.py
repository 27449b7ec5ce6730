"""Filters, search and ordering of the artefact list."""

import datetime
import hashlib

import pytest
from django.utils import timezone

from artefacts.services import (
    artefact_create,
    artefact_new_version,
    artefact_submit_for_review,
)
from tests.api_fixtures import API, assert_error, ids, lead, lead_client, results
from tests.factories import EngagementFactory, EngagementMemberFactory
from tests.factories.states import artefact_in, run_in, upload

__all__ = ("lead", "lead_client")

pytestmark = pytest.mark.django_db

ARTEFACTS = f"{API}/artefacts/"
REPORT = b"# Reserving report\n\nIBNR is adequate.\n"


@pytest.fixture
def files(engagement, lead):
    """Artefacts in two engagements of the lead that differ in every filtered field."""
    other = EngagementFactory(client_code="ZETA")
    EngagementMemberFactory(engagement=other, user=lead, role="lead")
    run = run_in(engagement, actor=lead, workflow_type="custom")
    triangle = artefact_in(
        engagement,
        actor=lead,
        name="Paid triangle",
        workflow_run=run,
        artefact_type="triangle",
        trace_id="trace-1",
    )
    triangle_v2 = artefact_new_version(
        artefact=triangle, upload=upload(b"origin,development,value\n2020,12,1\n"), actor=lead
    )
    report = artefact_create(
        engagement=other,
        upload=upload(REPORT, name="report.md"),
        actor=lead,
        name="Board report",
        artefact_type="markdown",
        description="Year-end summary",
    )
    report = artefact_submit_for_review(artefact=report, actor=lead)
    report.created_at = timezone.now() - datetime.timedelta(days=3)
    report.save()
    return {"v1": triangle, "v2": triangle_v2, "report": report, "run": run}


def pks(files, *names):
    return {str(files[name].pk) for name in names}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "pending_review"}, ("report",)),
        ({"status": ["draft", "superseded"]}, ("v1", "v2")),
        ({"artefact_type": "markdown"}, ("report",)),
        ({"client_code": "zeta"}, ("report",)),
        ({"version": 2}, ("v2",)),
        ({"latest": "true"}, ("v2", "report")),
        ({"latest": "false"}, ("v1",)),
        ({"mime_type": "text/markdown"}, ("report",)),
        ({"trace_id": "trace-1"}, ("v1",)),
        ({"search": "board"}, ("report",)),
        ({"search": "year-end"}, ("report",)),
    ],
)
def test_artefact_filters(files, lead_client, params, expected):
    assert ids(lead_client.get(ARTEFACTS, params)) == pks(files, *expected)


def test_relation_hash_and_date_filters(files, engagement, lead, lead_client):
    assert ids(lead_client.get(ARTEFACTS, {"engagement_id": engagement.pk})) == pks(
        files, "v1", "v2"
    )
    assert ids(lead_client.get(ARTEFACTS, {"workflow_run_id": files["run"].pk})) == pks(
        files, "v1", "v2"
    )
    assert ids(lead_client.get(ARTEFACTS, {"previous_version_id": files["v1"].pk})) == pks(
        files, "v2"
    )
    digest = hashlib.sha256(REPORT).hexdigest()
    assert ids(lead_client.get(ARTEFACTS, {"content_hash": digest.upper()})) == pks(files, "report")
    assert ids(lead_client.get(ARTEFACTS, {"created_by_id": lead.pk})) == pks(
        files, "v1", "v2", "report"
    )
    day_ago = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert ids(lead_client.get(ARTEFACTS, {"created_before": day_ago})) == pks(files, "report")
    assert ids(lead_client.get(ARTEFACTS, {"created_after": day_ago})) == pks(files, "v1", "v2")


def test_artefact_ordering(files, lead_client):
    rows = results(lead_client.get(ARTEFACTS, {"ordering": "-version"}))
    assert rows[0]["id"] == str(files["v2"].pk)
    sizes = [
        row["file_size"] for row in results(lead_client.get(ARTEFACTS, {"ordering": "file_size"}))
    ]
    assert sizes == sorted(sizes)


@pytest.mark.parametrize(
    "params",
    [
        {"artefact_type": "video"},
        {"created_before": "never"},
        {"version": "two"},
        {"workflow_run_id": "1"},
    ],
)
def test_bad_filter_values_are_400(files, lead_client, params):
    body = assert_error(lead_client.get(ARTEFACTS, params), 400, "invalid")
    assert set(body["errors"]) == set(params)
