"""Regression tests of the outside test's findings (issue 15), one section per finding.

Finding 1 (who may certify) is in tests/approvals/test_certification.py; finding 2's
reading limits in tests/reserving/test_read_limits.py (its API case here); finding 7
(deploy-safe defaults) in tests/test_settings.py. The property-based run over the
whole API (schemathesis) is tests/test_api_fuzz.py.
"""

import datetime
import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from config.security import LOCKED_OUT
from conversations.services import MESSAGE_ROLE_AGENTS_ONLY, session_create
from engagements.models import Engagement
from engagements.services import ENGAGEMENT_NEEDS_LEAD
from tests.api_fixtures import (
    API,
    assert_error,
    lead,
    lead_client,
    outsider,
    outsider_client,
    results,
    teammate,
    teammate_client,
    worker,
)
from tests.factories import EngagementFactory, UserFactory
from workflows.models import WorkflowRun

__all__ = ("lead", "lead_client", "outsider", "outsider_client", "teammate", "teammate_client")

pytestmark = pytest.mark.django_db

CLIENT = {"REMOTE_ADDR": "198.51.100.9", "HTTP_USER_AGENT": "fuzzer/1.0"}


# --- Finding 2: one upload cannot exhaust a worker ----------------------------------------


def test_a_huge_triangle_file_used_as_a_run_input_is_refused_at_the_read_limit(
    lead_client, engagement
):
    """Reading stops at 50,000 rows (tests/reserving/test_read_limits.py for the rest)."""
    lines = ["origin,development,value"] + [
        f"{2000 + n % 20},{12 * (n % 20 + 1)},{n}" for n in range(50_010)
    ]
    upload = SimpleUploadedFile("huge.csv", "\n".join(lines).encode(), content_type="text/csv")
    created = lead_client.post(
        f"{API}/artefacts/",
        {
            "engagement": str(engagement.pk),
            "name": "Huge",
            "artefact_type": "triangle",
            "file": upload,
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content

    response = lead_client.post(
        f"{API}/workflow-runs/",
        {
            "engagement": str(engagement.pk),
            "workflow_type": "reserve_calculation",
            "name": "Chain ladder on a huge file",
            "input_params": {
                "triangle_artefact": created.json()["id"],
                "cumulative": True,
                "measure": "paid",
            },
        },
    )

    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"input_params"}
    assert "row 50001: 'huge.csv' has more than 50,000 rows" in body["detail"]
    assert not WorkflowRun.objects.exists()


# --- Finding 3: login throttling ----------------------------------------------------------


@pytest.fixture
def limit(settings):
    settings.AXES_FAILURE_LIMIT = 5
    return 5


def _admin_login(client, password, username="actuary", **extra):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password},
        **{**CLIENT, **extra},
    )


class TestLoginThrottling:
    def test_after_the_limit_even_the_right_password_is_refused_on_the_admin(
        self, client, actuary, limit
    ):
        for _ in range(limit - 1):
            assert _admin_login(client, "wrong").status_code == 200
        assert _admin_login(client, "wrong").status_code == 429

        response = _admin_login(client, "password")

        assert response.status_code == 429
        assert int(response["Retry-After"]) == 15 * 60
        assert LOCKED_OUT.format(minutes=15) in response.content.decode()
        assert "_auth_user_id" not in client.session

    def test_the_api_login_page_is_throttled_too(self, client, actuary, limit):
        url = "/api/auth/login/"
        for _ in range(limit):
            client.post(url, {"username": "actuary", "password": "wrong"}, **CLIENT)

        response = client.post(url, {"username": "actuary", "password": "password"}, **CLIENT)

        assert response.status_code == 429
        assert response["Retry-After"] == str(15 * 60)

    def test_one_address_trying_many_accounts_is_locked_out(self, client, limit):
        for number in range(limit):
            _admin_login(client, "guess", username=f"user{number}")
        assert _admin_login(client, "guess", username="someone-else").status_code == 429

    def test_another_address_still_logs_in_to_another_account(self, client, actuary, limit):
        for number in range(limit):
            _admin_login(client, "guess", username=f"user{number}")
        response = _admin_login(client, "password", REMOTE_ADDR="192.0.2.44")
        assert response.status_code == 302

    def test_wrong_tokens_are_refused_with_429_once_the_address_is_locked_out(
        self, api_client_factory, actuary, limit
    ):
        for _ in range(limit - 1):
            response = api_client_factory("0" * 40).get(f"{API}/engagements/")
            assert response.status_code == 401
        for _ in range(2):  # the one that reaches the limit, and one after it
            response = api_client_factory("0" * 40).get(f"{API}/engagements/")
            assert_error(response, 429, "locked_out", match="Too many failed logins")
            assert response["Retry-After"] == str(15 * 60)

    def test_a_valid_token_still_works_from_a_locked_out_address(
        self, api_client_factory, actuary, limit
    ):
        for _ in range(limit):
            api_client_factory("0" * 40).get(f"{API}/engagements/")
        token, _ = Token.objects.get_or_create(user=worker(actuary))
        assert api_client_factory(token.key).get(f"{API}/engagements/").status_code == 200

    def test_a_lockout_is_one_audit_event_per_window_and_failures_none(
        self, client, actuary, limit
    ):
        for _ in range(limit + 10):
            _admin_login(client, "wrong-password")

        (event,) = AuditLog.objects.all()
        assert (event.action, event.severity, event.user) == (
            AuditAction.LOGIN,
            Severity.WARNING,
            None,
        )
        assert event.metadata == {"outcome": "locked_out", "username": "actuary"}
        assert event.ip_address == "198.51.100.9"
        assert "wrong-password" not in json.dumps(event.hashed_values(), default=str)

    def test_a_successful_login_resets_the_count(self, client, actuary, limit):
        for _ in range(limit - 1):
            _admin_login(client, "wrong")
        assert _admin_login(client, "password").status_code == 302
        client.logout()
        for _ in range(limit - 1):
            _admin_login(client, "wrong")
        assert _admin_login(client, "password").status_code == 302


