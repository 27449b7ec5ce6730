"""A client generated from the live schema works: it imports, and a session runs through it.

The contract test of the API (issue 21): the commands of docs/api/client.md generate a
Python client with openapi-python-client from `manage.py spectacular`; every module of
it imports, and `ruff check --select F821` finds no undefined name in it. Then the
page's example runs against a live server, through the typed calls alone: an
engagement is opened, a triangle uploaded (multipart), a reserve calculation created
with nested input_params and queued (the test settings' task backend is the worker),
its typed totals read, a review of its result requested and approved by a second
user, its workflow approval decided, and the audit log paged through.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from approvals.models import Approval
from audit.models import AuditLog
from engagements.models import Engagement
from tests.api_fixtures import worker
from tests.docs.markdown import DOCS, ROOT, read_blocks
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    UserFactory,
)
from workflows.models import WorkflowRun

pytestmark = pytest.mark.slow

PAGE = DOCS / "api" / "client.md"
EXAMPLE = "api-client"
PACKAGE = "ai_actuary_client"
# The uploads: the only operations whose body is a multipart form.
MULTIPART_OPERATIONS = {"artefacts_create", "artefacts_versions_create"}


def example(language: str):
    """Return the page's example block in `language` (the one this test runs)."""
    [block] = [
        block
        for block in read_blocks(PAGE)
        if (block.marker, block.marker_value, block.language) == ("example", EXAMPLE, language)
    ]
    return block


@pytest.fixture(scope="module")
def client_folder(tmp_path_factory) -> Path:
    """Run the page's generation commands in a fresh folder; return it (the package inside)."""
    folder = tmp_path_factory.mktemp("generated")
    # openapi-python-client formats what it writes with ruff (its post hooks).
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for line in example("sh").lines:
        words = shlex.split(line)
        if words[:2] == ["python", "manage.py"]:
            with contextlib.chdir(folder):
                call_command(*words[2:])
        elif words[0] == "openapi-python-client":
            generation = subprocess.run(
                [sys.executable, "-m", "openapi_python_client", *words[1:]],
                cwd=folder,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            assert generation.returncode == 0, generation.stdout + generation.stderr
            assert "Warning" not in generation.stdout, generation.stdout
        else:
            pytest.fail(f"{PAGE}: the example runs {line!r}, which this test does not know")
    assert (folder / PACKAGE / "__init__.py").exists()
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
        del sys.modules[name]


def test_the_generated_client_imports_cleanly(client_folder):
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F821"],
        cwd=client_folder / PACKAGE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    package = importlib.import_module(PACKAGE)
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}.")
    ]
    assert len(modules) > 200
    multipart = {
        module.__name__.rsplit(".", 1)[-1]
        for module in modules
        if ".api." in module.__name__ and "to_multipart()" in Path(module.__file__).read_text()
    }
    assert multipart == MULTIPART_OPERATIONS
    models = importlib.import_module(f"{PACKAGE}.models")
    for name in ("ReservingRunSummary", "ReserveTotals", "ApproverQualifications", "AuditValues"):
        assert hasattr(models, name), name


@pytest.mark.django_db(transaction=True)
def test_a_whole_session_runs_through_the_typed_client(client_folder, live_server):
    alice = worker(UserFactory(username="alice", first_name="Alice", last_name="Lead"))
    bob = worker(UserFactory(username="bob", first_name="Bob", last_name="Reviewer"))
    ProfessionalQualificationFactory(user=bob)
    # They have worked together before (as in the demo), so alice finds bob among the users.
    earlier = EngagementFactory(lead_actuary=alice, reviewer=bob)
    EngagementMemberFactory(engagement=earlier, user=alice, role="lead")
    EngagementMemberFactory(engagement=earlier, user=bob, role="reviewer")
    alice_token, bob_token = (Token.objects.create(user=user).key for user in (alice, bob))
    script = example("python")
    namespace: dict = {"__name__": "client_example"}
    exec(compile(script.text, f"{PAGE}:{script.line}", "exec"), namespace)

    run, trail = namespace["reserve_and_review"](
        live_server.url, alice_token, bob_token, ROOT / "docs" / "files" / "paid.csv"
    )

    models = importlib.import_module(f"{PACKAGE}.models")
    assert run.status == models.WorkflowStatusEnum.COMPLETED
    assert isinstance(run.output_summary, models.ReservingRunSummary)
    totals = run.output_summary.totals
    assert isinstance(totals, models.ReserveTotals) and totals.ibnr > 0
    [selected] = [f for f in run.output_summary.development_factors if f.source == "override"]
    assert (selected.ldf, selected.reason) == (1.05, "Settlement speed-up")
    assert run.output_summary.tail.factor == 1.01
    assert isinstance(run.metrics, models.WorkflowRunMetrics) and run.metrics.steps

    stored = WorkflowRun.objects.get(pk=run.id)
    assert stored.status == "completed" and stored.queued_by == alice
    assert stored.output_summary["totals"]["ibnr"] == totals.ibnr
    engagement = Engagement.objects.get(pk=stored.engagement_id)
    assert (engagement.lead_actuary, engagement.reviewer) == (alice, bob)
    approvals = Approval.objects.filter(engagement=engagement)
    assert sorted(approvals.values_list("approval_type", "status", "approver")) == [
        ("artefact_review", "approved", bob.pk),
        ("workflow_approval", "approved", bob.pk),
    ]

    events = AuditLog.objects.filter(engagement_id=engagement.pk).order_by("-sequence")
    assert [entry.sequence for entry in trail] == [event.sequence for event in events]
    assert len(trail) > 10  # more than one page of 10
    assert all(isinstance(entry, models.AuditLog) for entry in trail)
    decisions = [entry for entry in trail if entry.action == models.ActionEnum.APPROVAL_APPROVE]
    assert len(decisions) == 2
    assert all(isinstance(entry.metadata, models.AuditMetadata) for entry in decisions)
