"""Benchmark: storing a 10 MB and a 100 MB artefact keeps memory bounded (streamed, not read).

Not a timed test: it prints the figures and fails only if peak memory grows with the
file. Run with `make bench` (or `pytest -s -m benchmark --run-benchmarks`).
"""

import hashlib
import resource
import time
import tracemalloc
from pathlib import Path

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser

from artefacts.choices import ArtefactType
from artefacts.files import MaxSizeUploadHandler, store_artefact_file

pytestmark = [pytest.mark.benchmark, pytest.mark.django_db]

MB = 1024 * 1024
SIZES = (10 * MB, 100 * MB)
# Peak traced memory must stay under this, whatever the file size: a few chunks.
MEMORY_BOUND = 8 * MB
BOUNDARY = "ArtefactBenchmarkBoundary"


def write_csv(path: Path, size: int) -> str:
    """Write a CSV of exactly `size` bytes, 1 MB at a time; return its SHA-256."""
    row = b"2020,12,100.25,paid,motor,GBP\n"
    block = (b"origin,development,value,basis,line,currency\n" + row * (MB // len(row)))[:MB]
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        written = 0
        while written < size:
            piece = block[: size - written]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def write_multipart_body(path: Path, source: Path) -> int:
    """Write a multipart/form-data body holding `source` as the "file" field; return its size."""
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="claims.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    with path.open("wb") as body, source.open("rb") as content:
        body.write(head)
        while chunk := content.read(MB):
            body.write(chunk)
        body.write(tail)
    return path.stat().st_size


def measure(action):
    """Run `action`; return its result, peak traced memory, maxrss growth and seconds.

    maxrss is the process's high-water mark (KB on Linux): its growth shows whether
    the action pushed resident memory past anything the test process had used before.
    """
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    tracemalloc.reset_peak()
    started = time.perf_counter()
    try:
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.perf_counter() - started
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    return result, peak, rss_growth, seconds


def report(route: str, size: int, peak: int, rss_growth: int, seconds: float) -> None:
    """Print one line of figures."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"\n{route:<36} {size / MB:>4.0f} MB  tracemalloc peak {peak / MB:7.2f} MB"
        f" ({peak / size:7.2%} of file)  maxrss +{rss_growth / MB:6.2f} MB"
        f" (now {maxrss / MB:6.1f} MB)  {seconds:5.2f} s"
    )


@pytest.mark.parametrize("size", SIZES, ids=[f"{size // MB}MB" for size in SIZES])
def test_store_artefact_file_memory_is_bounded(engagement, tmp_path, size):
    source = tmp_path / "claims.csv"
    digest = write_csv(source, size)

    def store():
        with source.open("rb") as handle:
            return store_artefact_file(
                engagement_id=engagement.pk,
                file=handle,
                file_name="claims.csv",
                artefact_type=ArtefactType.DATA_FILE,
            )

    stored, peak, rss_growth, seconds = measure(store)
    report("store_artefact_file (file object)", size, peak, rss_growth, seconds)
    assert (stored.content_hash, stored.file_size) == (digest, size)
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("size", SIZES, ids=[f"{size // MB}MB" for size in SIZES])
def test_multipart_upload_then_store_memory_is_bounded(engagement, tmp_path, settings, size):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    source = tmp_path / "claims.csv"
    digest = write_csv(source, size)
    body = tmp_path / "body"
    length = write_multipart_body(body, source)
    meta = {
        "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        "CONTENT_LENGTH": str(length),
    }

    def upload():
        # What a request goes through: Django's parser and upload handlers (the file is
        # spooled to a TemporaryUploadedFile), then the artefact storage.
        handlers = [MaxSizeUploadHandler(), MemoryFileUploadHandler(), TemporaryFileUploadHandler()]
        with body.open("rb") as stream:
            _, uploaded = MultiPartParser(meta, stream, handlers).parse()
        upload = uploaded["file"]
        try:
            return store_artefact_file(
                engagement_id=engagement.pk,
                file=upload,
                file_name=upload.name,
                artefact_type=ArtefactType.DATA_FILE,
            )
        finally:
            upload.close()

    stored, peak, rss_growth, seconds = measure(upload)
    report("multipart parse + store (temp file)", size, peak, rss_growth, seconds)
    assert (stored.content_hash, stored.file_size) == (digest, size)
    assert peak < MEMORY_BOUND


def test_control_reading_the_whole_file_is_seen_by_the_instruments(tmp_path):
    """Show the figures above would catch a non-streamed upload: read 100 MB whole."""
    source = tmp_path / "claims.csv"
    write_csv(source, SIZES[-1])

    def read_whole():
        return hashlib.sha256(source.read_bytes()).hexdigest()

    _, peak, rss_growth, seconds = measure(read_whole)
    report("control: read_bytes() then hash", SIZES[-1], peak, rss_growth, seconds)
    assert peak >= SIZES[-1]
