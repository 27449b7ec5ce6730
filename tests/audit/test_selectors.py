"""engagement_timeline merges AuditLog events and change history in time order."""

import pytest

from audit.choices import AuditAction
from audit.selectors import engagement_timeline
from audit.services import audit_record
from tests.factories import (
    ApprovalFactory,
    ArtefactFactory,
    EngagementFactory,
    SessionFactory,
    WorkflowRunFactory,
)

pytestmark = pytest.mark.django_db


def _summary(entries):
    return [(e.source, e.object_type, e.kind) for e in entries]


def test_audit_events_and_history_are_merged_newest_first(engagement, actuary):
    audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=engagement, user=actuary)
    run = WorkflowRunFactory(engagement=engagement)
    audit_record(action=AuditAction.WORKFLOW_START, resource=run, user=actuary)
    engagement.name = "Year-end reserving 2025"
    engagement.save()

    entries = engagement_timeline(engagement)

    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    assert _summary(entries)[:4] == [
        ("history", "engagement", "changed"),
        ("audit", "workflowrun", AuditAction.WORKFLOW_START),
        ("history", "workflow run", "created"),
        ("audit", "engagement", AuditAction.ENGAGEMENT_UPDATE),
    ]
    # Then the team (two members) and the engagement's creation, oldest last.
    assert _summary(entries)[-1] == ("history", "engagement", "created")
    assert len(entries) == 7


def test_a_change_lists_the_fields_that_changed(engagement):
    old_name = engagement.name
    engagement.name = "Renamed"
    engagement.save()

    change = engagement_timeline(engagement)[0]

    assert change.kind == "changed"
    assert [(c.field, c.old, c.new) for c in change.changes] == [("name", old_name, "Renamed")]


def test_every_object_of_the_engagement_appears(engagement, actuary):
    artefact = ArtefactFactory(engagement=engagement)
    ApprovalFactory(artefact=artefact, engagement=None, requested_by=actuary)
    ApprovalFactory(artefact=None, engagement=engagement, requested_by=actuary)
    SessionFactory(user=actuary, engagement=engagement)
    WorkflowRunFactory(engagement=engagement)

    types = {e.object_type for e in engagement_timeline(engagement)}

    # Chat sessions are their owner's: the team sees their (untitled) audit events only.
    assert types == {"engagement", "team member", "workflow run", "artefact", "approval"}
    approvals = [e for e in engagement_timeline(engagement) if e.object_type == "approval"]
    assert len(approvals) == 2


def test_other_engagements_stay_out(engagement):
    other = EngagementFactory()
    WorkflowRunFactory(engagement=other)
    audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=other)

    entries = engagement_timeline(engagement)

    assert all(e.object_id != other.pk for e in entries)
    assert not [e for e in entries if e.source == "audit"]


def test_the_limit_keeps_the_newest(engagement):
    for _ in range(5):
        audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=engagement)

    entries = engagement_timeline(engagement, limit=3)

    assert len(entries) == 3
    assert {e.source for e in entries} == {"audit"}


def test_deleted_objects_keep_their_history(engagement):
    run = WorkflowRunFactory(engagement=engagement)
    run.delete()
    kinds = [e.kind for e in engagement_timeline(engagement) if e.object_type == "workflow run"]
    assert kinds == ["deleted", "created"]


def test_the_timeline_costs_one_query_per_source(engagement, django_assert_max_num_queries):
    audit_record(action=AuditAction.ENGAGEMENT_UPDATE, resource=engagement)
    with django_assert_max_num_queries(7):
        engagement_timeline(engagement)
