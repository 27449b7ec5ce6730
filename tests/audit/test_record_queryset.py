"""Bulk writes on tracked domain models keep django-simple-history's trail."""

import re

import pytest
from django.db.models import F

from artefacts.models import Artefact
from engagements.models import Engagement, EngagementMember
from records.exceptions import HistoryBypassRefused
from records.models import BULK_CREATE_CONFLICTS_REFUSED
from tests.factories import ArtefactFactory, UserFactory, WorkflowRunFactory
from workflows.models import WorkflowRun

pytestmark = pytest.mark.django_db


def _history_types(obj) -> list[str]:
    return list(
        obj.history.order_by("history_date", "history_id").values_list("history_type", flat=True)
    )


class TestUpdate:
    def test_update_saves_each_row_with_a_history_row(self, engagement):
        runs = [WorkflowRunFactory(engagement=engagement) for _ in range(3)]
        other = WorkflowRunFactory()

        updated = WorkflowRun.objects.filter(engagement=engagement).update(
            agent_name="reserving-bot"
        )

        assert updated == 3
        for run in runs:
            run.refresh_from_db()
            assert run.agent_name == "reserving-bot"
            assert _history_types(run) == ["+", "~"]
            assert run.history.first().agent_name == "reserving-bot"
        assert _history_types(other) == ["+"]

    def test_update_moves_the_updated_at_stamp(self, engagement):
        run = WorkflowRunFactory(engagement=engagement)
        before = run.updated_at
        WorkflowRun.objects.filter(pk=run.pk).update(agent_name="bot")
        run.refresh_from_db()
        assert run.updated_at > before

    def test_expressions_are_evaluated_per_row_and_recorded_as_values(self, engagement):
        run = WorkflowRunFactory(engagement=engagement, step_count=4)
        WorkflowRun.objects.filter(pk=run.pk).update(step_count=F("step_count") + 2)
        run.refresh_from_db()
        assert run.step_count == 6
        assert run.history.first().step_count == 6

    def test_the_soft_delete_manager_updates_live_rows_only(self, engagement, actuary):
        live = WorkflowRunFactory(engagement=engagement)
        hidden = WorkflowRunFactory(engagement=engagement)
        hidden.soft_delete(actuary)
        assert WorkflowRun.objects.filter(engagement=engagement).update(agent_name="bot") == 1
        hidden.refresh_from_db()
        live.refresh_from_db()
        assert (live.agent_name, hidden.agent_name) == ("bot", "")

    def test_a_sliced_update_is_refused_like_django_does(self):
        with pytest.raises(TypeError, match="slice"):
            WorkflowRun.objects.all()[:1].update(agent_name="bot")

    def test_bulk_update_goes_through_the_history_aware_update(self, engagement):
        runs = [WorkflowRunFactory(engagement=engagement) for _ in range(2)]
        for index, run in enumerate(runs):
            run.agent_name = f"agent-{index}"
        assert WorkflowRun.objects.bulk_update(runs, ["agent_name"]) == 2
        for index, run in enumerate(runs):
            assert run.history.first().agent_name == f"agent-{index}"
            assert _history_types(run) == ["+", "~"]

    def test_a_related_manager_remove_records_the_unlinking(self, engagement):
        run = WorkflowRunFactory(engagement=engagement)
        artefact = ArtefactFactory(engagement=engagement, workflow_run=run)
        run.artefacts.remove(artefact)
        artefact.refresh_from_db()
        assert artefact.workflow_run is None
        assert artefact.history.first().workflow_run_id is None
        assert _history_types(artefact) == ["+", "~"]


class TestDjangoInternalsStillWork:
    def test_model_save_updates_through_the_base_manager(self, engagement):
        engagement.name = "Renamed"
        engagement.save()
        assert Engagement.objects.get(pk=engagement.pk).name == "Renamed"
        assert _history_types(engagement) == ["+", "~"]

    def test_on_delete_set_null_runs_through_the_collector(self, engagement):
        run = WorkflowRunFactory(engagement=engagement)
        artefact = ArtefactFactory(engagement=engagement, workflow_run=run)
        run.delete()
        artefact.refresh_from_db()
        assert artefact.workflow_run_id is None


class TestDelete:
    def test_queryset_delete_records_a_deletion_per_row(self, engagement):
        runs = [WorkflowRunFactory(engagement=engagement) for _ in range(2)]
        deleted, _per_model = WorkflowRun.objects.filter(engagement=engagement).delete()
        assert deleted == 2
        for run in runs:
            assert list(
                WorkflowRun.history.filter(id=run.id)
                .order_by("history_date", "history_id")
                .values_list("history_type", flat=True)
            ) == ["+", "-"]


class TestBulkCreate:
    def test_bulk_create_writes_a_created_history_row_for_each(self, engagement):
        runs = WorkflowRun.objects.bulk_create(
            [
                WorkflowRun(engagement=engagement, name=f"run {i}", period="2025-Q4")
                for i in range(3)
            ]
        )
        assert len(runs) == 3
        for run in runs:
            assert _history_types(run) == ["+"]

    def test_many_to_many_add_through_the_team_writes_history(self, engagement):
        observer = UserFactory()
        engagement.members.add(observer, through_defaults={"role": "observer"})
        member = EngagementMember.objects.get(engagement=engagement, user=observer)
        assert _history_types(member) == ["+"]

    @pytest.mark.parametrize("option", ["ignore_conflicts", "update_conflicts"])
    def test_upserts_and_ignored_conflicts_are_refused(self, engagement, option):
        message = re.escape(BULK_CREATE_CONFLICTS_REFUSED.format(model="artefacts.Artefact"))
        with pytest.raises(HistoryBypassRefused, match=message):
            Artefact.objects.bulk_create([], **{option: True})
