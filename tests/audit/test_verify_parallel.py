"""The fast canonical encoder and the parallel walk give exactly the serial answers.

`canonical_entry` writes the canonical JSON key by key; the reference below is the
definition it must match byte for byte (the dict of HASHED_FIELDS through one sorted,
compact, ASCII-only encoder). The parallel `verify_audit_log` (stretches in worker
processes, seams joined) must give the serial walk's answer: the same count and head
when intact, the same first break and message when not.
"""

import datetime
import io
import itertools
import json
import random
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.chain import HASHED_FIELDS, canonical_entry
from audit.models import AuditLog
from audit.triggers import AUDIT_LOG_TABLE
from audit.verification import stretches

REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
)


def reference_canonical_entry(values) -> bytes:
    """The canonical form as first defined: a dict of every hashed field, encoded once."""
    user_id, ip = values["user_id"], values["ip_address"]

    def as_uuid(value):
        return None if value is None else str(uuid.UUID(str(value)))

    payload = {
        "id": as_uuid(values["id"]),
        "sequence": int(values["sequence"]),
        "previous_hash": values["previous_hash"],
        "created_at": values["created_at"]
        .astimezone(datetime.UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "user_id": user_id if user_id is None or isinstance(user_id, int) else str(user_id),
        "action": str(values["action"]),
        "severity": str(values["severity"]),
        "resource_type": str(values["resource_type"]),
        "resource_id": as_uuid(values["resource_id"]),
        "description": str(values["description"]),
        "old_value": values["old_value"],
        "new_value": values["new_value"],
        "metadata": values["metadata"],
        "ip_address": None if ip in (None, "") else str(ip),
        "user_agent": str(values["user_agent"]),
        "session_id": as_uuid(values["session_id"]),
        "engagement_id": as_uuid(values["engagement_id"]),
        "trace_id": values["trace_id"],
    }
    assert set(payload) == set(HASHED_FIELDS)
    return REFERENCE.encode(payload).encode("ascii")


TEXTS = ("", "plain", 'quote " and \\ backslash', "tab\tnew\nline", "é ü 日本 🙂", "\x00\x1f")
JSON_VALUES = (
    None,
    {},
    {"b": 1, "a": [1, 2.5, None, True, "x"]},
    {"nested": {"z": {"y": -0.0001, "x": 1e-7}}, "ünï": "cödé"},
    [3, 2, 1],
    "just a string",
    12,
    1.25,
)


def random_entry(rng: random.Random) -> dict:
    return {
        "id": uuid.UUID(int=rng.getrandbits(128)),
        "sequence": rng.randint(1, 10**12),
        "previous_hash": rng.choice((None, "0" * 64, f"{rng.getrandbits(256):064x}")),
        "created_at": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        + datetime.timedelta(microseconds=rng.getrandbits(40)),
        "user_id": rng.choice((None, rng.randint(1, 10**6), "42")),
        "action": rng.choice(("login", "workflow_fail")),
        "severity": rng.choice(("info", "critical")),
        "resource_type": rng.choice(TEXTS),
        "resource_id": rng.choice((None, uuid.UUID(int=rng.getrandbits(128)))),
        "description": rng.choice(TEXTS) * rng.randint(0, 3),
        "old_value": rng.choice(JSON_VALUES),
        "new_value": rng.choice(JSON_VALUES),
        "metadata": rng.choice(JSON_VALUES),
        "ip_address": rng.choice((None, "10.0.0.1", "2001:db8::1")),
        "user_agent": rng.choice(TEXTS),
        "session_id": rng.choice((None, str(uuid.UUID(int=rng.getrandbits(128))))),
        "engagement_id": rng.choice((None, uuid.UUID(int=rng.getrandbits(128)))),
        "trace_id": rng.choice((None, "", "trace-1", "ü")),
    }


def test_the_fast_encoder_writes_the_reference_bytes():
    rng = random.Random(18)
    for _ in range(5000):
        entry = random_entry(rng)
        assert canonical_entry(entry) == reference_canonical_entry(entry), entry


@pytest.mark.django_db
def test_the_fast_encoder_matches_on_stored_entries():
    call_command("seed_volume", engagements=5, runs=20, audit=200, users=3, force=True)
    for entry in AuditLog.objects.values(*HASHED_FIELDS):
        assert canonical_entry(entry) == reference_canonical_entry(entry)


def test_stretches_cover_the_chain_once():
    for bound in (0, 1, 19_999, 20_000, 20_001, 1_000_000):
        plan = stretches(bound, 2)
        covered = [n for first, last in plan if last is not None for n in (first, last)]
        if bound < 1:
            assert plan == [(1, None)]
            continue
        assert plan[0][0] == 1 and plan[-1][1] == bound
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(plan)), covered


# --- parallel against serial, on PostgreSQL (committed rows: worker processes read them) --

ROWS = 45_000  # three stretches of 20,000 (and a bit)


def verify(*args) -> str:
    out = io.StringIO()
    try:
        call_command("verify_audit_log", "--no-progress", *args, stdout=out)
    except CommandError as error:
        return f"ERROR {error}"
    return out.getvalue()


def tamper(sql: str, params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} ENABLE TRIGGER USER")


@pytest.mark.postgres
@pytest.mark.slow
def test_parallel_and_serial_verification_agree(transactional_db):
    call_command("seed_volume", engagements=20, runs=100, audit=ROWS, users=5, force=True)
    head = AuditLog.objects.order_by("-sequence").values_list("entry_hash", flat=True)[0]
    seam = AuditLog.objects.values_list("entry_hash", flat=True).get(sequence=20_000)

    intact = verify("--workers", "1")
    assert intact.startswith(
        f"Audit log intact: {ROWS} entries, head sequence {ROWS}, head hash {head}"
    )
    assert verify("--workers", "2") == intact
    assert verify("--workers", "3", "--anchor", f"20000:{seam}") == intact

    cases = (
        # a changed row in the middle of the second stretch
        ("UPDATE audit_auditlog SET description = 'x' WHERE sequence = %s", [30_000]),
        # the first row of a stretch changed: the seam's link breaks first
        ("UPDATE audit_auditlog SET previous_hash = repeat('a', 64) WHERE sequence = %s", [20_001]),
        # rows removed across a seam: a gap found where the next stretch starts
        ("DELETE FROM audit_auditlog WHERE sequence BETWEEN %s AND 20000", [19_990]),
    )
    for sql, params in cases:
        tamper(sql, params)
        serial = verify("--workers", "1")
        assert serial.startswith("ERROR Audit log chain BROKEN at sequence "), serial
        assert verify("--workers", "2") == serial
        assert verify("--workers", "4") == serial
