"""verify_audit_log: walks the chain and names the first broken link."""

import io
import re
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.chain import GENESIS_HASH, compute_entry_hash
from audit.management.commands import verify_audit_log as command
from audit.models import AuditChainHead, AuditLog
from audit.triggers import AUDIT_LOG_TABLE
from tests.factories import AuditLogFactory

pytestmark = pytest.mark.django_db


def verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_audit_log", "--no-progress", *args, stdout=out)
    return out.getvalue()


def _start(message: str) -> str:
    return re.escape(message.split("{")[0])


@contextmanager
def as_database_superuser():
    """Switch the append-only triggers off the way someone with DDL rights would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # ALTER TABLE refuses to run while the inserts' FK checks are queued.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} DISABLE TRIGGER USER")
            yield cursor
            cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} ENABLE TRIGGER USER")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AUDIT_LOG_TABLE],
            )
            triggers = cursor.fetchall()
            for name, _sql in triggers:
                cursor.execute(f"DROP TRIGGER {name}")
            yield cursor
            for _name, sql in triggers:
                cursor.execute(sql)


@pytest.fixture
def chain():
    return [AuditLogFactory(description=f"event {i}") for i in range(1, 6)]


def test_an_intact_chain_prints_the_count_and_head_hash(chain):
    output = verify()
    assert (
        f"Audit log intact: 5 entries, head sequence 5, head hash {chain[-1].entry_hash}" in output
    )


def test_an_empty_log_is_intact():
    assert f"Audit log is empty: nothing to verify (genesis hash {GENESIS_HASH})" in verify()


def test_small_pages_walk_the_whole_chain(chain):
    assert "5 entries" in verify("--chunk-size", "2")


def test_a_changed_row_is_caught_and_named(chain):
    with as_database_superuser() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_LOG_TABLE} SET description = 'nothing happened' WHERE sequence = 3"
        )
    with pytest.raises(CommandError, match="BROKEN at sequence 3: entry hash mismatch") as error:
        verify()
    assert f"stored {chain[2].entry_hash}" in str(error.value)


def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link(chain):
    """A careful forger rehashes the row; the next row still points at the old hash."""
    forged = AuditLog.objects.filter(sequence=3).values().get()
    forged["description"] = "nothing happened"
    forged_hash = compute_entry_hash(forged)
    with as_database_superuser() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_LOG_TABLE} SET description = %s, entry_hash = %s WHERE sequence = 3",
            ["nothing happened", forged_hash],
        )
    with pytest.raises(CommandError, match=_start(command.PREVIOUS_HASH_MISMATCH)) as error:
        verify()
    assert "BROKEN at sequence 4" in str(error.value)


def test_a_removed_row_leaves_a_gap(chain):
    with as_database_superuser() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_LOG_TABLE} WHERE sequence = 2")
    with pytest.raises(
        CommandError, match="BROKEN at sequence 3: sequence gap: expected sequence 2, found 3"
    ):
        verify()


def test_rows_cut_off_the_end_disagree_with_the_chain_head(chain):
    with as_database_superuser() as cursor:
        cursor.execute(f"DELETE FROM {AUDIT_LOG_TABLE} WHERE sequence >= 4")
    with pytest.raises(CommandError, match=_start(command.HEAD_MISMATCH).split(":")[0]) as error:
        verify()
    assert "records sequence 5" in str(error.value)
    assert "last entry is sequence 3" in str(error.value)


def test_an_entry_slipped_in_past_the_head_is_caught(chain):
    """A row inserted at the end without moving the head is not "appended meanwhile"."""
    AuditChainHead.objects.update(sequence=4, entry_hash=chain[3].entry_hash)
    with pytest.raises(CommandError, match=_start(command.BEYOND_HEAD)) as error:
        verify()
    assert "head records sequence 4, but the log holds sequence 5" in str(error.value)


def test_entries_appended_while_checking_are_left_for_next_time(chain, monkeypatch):
    """The check covers the chain up to the head it read first; later links are not gaps."""
    walk = command.Command._walk

    def walk_while_someone_appends(self, *args):
        result = walk(self, *args)
        AuditLogFactory.create_batch(2, description="appended meanwhile")
        return result

    monkeypatch.setattr(command.Command, "_walk", walk_while_someone_appends)
    output = verify()
    assert "Audit log intact: 5 entries, head sequence 5" in output
    assert command.APPENDED_DURING_CHECK.format(count=2, sequence=5) in output
    monkeypatch.undo()
    assert "Audit log intact: 7 entries, head sequence 7" in verify()


def test_a_missing_chain_head_is_reported(chain):
    AuditChainHead.objects.all().delete()
    with pytest.raises(CommandError, match="chain head missing: 5 entries"):
        verify()


class TestAnchors:
    """A head hash recorded elsewhere catches even a fully rewritten chain."""

    def test_a_matching_anchor_passes(self, chain):
        assert "intact" in verify("--anchor", f"3:{chain[2].entry_hash}")

    def test_a_rewritten_chain_is_caught_by_its_anchor(self, chain):
        anchored = chain[2].entry_hash
        rows = list(AuditLog.objects.order_by("sequence").values())
        previous = GENESIS_HASH
        with as_database_superuser() as cursor:
            # Rewrite entry 3 and rehash everything after it, head included.
            for row in rows:
                if row["sequence"] == 3:
                    row["description"] = "nothing happened"
                row["previous_hash"] = previous
                row["entry_hash"] = compute_entry_hash(row)
                previous = row["entry_hash"]
            for row in rows:
                cursor.execute(
                    f"UPDATE {AUDIT_LOG_TABLE} SET description = %s, previous_hash = %s, "
                    "entry_hash = %s WHERE sequence = %s",
                    [row["description"], row["previous_hash"], row["entry_hash"], row["sequence"]],
                )
        AuditChainHead.objects.update(entry_hash=previous)
        assert "intact" in verify()
        with pytest.raises(CommandError, match="BROKEN at sequence 3: anchor mismatch"):
            verify("--anchor", f"3:{anchored}")

    def test_an_anchor_beyond_the_chain_is_reported(self, chain):
        with pytest.raises(CommandError, match="sequence 9 is not in the audit log"):
            verify("--anchor", f"9:{'a' * 64}")

    def test_a_malformed_anchor_is_refused(self, chain):
        with pytest.raises(CommandError, match=_start(command.BAD_ANCHOR)):
            verify("--anchor", "three:abc")


def test_missing_triggers_are_reported_even_when_the_chain_is_intact(chain):
    expected = "is disabled" if connection.vendor == "postgresql" else "is missing"
    with (
        as_database_superuser(),
        pytest.raises(CommandError, match=f"protection incomplete: trigger .* {expected}"),
    ):
        verify()


def test_no_progress_bar_when_not_on_a_terminal(chain, capsys):
    call_command("verify_audit_log", stdout=io.StringIO())
    assert capsys.readouterr().err == ""
