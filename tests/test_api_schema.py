"""The API's contract: a valid OpenAPI schema, self-hosted docs, authentication, one error format.

Also the "never a 500" sweep: every operation of the schema is called with
malformed JSON, wrong types, unknown and malformed ids, and must answer with a
client error in the common error body.
"""

import re
import uuid

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.api_router import router
from tests.api_fixtures import (
    API,
    api_client,
    assert_error,
    client_for,
    lead,
    lead_client,
    superuser_client,
)

__all__ = ("api_client", "lead", "lead_client", "superuser_client")

pytestmark = pytest.mark.django_db

EXTERNAL_URL = re.compile(r"""https?://[^\s"'<>)]+""")
ASSET = re.compile(r"""(?:src|href)="([^"]+)\"""")


# --- the schema and the docs page -----------------------------------------------------------


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    text = target.read_text()
    assert "openapi: 3." in text
    for path in ("/api/v1/engagements/{id}/activate/", "/api/v1/artefacts/{id}/download/"):
        assert path in text


def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_operation_describes_its_errors():
    for path, operations in schema()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("401", "403", "404"):
                assert status in responses, (method, path, status)
            if method in ("post", "put", "patch"):
                assert {"400", "409"} <= set(responses), (method, path)
    paths = schema()["paths"]
    assert "413" in paths["/api/v1/artefacts/"]["post"]["responses"]
    assert "413" in paths["/api/v1/artefacts/{id}/versions/"]["post"]["responses"]
    assert "304" in paths["/api/v1/artefacts/{id}/download/"]["get"]["responses"]


def test_enums_are_named_after_their_models():
    components = schema()["components"]["schemas"]
    for name in (
        "EngagementStatusEnum",
        "WorkflowStatusEnum",
        "ArtefactStatusEnum",
        "ApprovalStatusEnum",
        "TeamRoleEnum",
        "MessageRoleEnum",
    ):
        assert name in components
    assert components["EngagementStatusEnum"]["enum"] == [
        "draft",
        "active",
        "on_hold",
        "completed",
        "archived",
        "cancelled",
    ]


def test_schema_and_docs_are_public(api_client):
    assert api_client.get("/api/schema/").status_code == 200
    assert api_client.get("/api/schema/", {"format": "json"}).json()["info"]["title"]
    assert api_client.get("/api/docs/").status_code == 200


def test_the_docs_page_requests_nothing_from_another_host(api_client):
    html = api_client.get("/api/docs/").content.decode()
    assert EXTERNAL_URL.findall(html) == []
    assets = ASSET.findall(html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    # Swagger UI would otherwise fetch a badge from validator.swagger.io.
    assert '"validatorUrl": null' in html
    assert 'url: "/api/schema/"' in html


# --- authentication -------------------------------------------------------------------------

ROUTES = [
    (
        f"{API}/{prefix}/".replace("(?P<session_id>[^/.]+)", str(uuid.uuid4())),
        viewset,
    )
    for prefix, viewset, _basename in router.registry
]


@pytest.mark.parametrize(("url", "viewset"), [(f"{API}/", None), *ROUTES])
def test_anonymous_requests_are_401_everywhere(api_client, url, viewset):
    for response in (api_client.get(url), api_client.post(url, {})):
        body = assert_error(response, 401, "not_authenticated")
        assert body == {
            "detail": "Authentication credentials were not provided.",
            "code": "not_authenticated",
        }
        assert response["WWW-Authenticate"] == "Token"
    if viewset is None or not hasattr(viewset, "retrieve"):
        return
    detail = f"{url}{uuid.uuid4()}/"
    assert_error(api_client.get(detail), 401, "not_authenticated")
    for extra in viewset.get_extra_actions():
        method = next(iter(extra.mapping))
        base = detail if extra.detail else url
        response = getattr(api_client, method)(f"{base}{extra.url_path}/")
        assert_error(response, 401, "not_authenticated")


def test_a_wrong_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(api_client.get(f"{API}/engagements/"), 401, "authentication_failed")


def test_token_authentication(lead):
    token = Token.objects.create(user=lead)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"{API}/engagements/").status_code == 200


