"""The verification's fast reading hashes exactly the canonical form of every stored entry.

On PostgreSQL `verify_audit_log` reads the chain as text, with the database writing the
canonical text of UUIDs, the user id and the timestamp, and JSON values read by orjson
(`audit.chain.canonical_text_row`); elsewhere it reads entries the ORM's way. Entries
with awkward content are written through the real write path and read back both ways:
the bytes must be `canonical_entry`'s, and a row changed afterwards must still be named,
with the message the ORM's reading gives.
"""

import datetime
import hashlib
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connection

from audit.chain import HASHED_FIELDS, canonical_entry, compute_entry_hash
from audit.models import AuditLog
from audit.triggers import AUDIT_LOG_TABLE
from audit.verification import ENTRY_HASH_MISMATCH, _reader
from tests.audit.test_commands import as_database_superuser
from tests.factories import AuditLogFactory, UserFactory

pytestmark = pytest.mark.django_db

UTC = datetime.UTC
# Control characters, quotes, non-ASCII, a line separator (PostgreSQL text holds no NUL).
AWKWARD_TEXT = 'naïve – 日本 🙂 "quoted" \\ back\x01\x07\x1f\t\r\n\u2028 end'
AWKWARD_JSON = {
    "nested": {"z": [0.1, 1e-07, -0.0001, 2.5e-300, 0.30000000000000004, 1.5], "a": True},
    "big": 2**70,
    "negative_big": -(2**64),
    "u64": 2**64 - 1,
    "integral_float": 1e22,
    "empty_dict": {},
    "empty_list": [],
    "none": None,
    "ünï": "cödé\u2028\x02",
    "": "empty key",
}


def awkward_entries(user):
    """Write entries with awkward content through the model's append (the chain links)."""
    awkward = [
        {
            "description": AWKWARD_TEXT,
            "metadata": AWKWARD_JSON,
            "old_value": {},
            "new_value": [],
            "ip_address": "::ffff:1.2.3.4",
            "created_at": datetime.datetime(2026, 3, 1, 12, 0, 0, 0, tzinfo=UTC),
        },
        {
            "description": "",
            "user": user,
            "resource_id": uuid.uuid4(),
            "session_id": uuid.uuid4(),
            "engagement_id": uuid.uuid4(),
            "old_value": {"list": [1, [2, [3, {"deep": "é"}]]], "n": -1},
            "new_value": "just a string",
            "metadata": [3, 2, 1, 0.5],
            "ip_address": "2001:DB8:0:0:0:0:0:A",
            "user_agent": AWKWARD_TEXT,
            "trace_id": "trace-ü",
            "created_at": datetime.datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC),
        },
        {
            "old_value": None,
            "new_value": None,
            "metadata": {},
            "ip_address": "10.0.0.255",
            "trace_id": "",
            "created_at": datetime.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        },
        {
            "metadata": 12,
            "new_value": 1.25,
            "ip_address": "::1",
            "created_at": datetime.datetime(
                2026, 7, 1, 14, 0, 0, 500, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
        },
    ]
    return [AuditLogFactory(**fields) for fields in awkward]


@pytest.fixture
def entries():
    return awkward_entries(UserFactory())


def stored(sequence: int) -> dict:
    return AuditLog.objects.values(*HASHED_FIELDS).get(sequence=sequence)


def verify() -> str:
    out = io.StringIO()
    call_command("verify_audit_log", "--no-progress", "--chunk-size", "2", stdout=out)
    return out.getvalue()


def test_the_fast_reading_writes_the_canonical_bytes_of_every_stored_entry(entries):
    rows, canonical, exact = _reader(DEFAULT_DB_ALIAS, 1, len(entries), 2)
    # The text reading is the one on PostgreSQL (exact: the ORM's, elsewhere).
    assert exact is (connection.vendor != "postgresql")
    rows = list(rows)
    assert [row[0] for row in rows] == [entry.sequence for entry in entries]
    for row, entry in zip(rows, entries, strict=True):
        assert canonical(row) == canonical_entry(stored(entry.sequence)), entry.sequence
        assert hashlib.sha256(canonical(row)).hexdigest() == row[2] == entry.entry_hash
    assert f"Audit log intact: {len(entries)} entries" in verify()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("metadata", '{"nested": {"z": [0.1, 1e-07, 2]}, "big": 1180591620717411303424}'),
        ("metadata", "null"),
        ("old_value", "{}"),
        ("ip_address", "::ffff:1.2.3.5"),
        ("description", "naïve – 日本 🙂 changed"),
    ],
)
def test_a_row_changed_by_raw_sql_is_named_with_the_orms_message(entries, column, value):
    changed = entries[1]
    with as_database_superuser() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_LOG_TABLE} SET {column} = %s WHERE sequence = %s",
            [value, changed.sequence],
        )
    recomputed = compute_entry_hash(stored(changed.sequence))
    assert recomputed != changed.entry_hash
    problem = ENTRY_HASH_MISMATCH.format(
        sequence=changed.sequence, stored=changed.entry_hash, recomputed=recomputed
    )
    with pytest.raises(CommandError) as error:
        verify()
    assert str(error.value) == (f"Audit log chain BROKEN at sequence {changed.sequence}: {problem}")


def test_a_changed_timestamp_is_named(entries):
    with as_database_superuser() as cursor:
        cursor.execute(
            f"UPDATE {AUDIT_LOG_TABLE} SET created_at = %s WHERE sequence = %s",
            [datetime.datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC), entries[0].sequence],
        )
    with pytest.raises(CommandError, match="BROKEN at sequence 1: entry hash mismatch"):
        verify()
