"""seed_volume: a firm's volume in bulk, consistent enough to read, list and verify."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import override_settings

from artefacts.models import Artefact
from audit.models import AuditLog
from engagements.models import Engagement, EngagementMember
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def seed(**counts) -> str:
    out = io.StringIO()
    call_command("seed_volume", force=True, stdout=out, **counts)
    return out.getvalue()


def test_it_seeds_every_kind_of_row_and_a_chain_that_verifies():
    output = seed(engagements=12, runs=60, artefacts=25, audit=300, users=6)
    assert "6 users, 12 engagements, 60 runs, 25 artefacts, 300 audit entries" in output
    assert Engagement.objects.filter(client_code__startswith="SEED-").count() == 12
    assert EngagementMember.objects.count() == 36  # teams of three
    assert WorkflowRun.objects.count() == 60
    assert AuditLog.objects.count() == 300
    artefacts = Artefact.objects.all()
    assert artefacts.count() == 25
    # Each artefact belongs to its run's engagement, with a well-formed hash and no file.
    assert not artefacts.exclude(engagement=F("workflow_run__engagement")).exists()
    assert all(len(a.content_hash) == 64 and not a.file for a in artefacts)
    out = io.StringIO()
    call_command("verify_audit_log", stdout=out)
    assert "Audit log intact: 300 entries" in out.getvalue()


def test_artefacts_default_to_half_the_runs():
    assert "40 runs, 20 artefacts" in seed(engagements=4, runs=40, audit=0, users=3)


def test_artefacts_need_runs():
    with pytest.raises(CommandError, match="Artefacts come from runs"):
        seed(engagements=4, runs=0, artefacts=5, audit=0)


@override_settings(DEBUG=False)
def test_it_refuses_to_seed_fake_data_without_force():
    with pytest.raises(CommandError, match="--force"):
        call_command("seed_volume", engagements=1, runs=0, audit=0, stdout=io.StringIO())
    assert not Engagement.objects.exists()


def test_the_artefact_changelist_reads_seeded_artefacts(admin_client):
    seed(engagements=5, runs=20, artefacts=30, audit=0, users=3)
    response = admin_client.get("/admin/artefacts/artefact/")
    assert response.status_code == 200
    assert "Seeded " in response.content.decode()
