"""Webhooks against a real HTTP receiver on 127.0.0.1: signed JSON, retries, delivery records.

The receiver is Python's http.server in a thread, on a free port, answering each POST
with the status the test scripts; it keeps every request's headers and raw body, so the
tests verify the signature the way a receiving system would (docs/notifications.md).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.utils import timezone

from approvals.choices import ApprovalType
from approvals.services import approval_request
from audit.choices import AuditAction, Severity
from audit.models import AuditLog
from audit.services import audit_record
from engagements.services import engagement_update
from notifications.choices import DeliveryStatus, NotificationEvent
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.services import (
    SUPERUSERS_ONLY,
    webhook_endpoint_create,
    webhook_endpoint_update,
)
from records.exceptions import InvalidInput, NotAllowed
from tests.factories.states import artefact_in, grant, run_in
from workflows.services import workflow_run_queue

from .conftest import BASE_URL

pytestmark = pytest.mark.django_db

E = NotificationEvent
SECRET = "whsec_test_0123456789abcdef"


class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    # The headers as received; their names are case-insensitive.
                    {"path": self.path, "headers": self.headers, "body": body}
                )
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                payload = b"boom" if status >= 500 else b"ok"
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/actuary"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def verify(secret: str, headers: dict, body: bytes, *, tolerance: int = 300) -> bool:
    """Verify a delivery as docs/notifications.md tells receivers to."""
    timestamp = headers["X-AI-Actuary-Timestamp"]
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance
    return fresh and hmac.compare_digest(expected, headers["X-AI-Actuary-Signature"])


def endpoint_for(team, receiver, *, owner=None, events=(E.APPROVAL_REQUESTED,), **fields):
    return webhook_endpoint_create(
        actor=team.root,
        name=fields.pop("name", "Ticketing"),
        url=fields.pop("url", None) or receiver.url,
        events=list(events),
        owner=owner or team.root,
        secret=fields.pop("secret", SECRET),
        **fields,
    )


@pytest.fixture
def ask_bob(team, committed):
    def ask_bob(name="Paid claims triangle"):
        triangle = artefact_in(team.engagement, actor=team.carol, name=name)
        return committed(
            approval_request,
            approval_type=ApprovalType.ARTEFACT_REVIEW,
            artefact=triangle,
            actor=team.alice,
            designated_approver=team.bob,
        )

    return ask_bob


@pytest.fixture
def clock(monkeypatch):
    now = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: now[0])

    def advance(**delta):
        now[0] = now[0] + datetime.timedelta(**delta)

    return advance


def sweep():
    call_command("send_due_reminders", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())


# --- a delivery ----------------------------------------------------------------------------


def test_a_delivery_is_signed_json_the_receiver_can_verify(team, receiver, ask_bob):
    endpoint = endpoint_for(team, receiver)
    approval = ask_bob()

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/hooks/actuary"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-AI-Actuary-Event"] == "approval_requested"
    assert verify(SECRET, headers, body)
    assert not verify("another secret", headers, body)
    assert not verify(SECRET, headers, body.replace(b"pending", b"approved"))

    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert headers["X-AI-Actuary-Delivery"] == str(record.pk)
    payload = json.loads(body)
    assert payload == record.payload
    event = AuditLog.objects.get(action=AuditAction.APPROVAL_REQUEST, resource_id=approval.pk)
    assert payload["id"] == str(record.pk) and payload["event"] == "approval_requested"
    assert payload["subject"] == (
        "Approval requested: The artefact review of “Paid claims triangle” (version 1)"
    )
    # Webhooks get the third person: "you" means nobody to a chat channel.
    assert payload["message"] == (
        "Alice Fairweather asked Bob Castellano to decide the artefact review of “Paid claims "
        "triangle” (version 1) in engagement ACME · FY2025 reserve review."
    )
    assert payload["link"] == f"{BASE_URL}/admin/approvals/approval/{approval.pk}/change/"
    assert payload["object"] == {
        "type": "approval",
        "id": str(approval.pk),
        "name": str(approval),
        "status": "pending",
        "api_url": f"{BASE_URL}/api/v1/approvals/{approval.pk}/",
    }
    assert payload["engagement"]["client_code"] == "ACME"
    assert payload["engagement"]["name"] == "FY2025 reserve review"
    assert payload["engagement"]["api_url"] == (
        f"{BASE_URL}/api/v1/engagements/{team.engagement.pk}/"
    )
    assert payload["actor"] == {
        "id": team.alice.pk,
        "username": "alice",
        "name": "Alice Fairweather",
    }
    assert payload["audit_event"] == {
        "id": str(event.pk),
        "sequence": event.sequence,
        "action": "approval_request",
        "severity": "info",
    }
    assert (record.status, record.attempts, record.last_status_code, record.last_error) == (
        DeliveryStatus.SENT,
        1,
        200,
        "",
    )
    assert record.sent_at is not None and record.audit_event == event


def test_a_500_is_retried_with_backoff_and_the_record_says_so(team, receiver, ask_bob, clock):
    receiver.statuses = [500, 200]
    endpoint = endpoint_for(team, receiver)
    ask_bob()

    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (record.status, record.attempts, record.last_status_code) == (
        DeliveryStatus.RETRYING,
        1,
        500,
    )
    assert record.last_error == "HTTP 500 Internal Server Error: boom"
    assert round((record.next_attempt_at - timezone.now()).total_seconds()) == 60

    sweep()  # not due yet
    assert len(receiver.requests) == 1
    clock(seconds=61)
    sweep()

    first, second = receiver.requests
    assert second["body"] == first["body"]  # the same payload, the same delivery id
    assert second["headers"]["X-AI-Actuary-Delivery"] == first["headers"]["X-AI-Actuary-Delivery"]
    record.refresh_from_db()
    assert (record.status, record.attempts, record.last_status_code, record.last_error) == (
        DeliveryStatus.SENT,
        2,
        200,
        "",
    )
    reasons = list(
        record.history.order_by("history_date").values_list("history_change_reason", flat=True)
    )
    assert reasons == [None, "Attempt 1", "Attempt 1 failed", "Attempt 2", "Attempt 2 succeeded"]
    sweep()
    assert len(receiver.requests) == 2


def test_after_the_last_attempt_the_delivery_is_failed(settings, team, receiver, ask_bob, clock):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    receiver.statuses = [503, 503, 503]
    endpoint = endpoint_for(team, receiver)
    ask_bob()
    clock(minutes=2)
    sweep()
    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (record.status, record.attempts, record.next_attempt_at) == (
        DeliveryStatus.FAILED,
        2,
        None,
    )
    assert record.last_error.startswith("HTTP 503")
    clock(hours=2)
    sweep()
    assert len(receiver.requests) == 2


def test_a_redirect_is_not_followed(team, receiver, ask_bob):
    receiver.statuses = [302]
    endpoint = endpoint_for(team, receiver)
    ask_bob()
    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert record.status == DeliveryStatus.RETRYING and record.last_status_code == 302
    assert record.last_error.startswith("HTTP 302")


def test_an_unreachable_receiver_is_a_failed_attempt(team, receiver, ask_bob):
    url = receiver.url
    receiver.close()  # nobody listens on that port any more
    endpoint = endpoint_for(team, receiver, url=url)
    ask_bob()
    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert record.status == DeliveryStatus.RETRYING and record.last_status_code is None
    assert record.last_error.startswith("URLError: ")


def test_a_delivery_task_run_twice_posts_once(team, receiver, ask_bob):
    from notifications.tasks import deliver_webhook

    endpoint = endpoint_for(team, receiver)
    ask_bob()
    record = WebhookDelivery.objects.get(endpoint=endpoint)
    assert deliver_webhook.enqueue(str(record.pk)).return_value["outcome"] == "skipped"
    assert len(receiver.requests) == 1


# --- what an endpoint receives -------------------------------------------------------------


def test_an_endpoint_receives_only_what_its_owner_could_see(team, receiver, ask_bob):
    outsider = grant(team.oscar, "approvals.view_approval")  # may view approvals, not this team's
    member_without_view = team.carol  # on the team, no view_approval permission
    member = grant(team.olive, "approvals.view_approval")  # an observer: reads everything
    endpoints = {
        "outsider": endpoint_for(team, receiver, owner=outsider, name="Oscar's"),
        "no_view": endpoint_for(team, receiver, owner=member_without_view, name="Carol's"),
        "member": endpoint_for(team, receiver, owner=member, name="Olive's"),
        "superuser": endpoint_for(team, receiver, name="Root's"),
    }
    ask_bob()
    received = {
        key
        for key, endpoint in endpoints.items()
        if WebhookDelivery.objects.filter(endpoint=endpoint)
    }
    assert received == {"member", "superuser"}
    assert len(receiver.requests) == 2


def test_a_critical_event_outside_any_engagement_reaches_only_those_who_see_every_event(
    team, receiver, committed
):
    watcher = grant(team.olive, "audit.view_auditlog")
    everyone = grant(team.oscar, "audit.view_auditlog", "engagements.view_all_engagements")
    watched = endpoint_for(team, receiver, owner=watcher, events=[E.CRITICAL_EVENT], name="W")
    global_view = endpoint_for(team, receiver, owner=everyone, events=[E.CRITICAL_EVENT], name="G")

    def record():
        return audit_record(
            action=AuditAction.SETTINGS_CHANGE,
            severity=Severity.CRITICAL,
            resource_type="settings",
            user=team.alice,
            description="Audit triggers found disabled.",
        )

    committed(record)
    assert not WebhookDelivery.objects.filter(endpoint=watched).exists()
    [delivery] = WebhookDelivery.objects.filter(endpoint=global_view)
    assert delivery.payload["event"] == "critical_event"
    assert delivery.payload["object"]["type"] == "auditlog"
    assert delivery.payload["engagement"] is None


def test_unsubscribed_and_inactive_endpoints_receive_nothing(team, receiver, ask_bob):
    other_event = endpoint_for(team, receiver, events=[E.RUN_FAILED], name="Runs only")
    inactive = endpoint_for(team, receiver, is_active=False, name="Paused")
    ask_bob()
    assert not WebhookDelivery.objects.filter(endpoint__in=[other_event, inactive]).exists()
    assert receiver.requests == []


def test_reminders_reach_subscribed_endpoints_once(team, receiver, committed):
    endpoint_for(team, receiver, events=[E.ENGAGEMENT_DUE])
    committed(
        engagement_update,
        engagement=team.engagement,
        actor=team.alice,
        data={"due_date": timezone.localdate() + datetime.timedelta(days=2)},
    )
    for _ in range(2):
        committed(call_command, "send_due_reminders", "--no-progress", stdout=io.StringIO())
    [request] = receiver.requests
    payload = json.loads(request["body"])
    assert payload["event"] == "engagement_due" and payload["actor"] is None
    assert payload["subject"] == "Engagement due in 2 days: ACME · FY2025 reserve review"
    assert payload["message"].startswith(
        "Engagement ACME · FY2025 reserve review for Acme General Insurance plc, led by Alice "
        "Fairweather, is due on "
    )


# --- registering endpoints -----------------------------------------------------------------


def test_only_superusers_register_endpoints_and_it_is_audited_without_the_secret(team, receiver):
    with pytest.raises(NotAllowed, match=SUPERUSERS_ONLY.format(verb="register", user="alice")):
        webhook_endpoint_create(
            actor=team.alice, name="Mine", url=receiver.url, events=["run_failed"], owner=team.alice
        )
    endpoint = webhook_endpoint_create(
        actor=team.root, name="Chat", url=receiver.url, events=["run_failed"], owner=team.root
    )
    assert len(endpoint.secret) >= 40  # generated
    event = AuditLog.objects.get(action=AuditAction.SETTINGS_CHANGE, resource_id=endpoint.pk)
    assert event.user == team.root and endpoint.secret not in json.dumps(event.new_value)
    assert event.new_value["events"] == ["run_failed"]
    assert "secret" not in {f.name for f in WebhookEndpoint.history.model._meta.fields}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"events": ["nonsense"]}, "events", "Unknown event(s): nonsense."),
        ({"events": []}, "events", "Choose at least one event for the endpoint to receive."),
        ({"url": "ftp://example.com/x"}, "url", "The URL must start with http:// or https://"),
        ({"secret": "x"}, None, "Cannot change secret of webhook endpoint"),
    ],
)
def test_bad_endpoint_changes_are_refused_and_change_nothing(
    team, receiver, changes, field, message
):
    endpoint = endpoint_for(team, receiver)
    with pytest.raises(InvalidInput, match=re.escape(message)) as refused:
        webhook_endpoint_update(endpoint=endpoint, actor=team.root, data=changes)
    assert refused.value.field == field
    endpoint.refresh_from_db()
    assert endpoint.events == ["approval_requested"] and endpoint.url == receiver.url


def test_a_run_the_runner_completed_is_told_in_the_third_person(team, receiver, committed, quick):
    endpoint_for(team, receiver, events=[E.RUN_COMPLETED])
    run = run_in(team.engagement, actor=team.carol, workflow_type="cohort_grouping", name="Cohorts")
    committed(workflow_run_queue, run=run, actor=team.carol)
    [request] = receiver.requests
    payload = json.loads(request["body"])
    assert payload["message"] == (
        "The workflow run “Cohorts” (cohort grouping) of Carol Okafor in engagement ACME · "
        "FY2025 reserve review completed.\n\nIts results are on the run's page."
    )
    assert payload["actor"] is None  # the runner did it
    assert payload["object"]["type"] == "workflowrun" and payload["object"]["status"] == "completed"
