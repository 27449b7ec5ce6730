"""Committed transactions: parallel writers keep one chain, and the test reset still works.

These tests commit for real (`transactional_db`), so pytest-django empties the
database after each one with `flush`, which the append-only triggers would
refuse if the test settings did not let the reset suspend them.
"""

import io
import threading

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from audit.choices import AuditAction
from audit.models import AuditChainHead, AuditLog
from audit.services import audit_record
from audit.triggers import (
    APPEND_ONLY_DB_ERROR,
    append_only_trigger_problems,
    suspended_append_only_triggers,
)
from tests.factories import AuditLogFactory

WRITERS = 8
EVENTS_PER_WRITER = 25


def _record_in_threads(write_one) -> list[Exception]:
    """Run `write_one(writer, index)` from WRITERS threads at once; return their errors."""
    barrier = threading.Barrier(WRITERS)
    errors = []

    def writer(number):
        try:
            barrier.wait()
            for index in range(EVENTS_PER_WRITER):
                write_one(number, index)
        except Exception as error:  # reported by the test
            errors.append(error)
        finally:
            # Each thread has its own connection; close it or the test DB stays busy.
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.slow
def test_parallel_writers_build_one_unbroken_chain(transactional_db):
    def write_one(writer, index):
        audit_record(
            action=AuditAction.AGENT_INVOKE,
            resource_type="agent",
            description=f"writer {writer} event {index}",
            metadata={"writer": writer, "index": index},
        )

    assert _record_in_threads(write_one) == []

    total = WRITERS * EVENTS_PER_WRITER
    sequences = list(AuditLog.objects.order_by("sequence").values_list("sequence", flat=True))
    assert sequences == list(range(1, total + 1))
    out = io.StringIO()
    call_command("verify_audit_log", "--no-progress", stdout=out)
    assert f"Audit log intact: {total} entries" in out.getvalue()


@pytest.mark.postgres
@pytest.mark.slow
def test_rolled_back_writers_leave_no_gap(transactional_db):
    """Half the writers' transactions fail after appending: their entries vanish whole."""

    def write_one(writer, index):
        try:
            with transaction.atomic():
                audit_record(
                    action=AuditAction.DATA_EXPORT,
                    resource_type="report",
                    description=f"writer {writer} export {index}",
                )
                if writer % 2:
                    raise RuntimeError("the export failed after it was audited")
        except RuntimeError:
            pass

    assert _record_in_threads(write_one) == []

    kept = (WRITERS // 2) * EVENTS_PER_WRITER
    assert AuditLog.objects.count() == kept
    assert AuditChainHead.objects.get().sequence == kept
    call_command("verify_audit_log", "--no-progress", stdout=io.StringIO())


def test_a_committed_log_is_written_for_the_next_test_to_find_empty(transactional_db):
    AuditLogFactory.create_batch(3)
    assert AuditLog.objects.count() == 3


def test_the_reset_emptied_the_log_and_kept_the_triggers(transactional_db):
    """Runs after the test above: its flush went through, and the protection is intact."""
    assert not AuditLog.objects.exists()
    assert not AuditChainHead.objects.exists()
    assert append_only_trigger_problems(connection) == []
    entry = AuditLogFactory()
    assert entry.sequence == 1
    with pytest.raises(IntegrityError, match=APPEND_ONLY_DB_ERROR), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditlog")
    assert AuditLog.objects.count() == 1


def test_the_flush_command_works_in_tests_and_restores_the_triggers(transactional_db):
    AuditLogFactory.create_batch(2)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditLog.objects.exists()
    assert append_only_trigger_problems(connection) == []


def test_a_failed_suspension_rolls_the_triggers_back(transactional_db):
    AuditLogFactory()
    with pytest.raises(RuntimeError), suspended_append_only_triggers(connection):
        raise RuntimeError("the reset failed half-way")
    assert append_only_trigger_problems(connection) == []
    with pytest.raises(IntegrityError, match=APPEND_ONLY_DB_ERROR), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditlog SET description = 'x'")