@pytest.fixture
def api_client_factory():
    def make(token):
        client = APIClient(**CLIENT)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}", **CLIENT)
        return client

    return make


# --- Finding 4: no 500s from any client ----------------------------------------------------


class TestNoServerErrors:
    @pytest.mark.parametrize(
        "path",
        [
            "/engagements/",
            "/workflow-runs/",
            "/artefacts/",
            "/approvals/",
            "/audit-logs/",
            "/sessions/",
        ],
    )
    def test_a_datetime_offset_beyond_what_the_database_takes_is_compared_in_utc(
        self, lead_client, engagement, path
    ):
        response = lead_client.get(f"{API}{path}", {"created_after": "2026-01-01T00:00:00+16:00"})
        assert response.status_code == 200, response.content

    def test_every_list_filter_uses_the_safe_date_time_and_integer_fields(self):
        """No FilterSet of the API slips back to a filter that can reach a database error."""
        from django_filters import IsoDateTimeFilter, NumberFilter

        from config.api_router import router
        from records.api.filters import IntegerFilter, UTCDateTimeField

        unsafe = []
        for prefix, viewset, _basename in router.registry:
            filterset = getattr(viewset, "filterset_class", None)
            for name, filter_ in getattr(filterset, "base_filters", {}).items():
                if isinstance(filter_, IsoDateTimeFilter) and not issubclass(
                    filter_.field_class, UTCDateTimeField
                ):
                    unsafe.append(f"{prefix}: {name}")
                if isinstance(filter_, NumberFilter) and not isinstance(filter_, IntegerFilter):
                    unsafe.append(f"{prefix}: {name}")
        assert unsafe == []

    def test_the_offset_is_applied_not_dropped(self, lead_client, engagement):
        engagement.created_at = datetime.datetime(2026, 1, 1, 12, tzinfo=datetime.UTC)
        Engagement.objects.filter(pk=engagement.pk).update(created_at=engagement.created_at)
        # 2026-01-02T03:00+16:00 is 2026-01-01T11:00Z: before the engagement was created.
        assert results(
            lead_client.get(f"{API}/engagements/", {"created_after": "2026-01-02T03:00:00+16:00"})
        )
        assert not results(
            lead_client.get(f"{API}/engagements/", {"created_after": "2026-01-02T05:00:00+16:00"})
        )

    def test_a_datetime_beyond_the_calendar_in_utc_is_a_400(self, lead_client, engagement):
        response = lead_client.get(
            f"{API}/engagements/", {"created_after": "0001-01-01T00:00:00+16:00"}
        )
        body = assert_error(response, 400, "invalid")
        assert set(body["errors"]) == {"created_after"}

    @pytest.mark.parametrize("value", ["1e20", "100000000000000000000", "1.5"])
    def test_an_integer_id_filter_refuses_what_is_not_a_database_integer(
        self, lead_client, engagement, value
    ):
        response = lead_client.get(f"{API}/engagements/", {"lead_actuary_id": value})
        body = assert_error(response, 400, "invalid")
        assert set(body["errors"]) == {"lead_actuary_id"}

    def test_a_nul_character_in_a_json_field_is_a_400_naming_it(self, lead_client, engagement):
        response = lead_client.patch(
            f"{API}/engagements/{engagement.pk}/", {"metadata": {"note": "a\u0000b"}}
        )
        body = assert_error(response, 400, "invalid")
        assert set(body["errors"]) == {"metadata"}
        assert "NUL character" in body["detail"]
        engagement.refresh_from_db()
        assert engagement.metadata == {}

    def test_a_nul_character_in_a_json_key_is_refused_too(self, lead_client, engagement):
        response = lead_client.patch(
            f"{API}/engagements/{engagement.pk}/", {"config": {"k\u0000": 1}}
        )
        assert_error(response, 400, "invalid")

    def test_json_nested_thousands_deep_is_a_400(self, lead_client, engagement):
        body = '{"config": ' + "[" * 5000 + "]" * 5000 + "}"
        response = lead_client.generic(
            "PATCH",
            f"{API}/engagements/{engagement.pk}/",
            body,
            content_type="application/json",
        )
        assert_error(response, 400, "parse_error", match="nested more than 32 levels")

    def test_json_nested_deeper_than_the_limit_in_a_field_is_a_400(self, lead_client, engagement):
        value = {}
        for _ in range(40):
            value = {"x": value}
        response = lead_client.patch(f"{API}/engagements/{engagement.pk}/", {"config": value})
        body = assert_error(response, 400, "invalid")
        assert set(body["errors"]) == {"config"}

    @pytest.mark.parametrize(
        "cursor", ["cD1hYmM=", "not base64!", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5"]
    )
    def test_an_invalid_audit_log_cursor_is_a_404(self, lead_client, cursor):
        response = lead_client.get(f"{API}/audit-logs/", {"cursor": cursor})
        assert_error(response, 404, "not_found", match="Invalid cursor")

    def test_a_body_over_the_size_limit_is_a_json_413(self, lead_client, engagement, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        response = lead_client.patch(
            f"{API}/engagements/{engagement.pk}/", {"description": "x" * 2000}
        )
        body = assert_error(response, 413, "request_too_large")
        assert body["max_size"] == 1000

    def test_an_address_no_route_matches_answers_the_apis_json_404(self, lead_client, client):
        """Found by the API fuzz run: an id that is not a UUID matched no route (HTML 404)."""
        response = lead_client.post(f"{API}/approvals/0.5/approve/", {})
        assert_error(response, 404, "not_found", match="no API endpoint or object")
        assert response["Content-Type"] == "application/json"
        assert "html" in client.get("/no-such-page/")["Content-Type"]

    def test_an_unexpected_error_answers_json_500(self, lead_client, monkeypatch):
        from engagements.api import views

        def broken(self):
            raise RuntimeError("a bug")

        monkeypatch.setattr(views.EngagementViewSet, "get_queryset", broken)
        lead_client.raise_request_exception = False
        response = lead_client.get(f"{API}/engagements/")
        assert response.status_code == 500
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "server_error"


# --- Finding 5: the failed run's admin page ------------------------------------------------


def test_the_demo_failed_run_page_shows_its_error(client, settings):
    settings.DEBUG = True
    call_command("load_demo", verbosity=0)
    settings.DEBUG = False
    run = WorkflowRun.objects.get(name="Cohort grouping 2023")
    assert "message" not in run.error_details
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(reverse("admin:workflows_workflowrun_change", args=[run.pk]))

    assert response.status_code == 200
    assert run.error_message in response.content.decode()


# --- Finding 6: the low ones ---------------------------------------------------------------


def test_an_engagement_you_review_needs_a_lead(lead_client, lead):
    reviewer = lead
    response = lead_client.post(
        f"{API}/engagements/",
        {"client_code": "ORPH", "client_name": "Orphan", "name": "X", "reviewer": reviewer.pk},
    )
    body = assert_error(response, 400, "invalid")
    assert set(body["errors"]) == {"lead_actuary"}
    assert body["detail"].startswith("Engagement “ORPH")
    assert "you are its reviewer, so you cannot lead it" in body["detail"]
    assert ENGAGEMENT_NEEDS_LEAD.split("{")[0] in body["detail"]
    assert not Engagement.objects.filter(client_code="ORPH").exists()


def test_people_post_user_turns_only(lead, lead_client, engagement):
    session = session_create(actor=lead, engagement=engagement, title="Tail")
    url = f"{API}/sessions/{session.pk}/messages/"
    for role in ("assistant", "system", "tool"):
        body = assert_error(
            lead_client.post(url, {"role": role, "content": "I said so"}), 403, "not_allowed"
        )
        assert body["detail"] == MESSAGE_ROLE_AGENTS_ONLY.format(user=lead, role=role)
    assert lead_client.post(url, {"role": "user", "content": "Fine"}).status_code == 201
    lead.user_permissions.add(Permission.objects.get(codename="post_agent_messages"))
    assert lead_client.post(url, {"role": "assistant", "content": "Agent"}).status_code == 201


def test_the_team_reads_chat_session_events_without_their_title(lead, engagement, teammate_client):
    session_create(actor=lead, engagement=engagement, title="Confidential: the CFO's question")
    events = results(teammate_client.get(f"{API}/audit-logs/", {"engagement_id": engagement.pk}))
    session_events = [e for e in events if e["action"] == "session_create"]
    assert session_events
    assert "Confidential" not in json.dumps(events)


def test_deleting_another_teams_object_answers_404_not_403(lead_client):
    elsewhere = EngagementFactory()
    response = lead_client.delete(f"{API}/engagements/{elsewhere.pk}/")
    assert_error(response, 404, "not_found")
    response = lead_client.delete(f"{API}/engagements/not-a-uuid/")
    assert_error(response, 404, "not_found")


def test_the_review_memo_answers_an_unpaginated_array_as_documented(lead_client):
    schema = lead_client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/approvals/{id}/review-memo/"]["post"]
    response = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert response["type"] == "array"
    assert [p["name"] for p in operation.get("parameters", [])] == ["id"]
