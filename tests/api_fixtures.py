"""Fixtures and helpers of the REST API tests: real users, real permissions, token auth.

Import the fixtures a module uses (`from tests.api_fixtures import ...`). Users get
their model permissions through a group, as the demo's Actuaries do; clients
authenticate with a DRF token, the way scripts and agents call the API.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from approvals.services import CERTIFIERS_GROUP
from tests.factories import EngagementMemberFactory, UserFactory

DOMAIN_APPS = ("engagements", "workflows", "artefacts", "approvals", "audit", "conversations")
API = "/api/v1"


def api_permissions(*verbs: str) -> list[Permission]:
    """Return the permissions with the given verbs on every domain model, and view_user."""
    wanted = Q(content_type__app_label="auth", codename="view_user")
    for model in apps.get_models():
        if model._meta.app_label not in DOMAIN_APPS:
            continue
        codenames = [f"{verb}_{model._meta.model_name}" for verb in verbs]
        wanted |= Q(content_type__app_label=model._meta.app_label, codename__in=codenames)
    return list(Permission.objects.filter(wanted))


def worker(user):
    """Put `user` in the "API workers" group (view/add/change/delete on the domain models)."""
    group, created = Group.objects.get_or_create(name="API workers")
    if created:
        group.permissions.add(*api_permissions("view", "add", "change", "delete"))
    user.groups.add(group)
    return type(user).objects.get(pk=user.pk)


def reader(user):
    """Put `user` in the "API readers" group (view permissions only)."""
    group, created = Group.objects.get_or_create(name="API readers")
    if created:
        group.permissions.add(*api_permissions("view"))
    user.groups.add(group)
    return type(user).objects.get(pk=user.pk)


def client_for(user) -> APIClient:
    """Return an API client that authenticates as `user` with a DRF token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


def results(response) -> list[dict]:
    """Return the rows of a paginated list response (asserting it succeeded)."""
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[str]:
    """Return the ids of the rows of a paginated list response."""
    return {str(row["id"]) for row in results(response)}


def count_queries(callable_) -> int:
    """Return how many database queries `callable_()` ran."""
    with CaptureQueriesContext(connection) as context:
        callable_()
    return len(context.captured_queries)


def assert_error(response, status: int, code: str, *, match: str = "") -> dict:
    """Assert the error status, body shape and code; return the body."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"], body
    if match:
        assert match in body["detail"], body
    return body


@pytest.fixture
def api_client() -> APIClient:
    """An anonymous API client."""
    return APIClient()


@pytest.fixture
def lead(engagement, actuary):
    """The engagement's lead actuary, with the worker permissions."""
    return worker(actuary)


@pytest.fixture
def lead_client(lead):
    return client_for(lead)


@pytest.fixture
def reviewer_user(engagement, reviewer):
    """The engagement's (qualified) reviewer, with the worker permissions."""
    return worker(reviewer)


@pytest.fixture
def reviewer_client(reviewer_user):
    return client_for(reviewer_user)


@pytest.fixture
def teammate(engagement):
    """An actuary on the engagement's team (not its lead), with the worker permissions."""
    user = UserFactory(username="teammate", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=user, role="actuary")
    return worker(user)


@pytest.fixture
def teammate_client(teammate):
    return client_for(teammate)


@pytest.fixture
def outsider(db):
    """A staff user with every worker permission who is on no team."""
    return worker(UserFactory(username="outsider", is_staff=True))


@pytest.fixture
def outsider_client(outsider):
    return client_for(outsider)


@pytest.fixture
def superuser_client(superuser):
    return client_for(superuser)


def certifier(user):
    """Put `user` in the Certifiers group (made by migrate): they certify qualifications."""
    user.groups.add(Group.objects.get(name=CERTIFIERS_GROUP))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def certifier_user(db):
    """A staff member of the Certifiers group, on no engagement team."""
    return certifier(UserFactory(username="certifier", is_staff=True))


@pytest.fixture
def certifier_client(certifier_user):
    return client_for(certifier_user)
