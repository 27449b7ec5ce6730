"""Benchmark (not a timed test): audited writes per second at 1, 8 and 32 concurrent writers.

Each writer edits one of a few shared engagements through `engagement_update` (lock,
save with history, audit event, all in one audited transaction) as fast as it can.
Prints writes/s, p50/p95 latency, deadlocks and retries per level; it asserts only
that nothing failed and the chain verifies, never a time.

Run with `make bench`, or:
DATABASE_URL=postgres://… pytest -s -m benchmark --run-benchmarks tests/audit
Set AUDIT_BENCH_SECONDS to change how long each level runs (default 5).
"""

import io
import logging
import os
import statistics
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection

from engagements.choices import TeamRole
from engagements.services import engagement_update
from tests.factories import EngagementFactory, EngagementMemberFactory, UserFactory

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres, pytest.mark.slow]

SECONDS = float(os.environ.get("AUDIT_BENCH_SECONDS", "5"))
ENGAGEMENTS = 3
LEVELS = (1, 8, 32)


class _Retries(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record):
        self.count += 1


def _level(writers: int, engagements) -> dict:
    stop = time.monotonic() + SECONDS
    latencies, failures = [], []
    guard = threading.Lock()

    def write(number):
        lead, engagement = engagements[number % len(engagements)]
        mine = []
        try:
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    engagement_update(
                        engagement=engagement,
                        actor=lead,
                        data={"description": f"writer {number} at {started}"},
                    )
                except Exception as error:
                    with guard:
                        failures.append(error)
                mine.append(time.perf_counter() - started)
        finally:
            connection.close()
            with guard:
                latencies.extend(mine)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "writers": writers,
        "writes": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "failures": failures,
    }


def test_audited_writes_per_second(transactional_db):
    engagements = []
    for number in range(ENGAGEMENTS):
        lead = UserFactory(username=f"bench-lead{number}", is_staff=True)
        engagement = EngagementFactory(lead_actuary=lead, reviewer=None, created_by=lead)
        EngagementMemberFactory(engagement=engagement, user=lead, role=TeamRole.LEAD)
        engagements.append((lead, engagement))
    retries = _Retries()
    logging.getLogger("records.transactions").addHandler(retries)
    try:
        results = [_level(writers, engagements) for writers in LEVELS]
    finally:
        logging.getLogger("records.transactions").removeHandler(retries)

    print(f"\nAudited writes (engagement_update) on {ENGAGEMENTS} shared engagements, PostgreSQL")
    print(
        f"{'writers':>8} {'writes':>8} {'writes/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'failed':>7}"
    )
    for row in results:
        print(
            f"{row['writers']:>8} {row['writes']:>8} {row['per_second']:>10.1f} "
            f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {len(row['failures']):>7}"
        )
    print(f"deadlocks retried: {retries.count}")
    assert [row["failures"] for row in results] == [[], [], []]
    out = io.StringIO()
    call_command("verify_audit_log", "--no-progress", stdout=out)
    assert "Audit log intact" in out.getvalue()
