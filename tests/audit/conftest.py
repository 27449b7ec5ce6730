"""Fixtures of the audit tests: an engagement with everything in it, for backups."""

import pytest

from approvals.choices import ApprovalType
from approvals.services import approval_approve, approval_reject, approval_request
from artefacts.models import Artefact
from artefacts.services import artefact_new_version
from conversations.models import Session
from conversations.services import chat_message_add, session_create
from engagements.models import Engagement
from engagements.services import engagement_update
from tests.factories.states import NO_CONFLICT, active_engagement, artefact_in, run_in, upload
from workflows.services import workflow_run_cancel, workflow_run_complete, workflow_run_delete


@pytest.fixture
def backup_root(settings, tmp_path):
    """Write archives and snapshots of a test to its own folder (backup tests use it)."""
    settings.BACKUP_ROOT = tmp_path / "backups"
    return settings.BACKUP_ROOT


@pytest.fixture
def built(engagement, actuary, reviewer):
    """An active engagement with everything in it, reached through the services."""
    engagement = active_engagement(engagement, actor=actuary)
    engagement = engagement_update(
        engagement=engagement, actor=actuary, data={"description": "Year-end reserving, Q4"}
    )
    run = run_in(engagement, actor=actuary, start=True)
    run = workflow_run_complete(run=run, actor=actuary, output_summary={"ibnr": 1234.5})
    cancelled = run_in(engagement, actor=actuary, name="Abandoned run")
    cancelled = workflow_run_cancel(run=cancelled, actor=actuary)
    workflow_run_delete(run=cancelled, actor=actuary)  # soft-deleted rows are kept too

    first = artefact_in(engagement, actor=actuary, workflow_run=run)
    review = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=first, actor=actuary
    )
    approval_approve(
        approval=review,
        actor=reviewer,
        notes="Checked against the ledger",
        conflict_of_interest_statement=NO_CONFLICT,
    )
    second = artefact_new_version(
        artefact=Artefact.objects.get(pk=first.pk),
        upload=upload(b"origin,development,value\n2020,12,101\n", "triangle.csv"),
        actor=actuary,
    )
    second_review = approval_request(
        approval_type=ApprovalType.ARTEFACT_REVIEW, artefact=second, actor=actuary
    )
    approval_reject(
        approval=second_review,
        actor=reviewer,
        reason="tail_factor",
        conflict_of_interest_statement=NO_CONFLICT,
    )

    session = session_create(actor=actuary, engagement=engagement, title="Tail factors")
    question = chat_message_add(
        session=session, role="user", content="Which tail factor?", actor=actuary
    )
    chat_message_add(
        session=Session.objects.get(pk=session.pk),
        role="assistant",
        content="1.02, as last year.",
        actor=actuary,
        parent=question,
        metadata={"tokens": 12, "latency": 0.25},
        agent_runtime=True,
    )
    return Engagement.objects.get(pk=engagement.pk)
