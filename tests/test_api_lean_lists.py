"""The lean list path (records.api.lean) writes exactly what the full serializers write.

The engagements, workflow runs and audit log lists represent their rows through
`LeanListSerializer`; details go through the full serializer. For the same rows
(seeded at volume's shape, plus the edge cases: nulls, a re-run, a system event),
each list's JSON must be byte for byte the full serializer's, row after row, so the
two cannot drift apart.
"""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from audit.api.serializers import AuditLogSerializer
from audit.api.views import AuditLogViewSet
from engagements.api.serializers import EngagementSerializer
from engagements.api.views import EngagementViewSet
from engagements.models import Engagement, EngagementMember
from records.api.lean import LeanListSerializer, lean_rows
from tests.api_fixtures import API, superuser_client
from tests.factories import AuditLogFactory, EngagementFactory, WorkflowRunFactory
from workflows.api.serializers import WorkflowRunSerializer
from workflows.api.views import WorkflowRunViewSet
from workflows.models import WorkflowRun

__all__ = ("superuser_client",)

pytestmark = pytest.mark.django_db

LISTS = {
    "engagements": (EngagementViewSet, EngagementSerializer),
    "workflow-runs": (WorkflowRunViewSet, WorkflowRunSerializer),
    "audit-logs": (AuditLogViewSet, AuditLogSerializer),
}


@pytest.fixture
def rows():
    call_command("seed_volume", engagements=6, runs=40, audit=120, users=8, force=True)
    engagement = EngagementFactory(description="", metadata={"tags": ["a", "ü"]}, config={})
    first = WorkflowRunFactory(engagement=engagement, started_at=timezone.now())
    WorkflowRunFactory(engagement=engagement, rerun_of=first, output_summary=None)
    AuditLogFactory(user=None, engagement_id=None, old_value=None, ip_address="10.0.0.1")


def render(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize("name", LISTS)
def test_every_row_of_the_list_is_written_as_the_full_serializer_writes_it(rows, name):
    viewset, serializer = LISTS[name]
    assert serializer.Meta.list_serializer_class is LeanListSerializer
    objects = list(viewset.queryset.all())
    assert len(objects) > 5
    lean = serializer(objects, many=True, context={"request": None}).data
    full = [serializer(row, context={"request": None}).data for row in objects]
    assert [render(row) for row in lean] == [render(row) for row in full]
    # Dict equality too: the same keys in the same order, the same Python values.
    assert [list(row.items()) for row in lean] == [list(row.items()) for row in full]


@pytest.mark.parametrize("name", LISTS)
def test_the_list_endpoint_answers_the_full_serializers_json(rows, superuser_client, name):
    viewset, serializer = LISTS[name]
    response = superuser_client.get(f"{API}/{name}/", {"page_size": 100})
    assert response.status_code == 200
    results = response.json()["results"]
    by_id = {str(row.pk): row for row in viewset.queryset.all()}
    expected = [serializer(by_id[row["id"]], context={"request": None}).data for row in results]
    body = response.content
    # The page's results are the full serializer's rows, rendered the same way.
    assert render(expected)[1:-1] in body


def concrete_values(instance) -> dict:
    return {
        field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields
    }


@pytest.mark.parametrize("name", LISTS)
def test_lean_rows_are_the_instances_django_makes(rows, name):
    viewset, _serializer = LISTS[name]
    queryset = viewset.queryset.order_by("pk")
    lean = list(lean_rows(queryset))
    assert lean, "the list has rows"
    django_made = list(queryset)
    assert [type(row) for row in lean] == [type(row) for row in django_made]
    assert [concrete_values(row) for row in lean] == [concrete_values(row) for row in django_made]
    for row in lean:
        assert row._state.adding is False
        assert row._state.db == "default"
        assert row.pk is not None


def test_lean_rows_read_json_as_django_reads_it():
    # orjson reads what it can; past 64 bits and for NaN the standard library's reader does.
    metadata = {
        "big": 2**70 + 1,
        "small": -(2**63),
        "float": 0.1,
        "tiny": 1e-07,
        "text": "é\u2028",
        "code": "1" * 25,
    }
    engagement = EngagementFactory(metadata=metadata, config={"nested": [{"a": None}, []]})
    (lean,) = lean_rows(Engagement.objects.filter(pk=engagement.pk))
    (plain,) = Engagement.objects.filter(pk=engagement.pk)
    assert lean.metadata == plain.metadata == metadata
    assert lean.config == plain.config == {"nested": [{"a": None}, []]}
    assert type(lean.metadata["big"]) is int


def test_queries_lean_rows_do_not_cover_are_read_by_django(rows):
    queryset = WorkflowRun.objects.order_by("pk")
    expected = [(run.pk, run.engagement.name) for run in queryset.select_related("engagement")]
    related = lean_rows(queryset.select_related("engagement"))
    with CaptureQueriesContext(connection) as captured:
        assert [(run.pk, run.engagement.name) for run in related] == expected
    assert len(captured) == 1  # the related rows came with the query, as Django reads them
    annotated = lean_rows(queryset.annotate(n=Count("pk")))
    assert all(run.n == 1 for run in annotated)
    deferred = list(lean_rows(queryset.only("pk", "name")))
    assert [run.name for run in deferred] == [run.name for run in queryset]
    values = queryset.values_list("pk", flat=True)
    assert lean_rows(values) is values  # not model instances: left as it is


def test_a_lean_row_behaves_like_any_instance(rows):
    (run,) = lean_rows(WorkflowRun.objects.filter(rerun_of__isnull=False))
    assert run.rerun_of.rerun_of_id is None  # a foreign key is fetched on first use
    assert (
        run.engagement.team.count()
        == EngagementMember.objects.filter(engagement=run.engagement_id).count()
    )
    WorkflowRun.objects.filter(pk=run.pk).update(name="Renamed")
    run.refresh_from_db()
    assert run.name == "Renamed"
    assert run == WorkflowRun.objects.get(pk=run.pk)
