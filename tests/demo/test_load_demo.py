import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from approvals.models import Approval
from artefacts.models import Artefact
from audit.models import AuditLog
from conversations.models import ChatMessage
from engagements.models import Engagement
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def _counts():
    counts = {
        model.__name__: model._base_manager.count()
        for model in (get_user_model(), Engagement, WorkflowRun, Artefact, Approval, ChatMessage)
    }
    # Logging in to look at the demo is itself on record; the demo's own events are the rest.
    counts["AuditLog"] = AuditLog.objects.exclude(action__in=("login", "logout")).count()
    return counts


def test_load_demo_builds_a_living_back_office_and_is_idempotent(client):
    call_command("load_demo", force=True)
    first = _counts()
    statuses = dict(Engagement.objects.values_list("client_code", "status"))
    assert statuses == {
        "ACME": "active",
        "NORDLIFE": "active",
        "HELIX": "draft",
        "ORCA": "completed",
        "PINE": "cancelled",
    }
    assert set(Approval.objects.values_list("status", flat=True)) >= {"pending", "approved"}
    assert WorkflowRun.objects.filter(status="failed").exists()
    assert Artefact.objects.exists() and ChatMessage.objects.exists()
    # Demo logins work: the password is the username.
    assert client.login(username="admin", password="admin")
    assert client.get("/admin/").status_code == 200
    client.logout()
    assert client.login(username="alice", password="alice")
    assert client.get("/admin/engagements/engagement/").status_code == 200

    call_command("load_demo", force=True)
    assert _counts() == first


def test_load_demo_refuses_without_debug_unless_forced(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refused while DEBUG is off"):
        call_command("load_demo")
    assert not Engagement.objects.exists()
