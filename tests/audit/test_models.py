"""The AuditLog is append-only at every level, and its entries form one hash chain."""

import datetime
import decimal
import itertools
import json
import re
import uuid

import pytest
from django.db import IntegrityError, connection, models, transaction

from audit.chain import GENESIS_HASH, HASHED_FIELDS, canonical_entry, compute_entry_hash
from audit.choices import AuditAction
from audit.exceptions import AuditLogImmutable
from audit.models import (
    AUDIT_LOG_CHANGE_REFUSED,
    AUDIT_LOG_CONFLICTS_REFUSED,
    AUDIT_LOG_DELETE_REFUSED,
    AUDIT_LOG_UPDATE_REFUSED,
    AuditChainHead,
    AuditLog,
)
from audit.triggers import APPEND_ONLY_DB_ERROR, append_only_trigger_problems
from tests.factories import AuditLogFactory

pytestmark = pytest.mark.django_db


def _escaped(message: str) -> str:
    """Return a pattern for the fixed start of a message constant."""
    return re.escape(message.split("{")[0])


def _stored(entry: AuditLog) -> dict:
    """Return the row as the database holds it now."""
    return AuditLog.objects.filter(pk=entry.pk).values().get()


@pytest.fixture
def entry():
    AuditLogFactory(description="first")
    return AuditLogFactory(description="The original description", metadata={"k": "v"})


class TestOrmRefusals:
    def test_save_of_a_stored_entry_is_refused(self, entry):
        before = _stored(entry)
        entry.description = "rewritten"
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_CHANGE_REFUSED)):
            entry.save()
        assert _stored(entry) == before

    def test_save_of_a_loaded_entry_with_update_fields_is_refused(self, entry):
        loaded = AuditLog.objects.get(pk=entry.pk)
        loaded.description = "rewritten"
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_CHANGE_REFUSED)):
            loaded.save(update_fields=["description"])
        assert _stored(entry)["description"] == "The original description"

    def test_delete_is_refused(self, entry):
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_DELETE_REFUSED)):
            entry.delete()
        assert AuditLog.objects.filter(pk=entry.pk).exists()

    def test_plain_model_save_is_refused_by_the_queryset(self, entry):
        """Bypassing AuditLog.save() still ends in the refusing queryset (base manager)."""
        loaded = AuditLog.objects.get(pk=entry.pk)
        loaded.description = "rewritten"
        with (
            pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_UPDATE_REFUSED)),
            transaction.atomic(),
        ):
            models.Model.save(loaded)
        assert _stored(entry)["description"] == "The original description"


class TestQuerySetRefusals:
    def test_update_is_refused(self, entry):
        before = _stored(entry)
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_UPDATE_REFUSED)):
            AuditLog.objects.filter(pk=entry.pk).update(description="rewritten")
        assert _stored(entry) == before

    def test_delete_is_refused(self, entry):
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_DELETE_REFUSED)):
            AuditLog.objects.all().delete()
        assert AuditLog.objects.count() == 2

    def test_bulk_update_is_refused(self, entry):
        entry = AuditLog.objects.get(pk=entry.pk)
        entry.description = "rewritten"
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_UPDATE_REFUSED)):
            AuditLog.objects.bulk_update([entry], ["description"])
        assert _stored(entry)["description"] == "The original description"

    def test_update_or_create_of_an_existing_entry_is_refused(self, entry):
        with pytest.raises(AuditLogImmutable, match=_escaped(AUDIT_LOG_CHANGE_REFUSED)):
            AuditLog.objects.update_or_create(pk=entry.pk, defaults={"description": "x"})
        assert _stored(entry)["description"] == "The original description"

    def test_bulk_create_with_conflict_handling_is_refused(self):
        with pytest.raises(AuditLogImmutable, match=re.escape(AUDIT_LOG_CONFLICTS_REFUSED)):
            AuditLog.objects.bulk_create(
                [AuditLog(action=AuditAction.LOGIN, resource_type="user")], ignore_conflicts=True
            )
        assert not AuditLog.objects.exists()


