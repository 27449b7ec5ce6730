"""Shared fixtures: users in their roles, API clients, and a temporary MEDIA_ROOT."""

import pytest
from django.db import connection

from tests.factories import (
    EngagementFactory,
    EngagementMemberFactory,
    ProfessionalQualificationFactory,
    SuperUserFactory,
    UserFactory,
)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--run-benchmarks", action="store_true", help="also run benchmarks (print figures)"
    )


def pytest_collection_modifyitems(config, items):
    run_slow = config.getoption("--run-slow")
    run_bench = config.getoption("--run-benchmarks")
    for item in items:
        if "benchmark" in item.keywords and not run_bench:
            item.add_marker(pytest.mark.skip(reason="benchmark: run with `make bench`"))
        elif "slow" in item.keywords and not (run_slow or run_bench):
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow (CI does)"))


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Skip tests marked `postgres` when the suite runs on another database."""
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run `make test-postgres`)")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Store files of every test in its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def superuser(db):
    return SuperUserFactory()


@pytest.fixture
def actuary(db):
    """An actuary (staff, no professional qualification)."""
    return UserFactory(username="actuary", is_staff=True)


@pytest.fixture
def reviewer(db):
    """A qualified reviewer (FIA, valid today)."""
    reviewer = UserFactory(username="reviewer", is_staff=True)
    ProfessionalQualificationFactory(user=reviewer)
    return reviewer


@pytest.fixture
def engagement(db, actuary, reviewer):
    """A draft engagement led by `actuary`, reviewed by `reviewer`, both on its team."""
    engagement = EngagementFactory(lead_actuary=actuary, reviewer=reviewer, created_by=actuary)
    EngagementMemberFactory(engagement=engagement, user=actuary, role="lead")
    EngagementMemberFactory(engagement=engagement, user=reviewer, role="reviewer")
    return engagement
