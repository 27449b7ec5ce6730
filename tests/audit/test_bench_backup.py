"""Benchmark: backing up and restoring a large artefact set keeps memory bounded.

Not a timed test: it prints the figures (time, throughput, peak traced memory) and
fails only if peak memory grows with the data. Run with `make bench`, or
`pytest -s -m benchmark --run-benchmarks tests/audit/test_bench_backup.py`.
BACKUP_BENCH_MB sets the size of the artefact set (default 200; 1024 for 1 GB).
"""

import base64
import hashlib
import os
import resource
import time
import tracemalloc

import pytest

from artefacts.files import artefact_storage
from artefacts.models import Artefact
from audit.models import Backup
from tests.audit.backups import call
from tests.factories.states import active_engagement, artefact_in

pytestmark = [pytest.mark.benchmark, pytest.mark.django_db]

MB = 1024 * 1024
TOTAL = int(os.environ.get("BACKUP_BENCH_MB", "200")) * MB
FILE_SIZE = 20 * MB
# Peak traced memory must stay under this, whatever the size of the set: a few chunks.
MEMORY_BOUND = 32 * MB


def measure(action):
    """Run `action`; return peak traced memory, maxrss growth and seconds."""
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - started
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    return peak, rss_growth, seconds


def report(step: str, size: int, peak: int, rss_growth: int, seconds: float) -> None:
    print(
        f"\n{step:<34} {size / MB:>6.0f} MB  {seconds:6.1f} s  {size / MB / seconds:6.1f} MB/s"
        f"  tracemalloc peak {peak / MB:6.2f} MB  maxrss +{rss_growth / MB:6.1f} MB"
    )


@pytest.fixture
def artefact_set(engagement, actuary):
    """Artefacts of about TOTAL bytes: CSVs of random tokens, which compress poorly."""
    engagement = active_engagement(engagement, actor=actuary)
    hashes = {}
    for number in range(max(1, TOTAL // FILE_SIZE)):
        content = (b"token\n" + base64.encodebytes(os.urandom(FILE_SIZE * 3 // 4)))[:FILE_SIZE]
        content = content[: content.rfind(b"\n") + 1]
        artefact = artefact_in(engagement, actor=actuary, content=content, name=f"Set {number}")
        hashes[artefact.file.name] = hashlib.sha256(content).hexdigest()
        del content
    return hashes


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_backup_and_restore_of_a_large_artefact_set_in_bounded_memory(
    artefact_set, settings, tmp_path, encrypted
):
    settings.BACKUP_ROOT = tmp_path / "backups"
    storage = artefact_storage()
    if encrypted:
        settings.BACKUP_ENCRYPTION_KEY = base64.urlsafe_b64encode(os.urandom(32)).decode()
    size = sum(storage.size(name) for name in artefact_set)
    label = "encrypted" if encrypted else "plain"

    peak, rss, seconds = measure(lambda: call("backup", "--artefacts"))
    report(f"backup --artefacts ({label})", size, peak, rss, seconds)
    assert peak < MEMORY_BOUND
    backup = Backup.objects.get()

    for name in artefact_set:
        storage.delete(name)
    peak, rss, seconds = measure(lambda: call("restore", str(backup.pk)))
    report(f"restore ({label})", size, peak, rss, seconds)
    assert peak < MEMORY_BOUND

    for name, digest in artefact_set.items():
        with storage.open(name, "rb") as handle:
            found = hashlib.sha256()
            while chunk := handle.read(MB):
                found.update(chunk)
        assert found.hexdigest() == digest
    assert Artefact.objects.count() == len(artefact_set)
