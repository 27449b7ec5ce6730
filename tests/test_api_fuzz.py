"""Property-based run over the whole REST API (issue 15, "keep it fixed").

Schemathesis reads the live OpenAPI schema (`/api/schema/`) and sends generated
requests to every operation — valid and invalid bodies, query parameters and ids —
as an actuary (alice, on the demo's teams) and as a superuser, against the demo
data on PostgreSQL. Every answer must be something other than a server error and
must match what the schema says of it. Bounded to a few minutes: `FUZZ_EXAMPLES`
requests per operation and user (default 5; CI's run uses the default).
"""

import os

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import override_settings
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


class _Discard:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo data, loaded once for the module and rolled back after it."""
    folder = tmp_path_factory.mktemp("fuzz")
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=folder / "media", BACKUP_ROOT=folder / "backups"),
        transaction.atomic(),
    ):
        call_command("load_demo", force=True, stdout=_Discard())
        yield folder
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def media_root(demo, settings):
    settings.MEDIA_ROOT = demo / "media"
    # Generated logins would lock the demo's people out of the rest of the run.
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def demo_data(db, demo):
    """Each test case starts from the demo data (pytest-django's savepoint per test).

    The requests run in this thread, in the test's transaction: as Django's own test
    client does, the end of a request must not close the database connection.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


# Read when the module is collected: serving the schema reads no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


def _token(username: str) -> str:
    user = get_user_model().objects.get(username=username)
    return Token.objects.get_or_create(user=user)[0].key


FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_no_request_of_an_actuary_breaks_the_api(case):
    """alice: on the demo's teams, with the Actuaries group's permissions."""
    case.call_and_validate(headers={"Authorization": f"Token {_token('alice')}"}, checks=CHECKS)


@schema.parametrize()
@FUZZ
def test_no_request_of_a_superuser_breaks_the_api(case):
    """admin: sees and may do everything a superuser may."""
    case.call_and_validate(headers={"Authorization": f"Token {_token('admin')}"}, checks=CHECKS)
