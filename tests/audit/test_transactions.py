"""Audited transactions: events are appended to the chain last, savepoints respected, retries.

See `records.transactions`. These run on any database; the PostgreSQL deadlock and
lock-order tests are in `test_concurrent_audited_writes.py`.
"""

import logging

import pytest
from django.db import OperationalError, transaction

from audit.choices import AuditAction
from audit.models import AuditChainHead, AuditLog
from audit.services import audit_record
from records.transactions import RETRIED, audited_transaction

pytestmark = pytest.mark.django_db


def record(description: str):
    return audit_record(
        action=AuditAction.DATA_EXPORT, resource_type="report", description=description
    )


def descriptions() -> list[str]:
    return list(AuditLog.objects.order_by("sequence").values_list("description", flat=True))


def head_sequence() -> int:
    head = AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID).first()
    return head.sequence if head else 0


def test_events_are_appended_when_the_outermost_audited_transaction_ends():
    record("before")
    seen_inside = []
    with audited_transaction():
        record("first")
        with audited_transaction():
            record("second")
        seen_inside.append((descriptions(), head_sequence()))
        record("third")
    assert seen_inside == [(["before"], 1)]
    assert descriptions() == ["before", "first", "second", "third"]
    assert head_sequence() == 4


def test_an_event_outside_any_audited_transaction_is_appended_at_once():
    entry = record("alone")
    assert (entry.sequence, descriptions()) == (1, ["alone"])


def test_an_event_in_a_rolled_back_savepoint_is_dropped_with_it():
    with audited_transaction():
        record("kept before")
        try:
            with transaction.atomic():
                record("rolled back")
                raise RuntimeError("the nested step failed")
        except RuntimeError:
            pass
        try:
            with audited_transaction():
                record("rolled back too")
                raise RuntimeError("the nested service failed")
        except RuntimeError:
            pass
        record("kept after")
    assert descriptions() == ["kept before", "kept after"]
    assert list(AuditLog.objects.order_by("sequence").values_list("sequence", flat=True)) == [1, 2]


def test_a_failed_audited_transaction_appends_nothing():
    with pytest.raises(RuntimeError), audited_transaction():
        record("never happened")
        raise RuntimeError("the service failed after recording")
    assert descriptions() == []
    record("next")
    assert AuditLog.objects.get().sequence == 1


def test_the_markers_leave_the_commit_hooks_as_the_caller_made_them(
    django_capture_on_commit_callbacks,
):
    def hook():
        return None

    with django_capture_on_commit_callbacks() as callbacks, audited_transaction():
        record("an event")
        transaction.on_commit(hook)
    assert callbacks == [hook]


class _DatabaseCause(Exception):
    """What psycopg attaches to Django's OperationalError: the SQLSTATE."""

    def __init__(self, sqlstate):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _aborted(sqlstate="40P01"):
    error = OperationalError("deadlock detected")
    error.__cause__ = _DatabaseCause(sqlstate)
    return error


class TestRetry:
    """A transaction the database aborted is run once more, only where that is safe."""

    def flaky(self, failures: list):
        calls = []

        @audited_transaction
        def operation():
            calls.append(len(calls))
            record(f"attempt {len(calls)}")
            if failures:
                raise failures.pop(0)
            return "done"

        return operation, calls

    def test_a_deadlock_is_retried_once_and_only_the_second_attempt_is_recorded(
        self, caplog, transactional_db
    ):
        operation, calls = self.flaky([_aborted("40P01")])
        with caplog.at_level(logging.WARNING, logger="records.transactions"):
            assert operation() == "done"
        assert calls == [0, 1]
        assert descriptions() == ["attempt 2"]
        assert [r.getMessage() for r in caplog.records] == [
            RETRIED % ("TestRetry.flaky.<locals>.operation", "deadlock detected")
        ]

    def test_a_serialization_failure_is_retried_too(self, transactional_db):
        operation, calls = self.flaky([_aborted("40001")])
        assert operation() == "done"
        assert len(calls) == 2

    def test_a_second_deadlock_is_not_retried_again(self, transactional_db):
        operation, calls = self.flaky([_aborted(), _aborted()])
        with pytest.raises(OperationalError, match="deadlock detected"):
            operation()
        assert len(calls) == 2
        assert descriptions() == []

    def test_other_database_errors_are_not_retried(self, transactional_db):
        operation, calls = self.flaky([_aborted("08006")])
        with pytest.raises(OperationalError):
            operation()
        assert len(calls) == 1

    def test_inside_someone_elses_transaction_nothing_is_retried(self):
        """Only the code that opened the transaction can run it again."""
        operation, calls = self.flaky([_aborted()])
        with pytest.raises(OperationalError):
            operation()
        assert len(calls) == 1
