"""Helpers of the reserving API tests: upload through the API, create, run, approve."""

from __future__ import annotations

import functools

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api_fixtures import API
from tests.factories.states import NO_CONFLICT
from workflows.reserving import sample_triangle_csv, sample_triangle_rows

RUNS = f"{API}/workflow-runs/"
ARTEFACTS = f"{API}/artefacts/"
APPROVALS = f"{API}/approvals/"


@functools.cache
def csv_of(name: str, column: str | None = None, *, drop_last_diagonal: bool = False) -> bytes:
    """Return a shipped triangle as long CSV; optionally as it stood one valuation earlier."""
    if not drop_last_diagonal:
        return sample_triangle_csv(name, column=column)
    origins, ages, values = sample_triangle_rows(name, column)
    lines = ["origin,development,value"]
    for origin, row in zip(origins[:-1], values[:-1], strict=True):
        observed = [(age, value) for age, value in zip(ages, row, strict=True) if value is not None]
        lines += [f"{origin},{age},{value:g}" for age, value in observed[:-1]]
    return ("\n".join(lines) + "\n").encode()


@functools.cache
def premium_csv() -> bytes:
    """Return the earned premium of the U.S. industry auto example (Friedland) by origin."""
    origins, _ages, values = sample_triangle_rows("friedland_us_industry_auto", "Earned Premium")
    lines = ["origin,earned_premium"]
    for origin, row in zip(origins, values, strict=True):
        lines.append(f"{origin},{[v for v in row if v is not None][-1]:g}")
    return ("\n".join(lines) + "\n").encode()


def upload(client, engagement, content: bytes, name: str, artefact_type="triangle") -> str:
    """Upload a file as an artefact through the API; return its id."""
    response = client.post(
        ARTEFACTS,
        {
            "file": SimpleUploadedFile(name, content, content_type="text/csv"),
            "engagement": str(engagement.pk),
            "artefact_type": artefact_type,
            "name": name,
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def create(
    client, engagement, input_params, *, name="Reserves", workflow_type="reserve_calculation"
):
    """POST a reserving run; return the response."""
    return client.post(
        RUNS,
        {
            "engagement": str(engagement.pk),
            "workflow_type": workflow_type,
            "name": name,
            "period": "2025-Q4",
            "input_params": input_params,
        },
        format="json",
    )


def run(client, capture, run_id: str) -> dict:
    """Queue a run through the API (the test settings execute it at once); return it."""
    with capture(execute=True):
        response = client.post(f"{RUNS}{run_id}/queue/")
    assert response.status_code == 200, response.content
    body = client.get(f"{RUNS}{run_id}/").json()
    assert body["status"] == "waiting_approval", (body["error_message"], body["error_details"])
    return body


def approve(client, run_id: str) -> None:
    """Approve a run's workflow approval through the API (as its reviewer)."""
    listing = client.get(APPROVALS, {"workflow_run_id": run_id})
    [approval] = listing.json()["results"]
    response = client.post(
        f"{APPROVALS}{approval['id']}/approve/",
        {"conflict_of_interest_statement": NO_CONFLICT},
        format="json",
    )
    assert response.status_code == 200, response.content
