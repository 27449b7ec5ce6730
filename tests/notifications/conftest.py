"""Fixtures of the notification tests: a team with names, an outsider, committed changes.

The test's transaction never commits, so what a commit would run (the announcement of
each audit event, then the email and webhook sends) is run by `committed`, the way
pytest-django's on-commit capture runs it: in order, callbacks added meanwhile too.
Emails land in Django's locmem outbox (`mail.outbox`), tasks run at once (the immediate
backend of config/settings/test.py).
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from django.core import mail
from django.utils import timezone

from engagements.services import engagement_activate
from notifications.models import Notification
from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    SuperUserFactory,
    UserFactory,
)
from workflows.implementations.base import Step, WorkflowImplementation

BASE_URL = "https://backoffice.example.com"


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.NOTIFICATIONS_BASE_URL = BASE_URL


def person(username, first, last, **fields):
    return UserFactory(
        username=username,
        first_name=first,
        last_name=last,
        email=f"{username}@firm.example",
        is_staff=True,
        **fields,
    )


@pytest.fixture
def team(db):
    """An active engagement: Alice leads, Bob reviews (FIA), Carol works, Olive observes.

    Oscar is staff but on no team of it; Root is a superuser, on no team either.
    """
    alice = person("alice", "Alice", "Fairweather")
    bob = person("bob", "Bob", "Castellano")
    carol = person("carol", "Carol", "Okafor")
    olive = person("olive", "Olive", "Watts")
    oscar = person("oscar", "Oscar", "Outsider")
    root = SuperUserFactory(username="root", first_name="Ruth", last_name="Root")
    root.email = "root@firm.example"
    root.save()
    ProfessionalQualificationFactory(user=bob)
    engagement = EngagementFactory(
        client_code="ACME",
        client_name="Acme General Insurance plc",
        name="FY2025 reserve review",
        lead_actuary=alice,
        reviewer=bob,
        due_date=timezone.localdate() + datetime.timedelta(days=30),
    )
    for user, role in ((alice, "lead"), (bob, "reviewer"), (carol, "actuary"), (olive, "observer")):
        EngagementMemberFactory(engagement=engagement, user=user, role=role)
    engagement = engagement_activate(engagement=engagement, actor=alice)
    return SimpleNamespace(
        engagement=engagement,
        alice=alice,
        bob=bob,
        carol=carol,
        olive=olive,
        oscar=oscar,
        root=root,
    )


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Return a function that calls a service and runs what its commit would run."""

    def committed(call, /, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return committed


def told(event: str) -> dict[str, Notification]:
    """Return the notifications of `event`, by recipient user name."""
    rows = Notification.objects.filter(event=event).select_related("recipient")
    return {row.recipient.username: row for row in rows}


def emails_to(user) -> list:
    """Return the emails sent to `user` (locmem outbox)."""
    return [message for message in mail.outbox if user.email in message.to]


def html_of(message) -> str:
    """Return the HTML alternative of an email."""
    [(content, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return content


class Quick(WorkflowImplementation):
    """One step that does nothing; `needs_approval` and `fails` vary per test."""

    label = "quick test workflow"
    steps = (Step("work", "Do the work"),)
    needs_approval = False
    fails = False

    def work(self):
        if type(self).fails:
            raise ValueError("the triangle has no 2019 diagonal")


@pytest.fixture
def quick(monkeypatch):
    from workflows import registry
    from workflows.choices import WorkflowType

    Quick.needs_approval = Quick.fails = False
    monkeypatch.setitem(registry.IMPLEMENTATIONS, WorkflowType.COHORT_GROUPING, Quick)
    return Quick