def test_drf_create_token_command(lead, capsys):
    call_command("drf_create_token", lead.username)
    key = Token.objects.get(user=lead).key
    assert key in capsys.readouterr().out


def test_session_authentication_checks_csrf_on_writes(engagement, lead):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(lead)
    assert client.get(f"{API}/engagements/").status_code == 200
    response = client.post(f"{API}/engagements/{engagement.pk}/activate/")
    assert_error(response, 403, "permission_denied", match="CSRF")


def test_the_api_root_lists_the_endpoints(lead_client):
    body = lead_client.get(f"{API}/").json()
    assert {"engagements", "workflow-runs", "artefacts", "approvals", "audit-logs"} <= set(body)


# --- the error format -----------------------------------------------------------------------


def test_malformed_json_is_400(lead_client):
    response = lead_client.post(f"{API}/engagements/", '{"name": ', content_type="application/json")
    assert_error(response, 400, "parse_error", match="JSON parse error")


def test_a_body_that_is_not_an_object_is_400(lead_client):
    response = lead_client.post(f"{API}/engagements/", [1, 2], format="json")
    body = assert_error(response, 400, "invalid")
    assert list(body["errors"]) == ["non_field_errors"]


def test_wrong_types_are_400_per_field(lead_client):
    response = lead_client.post(
        f"{API}/engagements/",
        {"client_code": ["x"], "client_name": {}, "name": "ok", "lead_actuary": "bob"},
        format="json",
    )
    body = assert_error(response, 400, "invalid", match="see errors for each field")
    assert set(body["errors"]) == {"client_code", "client_name", "lead_actuary"}


def test_an_unsupported_media_type_is_415(lead_client):
    response = lead_client.post(
        f"{API}/engagements/", "<engagement/>", content_type="application/xml"
    )
    assert_error(
        response,
        415,
        "unsupported_media_type",
        match='Unsupported media type "application/xml" in request: this endpoint takes '
        "application/json (send the header Content-Type: application/json).",
    )


@pytest.mark.parametrize("lookup", [str(uuid.uuid4()), "not-a-uuid", "1", "%20"])
def test_unknown_and_malformed_ids_are_404(lead_client, lookup):
    for prefix in ("engagements", "workflow-runs", "artefacts", "approvals", "audit-logs"):
        assert_error(lead_client.get(f"{API}/{prefix}/{lookup}/"), 404, "not_found")


# --- never a 500 ----------------------------------------------------------------------------

BAD_BODIES = [
    ("not json", "application/json"),
    ("[]", "application/json"),
    ('{"name": 1, "engagement": "x", "status": "done", "metadata": "[", "file": 3}', None),
    ('{"id": null, "role": ["x"], "reason": {"a": 1}, "current_step": -1}', None),
    ("\x00\xff", "application/octet-stream"),
]


def operations():
    for path, methods in schema()["paths"].items():
        for method in methods:
            yield path, method


@pytest.mark.parametrize(("path", "method"), list(operations()))
def test_no_operation_answers_500(engagement, superuser, path, method):
    client = client_for(superuser)
    lookups = [str(engagement.pk), str(uuid.uuid4()), "not-a-uuid"]
    for lookup in lookups if "{" in path else [None]:
        url = re.sub(r"\{[^}]+\}", lookup or "", path)
        if method in ("get", "delete"):
            responses = [getattr(client, method)(url, {"page": "x", "status": "?"})]
        else:
            responses = [
                getattr(client, method)(url, body, content_type=content_type or "application/json")
                for body, content_type in BAD_BODIES
            ]
        for response in responses:
            assert response.status_code < 500, (method, url, response.content[:300])
            if response.status_code >= 400:
                body = response.json()
                assert {"detail", "code"} <= set(body), body
