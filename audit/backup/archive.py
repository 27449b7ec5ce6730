"""The archive format and the streams it is written and read with.

Archive format (FORMAT_VERSION 1): one gzip-compressed tar file, members in this order:

- ``data/<app_label>.<model_name>.jsonl`` — the rows of one table, one JSON object
  per line, written by Django's ``jsonl`` serializer with natural keys off (original
  primary keys), except that timestamps keep their microseconds (Django's encoder
  cuts them to milliseconds, which would change every restored row and break the
  audit hash chain). Users and groups name their groups and permissions by natural
  key: permission ids are assigned per database by ``migrate``.
- ``files/<storage name>`` — the bytes of every artefact file the rows reference.
- ``manifest.json`` — last: format and app version, scope, creation time, the tables
  in restore order with their row counts, and the SHA-256 and size of every member.

Next to the archive, ``<archive>.sha256`` holds the SHA-256 of the whole archive in
``sha256sum`` format; the Backup row keeps the same checksum.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from tqdm import tqdm

FORMAT_NAME = "ai-actuary-backoffice-backup"
FORMAT_VERSION = 1
APP_DISTRIBUTION = "ai-actuary-backoffice"
ARCHIVE_SUFFIX = ".tar.gz"
CHECKSUM_SUFFIX = ".sha256"
PART_SUFFIX = ".part"
MANIFEST_MEMBER = "manifest.json"
DATA_PREFIX = "data/"
FILES_PREFIX = "files/"
# Rows fetched per database round trip while writing; rows compared and written per batch
# while restoring. Both keep memory flat whatever the size of a table.
ROW_CHUNK_SIZE = 2000
RESTORE_BATCH_SIZE = 500
# Bytes copied at a time between storage, archive and temporary files.
COPY_CHUNK_SIZE = 256 * 1024
# A manifest lists every member; even a million files stay far below this.
MAX_MANIFEST_SIZE = 512 * 1024 * 1024


class ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder that keeps the microseconds of timestamps and times.

    Django's encoder cuts them to milliseconds (ECMA-262); a restore must give back
    the very values, and the audit hash chain covers them.
    """

    def default(self, o):
        """Encode datetimes and times in full ISO 8601."""
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def dump_rows(rows: Iterable[models.Model], stream, options: dict) -> None:
    """Write rows to a text stream as JSON lines (original keys, exact timestamps)."""
    serializers.serialize("jsonl", rows, stream=stream, cls=ExactJSONEncoder, **options)


def rows_as_records(rows: Iterable[models.Model], options: dict) -> list[dict]:
    """Return rows as the JSON records an archive holds (to compare with archived ones)."""
    lines = serializers.serialize("jsonl", rows, cls=ExactJSONEncoder, **options)
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


class HashingReader:
    """A binary reader that computes the SHA-256 and size of what passes through it."""

    def __init__(self, raw):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        """Read from the wrapped file, hashing the bytes."""
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left."""
        while self.read(COPY_CHUNK_SIZE):
            pass

    def hexdigest(self) -> str:
        """Return the SHA-256 of the bytes read so far."""
        return self.digest.hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
    """Return the SHA-256 and size of a file, read in chunks."""
    with path.open("rb") as handle:
        reader = HashingReader(handle)
        reader.drain()
    return reader.hexdigest(), reader.size


def _lines(reader) -> Iterator[str]:
    """Yield the text lines of a binary stream, read in chunks (a line may be long)."""
    pending = b""
    while chunk := reader.read(COPY_CHUNK_SIZE):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line.decode("utf-8")
    if pending.strip():
        yield pending.decode("utf-8")


class _Counted:
    """An iterable that counts what it yields and reports it to a progress bar."""

    def __init__(self, iterable, progress):
        self.iterable = iterable
        self.progress = progress
        self.count = 0

    def __iter__(self):
        for item in self.iterable:
            self.count += 1
            self.progress.update(1)
            yield item


class NoProgress:
    """A progress bar that shows nothing (the default)."""

    def __init__(self, *args, **kwargs):
        self.disable = True

    def update(self, n=1):
        """Do nothing."""

    def close(self):
        """Do nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# A callable (description, total) -> a tqdm-like bar; commands pass one that draws on stderr.
ProgressFactory = Callable[[str, int | None], Any]


def terminal_progress(*, disabled: bool = False) -> ProgressFactory:
    """Return a progress-bar factory drawing tqdm bars on stderr, only on a terminal."""
    hidden = disabled or not sys.stderr.isatty()

    def progress(description: str, total: int | None):
        return tqdm(desc=description, total=total, unit=" items", file=sys.stderr, disable=hidden)

    return progress


def app_version() -> str:
    """Return the version of the back office (installed metadata, else pyproject.toml)."""
    try:
        return importlib_metadata.version(APP_DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        pass
    try:
        with (Path(settings.BASE_DIR) / "pyproject.toml").open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def safe_storage_name(name: str) -> bool:
    """Return whether a storage name is relative and stays inside the storage."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


class _BytesReader:
    """A minimal reader over bytes (tarfile reads members with read(n))."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk = self.data[self.offset : end]
        self.offset += len(chunk)
        return chunk


def checksum_path(archive: Path) -> Path:
    """Return the path of an archive's .sha256 file."""
    return archive.with_name(archive.name + CHECKSUM_SUFFIX)
