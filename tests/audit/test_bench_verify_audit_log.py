"""Benchmark (not a timed test): how fast verify_audit_log checks a big chain on PostgreSQL.

Run with `make bench`, or:
DATABASE_URL=postgres://… pytest -s -m benchmark --run-benchmarks tests/audit
Set AUDIT_BENCH_ROWS to change the size (default 1,000,000).
"""

import io
import json
import os
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import JSON_FIELDS
from audit.choices import AuditAction, Severity
from audit.models import AuditChainHead, AuditLog

ROWS = int(os.environ.get("AUDIT_BENCH_ROWS", "1000000"))
BATCH = 50_000


def _entries(start: int, count: int, engagement_ids, now):
    """Build `count` realistic, unsaved entries (the chain is added by bulk_create)."""
    actions = (AuditAction.ARTEFACT_ACCESS, AuditAction.AGENT_INVOKE, AuditAction.LOGIN)
    for number in range(start, start + count):
        yield AuditLog(
            action=actions[number % 3],
            severity=Severity.INFO,
            resource_type="artefact",
            resource_id=uuid.uuid4(),
            description=f"Event {number}: triangle downloaded for review",
            metadata={"agent": "reserving", "tokens": number % 4096, "latency_ms": 12.5},
            new_value={"status": "approved"} if number % 10 == 0 else None,
            ip_address=f"10.0.0.{number % 250 + 1}",
            user_agent="Mozilla/5.0 (benchmark)",
            engagement_id=engagement_ids[number % len(engagement_ids)],
            created_at=now,
        )


def _append_with_copy(entries) -> None:
    """Append entries through the real chain code, writing them with COPY.

    The chain head is locked and every entry linked (numbered and hashed) by
    the same `AuditChainHead.link()` every append uses; only the INSERT is
    replaced by COPY, which the append-only triggers allow like any insert.
    """
    fields = AuditLog._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with transaction.atomic(), connection.cursor() as cursor:
        head = AuditChainHead.objects.locked()
        with cursor.cursor.copy(f"COPY audit_auditlog ({columns}) FROM STDIN") as copy:
            for entry in entries:
                head.link(entry)
                row = [getattr(entry, f.attname) for f in fields]
                copy.write_row(
                    [
                        json.dumps(value) if f.name in JSON_FIELDS and value is not None else value
                        for f, value in zip(fields, row, strict=True)
                    ]
                )
        head.save()


@pytest.mark.benchmark
@pytest.mark.postgres
@pytest.mark.slow
def test_verify_audit_log_rows_per_second(db, capsys):
    engagement_ids = [uuid.uuid4() for _ in range(50)]
    now = timezone.now()

    started = time.perf_counter()
    for start in range(0, ROWS, BATCH):
        _append_with_copy(_entries(start, min(BATCH, ROWS - start), engagement_ids, now))
    inserted = time.perf_counter() - started

    out = io.StringIO()
    started = time.perf_counter()
    call_command("verify_audit_log", "--no-progress", stdout=out)
    verified = time.perf_counter() - started

    assert f"Audit log intact: {ROWS} entries" in out.getvalue()
    with capsys.disabled():
        print(
            f"\nverify_audit_log: {ROWS:,} rows in {verified:.1f} s = "
            f"{ROWS / verified:,.0f} rows/s (insert: {ROWS / inserted:,.0f} rows/s)"
        )
