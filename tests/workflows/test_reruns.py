"""Re-runs and one-step submissions (`workflows.services.reruns`): new runs, never changed ones."""

import pytest
from rest_framework.test import APIClient

from audit.choices import AuditAction
from records.exceptions import Conflict, InvalidInput, NotAllowed
from tests.admin_fixtures import actuaries_group, lead
from tests.factories import EngagementFactory, UserFactory
from tests.factories.states import audit_events_since, audit_mark, database_state, run_in
from workflows.choices import WorkflowType
from workflows.services import (
    RERUN_ELSEWHERE,
    RERUN_NOT_RUNNABLE,
    RERUN_UNCHANGED,
    workflow_run_create,
    workflow_run_rerun,
    workflow_run_submit,
)

from .conftest import reserving_params

__all__ = ("actuaries_group", "lead")

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(create_run, genins):
    return create_run(WorkflowType.RESERVE_CALCULATION, reserving_params(genins), name="GenIns")


def test_submit_creates_and_queues_in_one_go(
    engagement, actuary, genins, django_capture_on_commit_callbacks
):
    mark = audit_mark()
    with django_capture_on_commit_callbacks() as callbacks:
        run = workflow_run_submit(
            engagement=engagement,
            workflow_type=WorkflowType.RESERVE_CALCULATION,
            name="Submitted",
            input_params=reserving_params(genins),
            actor=actuary,
        )
    assert run.status == "queued" and run.queued_by == actuary and len(callbacks) == 1
    actions = [event.action for event in audit_events_since(mark)]
    assert actions == [AuditAction.WORKFLOW_CREATE, AuditAction.WORKFLOW_UPDATE]


def test_a_rerun_is_a_new_linked_run_and_the_source_is_left_as_it_is(
    source, actuary, genins, django_capture_on_commit_callbacks
):
    before = dict(source.input_params)
    params = {**source.input_params, "exclude": [["2001", 12]], "average": "simple"}
    with django_capture_on_commit_callbacks():
        new = workflow_run_rerun(run=source, actor=actuary, input_params=params)
    assert new.pk != source.pk and new.rerun_of == source and new.status == "queued"
    assert new.name == "GenIns (re-run)" and new.engagement == source.engagement
    assert new.description == "Re-run of “GenIns” with changed average, exclude."
    source.refresh_from_db()
    assert source.input_params == before and list(source.reruns.all()) == [new]


def test_a_rerun_that_changes_nothing_is_refused(source, actuary):
    before = database_state()
    with pytest.raises(Conflict, match=RERUN_UNCHANGED.format(run=source)):
        workflow_run_rerun(run=source, actor=actuary, input_params=dict(source.input_params))
    assert database_state() == before


def test_a_type_without_a_runner_is_not_rerun(engagement, actuary):
    custom = run_in(engagement, actor=actuary)
    with pytest.raises(Conflict, match=RERUN_NOT_RUNNABLE.split("{")[0]):
        workflow_run_rerun(run=custom, actor=actuary, input_params={"x": 1})


def test_bad_changes_are_refused_naming_the_parameter(source, actuary):
    params = {**source.input_params, "exclude": [["1066", 12]]}
    with pytest.raises(InvalidInput, match="1066 is not an origin of the triangle"):
        workflow_run_rerun(run=source, actor=actuary, input_params=params)


def test_only_the_team_reruns(source):
    stranger = UserFactory(username="stranger", is_staff=True)
    params = {**source.input_params, "average": "simple"}
    with pytest.raises(NotAllowed, match="they are not on its team"):
        workflow_run_rerun(run=source, actor=stranger, input_params=params)


def test_a_rerun_stays_in_its_engagement(source, actuary, genins):
    other = EngagementFactory(client_code="ELSE", lead_actuary=actuary)
    other.team.create(user=actuary, role="lead")
    with pytest.raises(InvalidInput, match=RERUN_ELSEWHERE.split("“")[0]):
        workflow_run_create(
            engagement=other,
            workflow_type="custom",
            name="Elsewhere",
            actor=actuary,
            rerun_of=source,
        )


def test_the_api_shows_which_run_a_rerun_came_from(
    source, lead, django_capture_on_commit_callbacks
):
    actuary = lead  # the same user, in the Actuaries group (the API's model permissions)
    params = {**source.input_params, "average": "simple"}
    with django_capture_on_commit_callbacks():
        new = workflow_run_rerun(run=source, actor=actuary, input_params=params)
    client = APIClient()
    client.force_authenticate(actuary)
    body = client.get(f"/api/v1/workflow-runs/{new.pk}/").json()
    assert body["rerun_of"] == str(source.pk)
    assert client.get(f"/api/v1/workflow-runs/{source.pk}/").json()["rerun_of"] is None
