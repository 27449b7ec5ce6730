"""The OpenAPI contract a generated client relies on: JSON bodies, honest parameters.

What the schema declares must be what the server does: every request body is JSON
except the two file uploads (multipart forms with no nullable field), actions take
no list parameters, and the server refuses the body types it does not declare.
The typed result fields are checked against real results in
tests/test_api_result_schemas.py; a generated client runs in tests/test_api_client.py.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from drf_spectacular.generators import SchemaGenerator

from engagements.models import Engagement
from tests.api_fixtures import API, assert_error, lead, lead_client

__all__ = ("lead", "lead_client")

pytestmark = pytest.mark.django_db

JSON = "application/json"
MULTIPART = "multipart/form-data"
UPLOADS = {("post", "/api/v1/artefacts/"), ("post", "/api/v1/artefacts/{id}/versions/")}


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


def component(schema, reference: str) -> dict:
    return schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]


# --- request bodies ---------------------------------------------------------------------------


def test_every_request_body_is_json_but_the_uploads(schema):
    bodies = {}
    for method, path, operation in operations(schema):
        if "requestBody" in operation:
            bodies[(method, path)] = list(operation["requestBody"]["content"])
    assert len(bodies) > 30
    for operation, content_types in bodies.items():
        expected = [MULTIPART] if operation in UPLOADS else [JSON]
        assert content_types == expected, operation


def test_upload_forms_have_no_nullable_field(schema):
    for method, path in UPLOADS:
        content = schema["paths"][path][method]["requestBody"]["content"][MULTIPART]
        form = component(schema, content["schema"]["$ref"])
        assert "file" in form["required"]
        for name, field in form["properties"].items():
            assert not field.get("nullable"), (path, name)
    upload = component(schema, "ArtefactUploadRequest")
    assert upload["properties"]["workflow_run"] == {
        "type": "string",
        "format": "uuid",
        "description": "Id of the run that produced it (same engagement); leave it out otherwise.",
    }


def test_a_form_sent_to_a_json_endpoint_is_refused(lead_client):
    response = lead_client.post(
        f"{API}/engagements/",
        {"client_code": "ACME", "client_name": "Acme", "name": "FY2025", "config": "None"},
        format="multipart",
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        match='"multipart/form-data" in request: this endpoint takes application/json',
    )
    urlencoded = lead_client.post(
        f"{API}/engagements/",
        "client_code=ACME&name=FY2025",
        content_type="application/x-www-form-urlencoded",
    )
    assert_error(urlencoded, 415, "unsupported_media_type")
    assert not Engagement.objects.filter(client_code="ACME").exists()


def test_an_upload_refuses_json(engagement, lead_client):
    response = lead_client.post(
        f"{API}/artefacts/",
        {"engagement": str(engagement.pk), "artefact_type": "csv", "file": "a,b\n"},
        format="json",
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        match="this endpoint takes multipart/form-data (send the header Content-Type: "
        "multipart/form-data)",
    )


def test_an_upload_form_leaves_the_run_out_by_omitting_it(engagement, lead_client):
    """No field of the form is null: a run left out (or sent empty, as forms do) is none."""
    for name, extra in (("a.csv", {}), ("b.csv", {"workflow_run": ""})):
        form = {
            "engagement": str(engagement.pk),
            "artefact_type": "csv",
            "file": SimpleUploadedFile(name, f"a,b\n1,{name}\n".encode(), "text/csv"),
            **extra,
        }
        response = lead_client.post(f"{API}/artefacts/", form, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["workflow_run"] is None


# --- the browsable API ----------------------------------------------------------------------


def test_the_browsable_api_offers_a_json_form_and_posts_it(engagement, lead, client):
    client.force_login(lead)
    page = client.get(f"{API}/engagements/", headers={"accept": "text/html"})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="id__content_type"' in html  # the raw-data form …
    assert '<option value="application/json"' in html  # … sends JSON
    assert "multipart/form-data" not in html
    response = client.post(
        f"{API}/engagements/{engagement.pk}/activate/",
        "",
        content_type=JSON,
        headers={"accept": "text/html"},
    )
    assert response.status_code == 200, response.content[:500]
    engagement.refresh_from_db()
    assert engagement.status == "active"


# --- parameters ----------------------------------------------------------------------------


def test_only_lists_take_list_parameters(schema):
    """Filters, search, ordering and pages belong to the paginated lists, and only to them."""
    lists = 0
    for method, path, operation in operations(schema):
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        answer = operation["responses"].get("200", {}).get("content", {}).get(JSON, {})
        if answer.get("schema", {}).get("$ref", "").startswith("#/components/schemas/Paginated"):
            lists += 1
            assert query & {"page", "cursor"}, (method, path)
        else:
            assert query == set(), (method, path, sorted(query))
    assert lists == 17  # a run's replays are a paginated list too (issue 18)
    memo = schema["paths"]["/api/v1/approvals/{id}/review-memo/"]["post"]
    assert memo["responses"]["201"]["content"][JSON]["schema"]["type"] == "array"


def test_id_filters_are_integers_or_uuids(schema):
    users = set()
    for _method, _path, operation in operations(schema):
        for parameter in operation.get("parameters", []):
            name = parameter["name"]
            if parameter["in"] != "query" or not name.endswith("_id") or name == "trace_id":
                continue
            if parameter["schema"]["type"] == "integer":
                users.add(name)
            else:
                assert parameter["schema"] == {"type": "string", "format": "uuid"}, parameter
    assert {"lead_actuary_id", "reviewer_id", "member_id", "created_by_id", "user_id"} <= users
