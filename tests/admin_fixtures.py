"""Fixtures of the admin workspace tests: staff actuaries with the demo's group permissions.

Import the fixtures a module uses (`from tests.admin_fixtures import ...`). The users
are what `load_demo` makes: staff in the "Actuaries" group, which holds view, add and
change permissions on the domain models (view only on the audit models). `actuary`
(the lead) and `reviewer` (FIA) are on the shared `engagement`; `outsider_engagement`
is another team's engagement, with a run, an artefact, an approval and a chat session,
and their professional-standards records: a review point on the approval (raised by
their reviewer), a data reliance entry for their input data and a disclosure checklist.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from approvals.choices import ApprovalType
from approvals.services import approval_request, disclosure_checklist_prefill, review_point_raise
from artefacts.choices import ArtefactType
from conversations.services import session_create
from demo.management.commands.load_demo import Command as LoadDemo
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    UserFactory,
)
from tests.factories.states import active_engagement, artefact_in, record_reliances, run_in


@pytest.fixture
def actuaries_group(db):
    """Return the demo's Actuaries group with its model permissions."""
    return LoadDemo().actuaries_group()


def in_group(user, group):
    """Return `user` added to `group`, re-read (a fresh permission cache)."""
    user.groups.add(group)
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def lead(actuary, actuaries_group):
    """The engagement's lead actuary: staff in the Actuaries group, no qualification."""
    return in_group(actuary, actuaries_group)


@pytest.fixture
def qualified_reviewer(reviewer, actuaries_group):
    """The engagement's reviewer: staff in the Actuaries group, FIA valid today."""
    return in_group(reviewer, actuaries_group)


@pytest.fixture
def lead_client(client, lead):
    client.force_login(lead)
    return client


@pytest.fixture
def reviewer_client(client, qualified_reviewer):
    client.force_login(qualified_reviewer)
    return client


@pytest.fixture
def outsider(db, actuaries_group):
    """A staff actuary of another team."""
    return in_group(UserFactory(username="outsider", is_staff=True), actuaries_group)


@pytest.fixture
def outsider_engagement(outsider):
    """Another team's active engagement: a run, an artefact, an approval, a session, a review
    point, a data reliance entry and a disclosure checklist."""
    engagement = EngagementFactory(
        client_code="OTHER", name="Someone else's engagement", lead_actuary=outsider
    )
    EngagementMemberFactory(engagement=engagement, user=outsider, role="lead")
    engagement = active_engagement(engagement, actor=outsider)
    run_in(engagement, actor=outsider, name="Their run")
    artefact = artefact_in(engagement, actor=outsider, name="Their triangle")
    approval = approval_request(
        approval_type=ApprovalType.DATA_VALIDATION, engagement=engagement, actor=outsider
    )
    session_create(actor=outsider, engagement=engagement, title="Their chat")
    their_reviewer = UserFactory(username="their_reviewer", is_staff=True)
    EngagementMemberFactory(engagement=engagement, user=their_reviewer, role="reviewer")
    review_point_raise(approval=approval, actor=their_reviewer, text="Their review point")
    artefact_in(
        engagement, actor=outsider, name="Their claims data", artefact_type=ArtefactType.CSV
    )
    record_reliances(engagement, actor=outsider)
    disclosure_checklist_prefill(engagement=engagement, actor=outsider)
    engagement.outsider_artefact = artefact
    return engagement


def count_queries(client, url) -> tuple[int, object]:
    """Return how many queries a GET of `url` runs, and the response."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response
    return len(queries), response