class TestDatabaseRefusals:
    """Raw SQL bypasses the ORM; the triggers refuse it on both databases."""

    @pytest.mark.parametrize(
        "sql",
        [
            "UPDATE audit_auditlog SET description = 'rewritten' WHERE sequence = %s",
            "UPDATE audit_auditlog SET sequence = sequence + 100 WHERE sequence = %s",
            "DELETE FROM audit_auditlog WHERE sequence = %s",
        ],
        ids=["update", "renumber", "delete"],
    )
    def test_raw_sql_is_refused(self, entry, sql):
        before = _stored(entry)
        with (
            pytest.raises(IntegrityError, match=APPEND_ONLY_DB_ERROR),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.sequence])
        assert _stored(entry) == before

    def test_deleting_every_row_is_refused(self, entry):
        with (
            pytest.raises(IntegrityError, match=APPEND_ONLY_DB_ERROR),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM audit_auditlog")
        assert AuditLog.objects.count() == 2

    @pytest.mark.postgres
    def test_truncate_is_refused(self, entry):
        with (
            pytest.raises(IntegrityError, match=APPEND_ONLY_DB_ERROR),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            # Fire the FK checks queued by the fixture's inserts first: PostgreSQL
            # refuses to truncate a table with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE audit_auditlog")
        assert AuditLog.objects.count() == 2

    def test_the_triggers_are_installed_by_the_migrations(self):
        assert append_only_trigger_problems(connection) == []


class TestHashChain:
    def test_entries_are_numbered_without_gaps_and_linked(self):
        entries = [AuditLogFactory() for _ in range(4)]
        assert [e.sequence for e in entries] == [1, 2, 3, 4]
        assert entries[0].previous_hash == GENESIS_HASH
        for before, after in itertools.pairwise(entries):
            assert after.previous_hash == before.entry_hash
        head = AuditChainHead.objects.get()
        assert (head.sequence, head.entry_hash) == (4, entries[-1].entry_hash)

    def test_the_stored_row_hashes_to_its_entry_hash(self):
        """The hash is computed before the insert; the row read back must match it."""
        entry = AuditLogFactory(
            metadata={"tokens": 1200, "ratio": 0.1, "whole": 2.0, "big": 1e20, "rate": "x"},
            new_value={"amount": decimal.Decimal("1234.50"), "on": datetime.date(2025, 12, 31)},
            old_value=None,
            ip_address="2001:0db8:0000::0001",
            resource_id=uuid.uuid4(),
            description="Ünïcode — and quotes \" '",
        )
        stored = _stored(entry)
        assert compute_entry_hash(stored) == stored["entry_hash"] == entry.entry_hash
        assert stored["new_value"] == {"amount": "1234.50", "on": "2025-12-31"}
        assert stored["metadata"]["whole"] == 2
        assert AuditLog.objects.get(pk=entry.pk).compute_hash() == entry.entry_hash

    def test_the_canonical_form_is_sorted_compact_and_utc(self):
        entry = AuditLogFactory(
            created_at=datetime.datetime(
                2025, 6, 1, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            metadata={"b": 1, "a": [1, 2]},
        )
        text = canonical_entry(entry.hashed_values()).decode()
        assert '"created_at":"2025-06-01T12:30:00.000000Z"' in text
        assert '"metadata":{"a":[1,2],"b":1}' in text
        assert " " not in text.replace("Engagement updated", "")
        keys = [part.split('":')[0].strip('{"') for part in text.split(',"')]
        assert keys[0] == "action"

    def test_every_stored_field_is_covered_by_the_hash(self):
        """A field added to AuditLog must be added to the canonical form too."""
        stored = {f.attname for f in AuditLog._meta.concrete_fields}
        assert stored - {"entry_hash"} == set(HASHED_FIELDS)
        entry = AuditLogFactory()
        assert set(json.loads(canonical_entry(entry.hashed_values()))) == set(HASHED_FIELDS)

    def test_changing_any_field_changes_the_hash(self):
        entry = AuditLogFactory()
        values = entry.hashed_values()
        for name, other in [("description", "other"), ("sequence", 99), ("user_id", 7)]:
            assert compute_entry_hash({**values, name: other}) != entry.entry_hash

    def test_a_fork_is_impossible_at_the_database(self):
        """Two entries claiming the same place in the chain violate the unique constraints."""
        first = AuditLogFactory()
        clash = AuditLog(action=AuditAction.LOGIN, resource_type="user")
        clash.sequence, clash.previous_hash = first.sequence, first.previous_hash
        clash.entry_hash = clash.compute_hash()
        with pytest.raises(IntegrityError), transaction.atomic():
            models.QuerySet(AuditLog).bulk_create([clash])
        assert AuditLog.objects.count() == 1

    def test_bulk_create_appends_in_order(self):
        AuditLogFactory()
        created = AuditLog.objects.bulk_create(
            AuditLog(action=AuditAction.DATA_EXPORT, resource_type="report", description=str(i))
            for i in range(3)
        )
        assert [e.sequence for e in created] == [2, 3, 4]
        assert created[0].previous_hash == AuditLog.objects.get(sequence=1).entry_hash
        assert AuditChainHead.objects.get().sequence == 4
        for entry in AuditLog.objects.all():
            assert entry.compute_hash() == entry.entry_hash

    def test_a_missing_head_is_rebuilt_from_the_last_entry(self):
        last = AuditLogFactory()
        AuditChainHead.objects.all().delete()
        following = AuditLogFactory()
        assert following.sequence == last.sequence + 1
        assert following.previous_hash == last.entry_hash

    def test_a_rolled_back_append_leaves_no_gap(self):
        AuditLogFactory()
        with pytest.raises(RuntimeError), transaction.atomic():
            AuditLogFactory()
            raise RuntimeError("the surrounding service failed")
        assert AuditLogFactory().sequence == 2
