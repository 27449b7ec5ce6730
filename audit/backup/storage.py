"""Where archives are kept: the local BACKUP_ROOT, or object storage through django-storages.

BACKUP_STORAGE "local" (the default) writes archives under BACKUP_ROOT (or the
`--output-dir` given) and records their absolute path. "s3" writes each archive to a
temporary file, then streams it (multipart) to the storage named "backups" in
STORAGES — S3-compatible object storage configured like the artefacts' — and records
its name there; a restore streams it back to a temporary file before checking it.
Neither ever holds an archive in memory.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages

from .archive import ARCHIVE_SUFFIX, CHECKSUM_SUFFIX, COPY_CHUNK_SIZE

LOCAL = "local"
STORAGE_ALIAS = "backups"


def storage_provider() -> str:
    """Return where new archives go: "local" or the provider of the "backups" storage."""
    return str(getattr(settings, "BACKUP_STORAGE", LOCAL) or LOCAL).lower()


def is_remote() -> bool:
    """Return whether new archives go to object storage rather than BACKUP_ROOT."""
    return storage_provider() != LOCAL


def backup_storage():
    """Return the django-storages storage archives are kept in (BACKUP_STORAGE not local)."""
    return storages[STORAGE_ALIAS]


def upload(local: Path, name: str) -> str:
    """Stream a local archive (and its .sha256 file) to the backup storage; return its name."""
    storage = backup_storage()
    with local.open("rb") as handle:
        saved = storage.save(name, File(handle, name=Path(name).name))
    sidecar = local.with_name(local.name + CHECKSUM_SUFFIX)
    if sidecar.is_file():
        with sidecar.open("rb") as handle:
            storage.save(saved + CHECKSUM_SUFFIX, File(handle, name=sidecar.name))
    return saved


def exists(name: str) -> bool:
    """Return whether the backup storage holds an archive under `name`."""
    return bool(name) and backup_storage().exists(name)


def download(name: str, owner) -> Path:
    """Stream an archive from the backup storage to a temporary file, removed with `owner`."""
    handle, temporary = tempfile.mkstemp(prefix="backup-download-", suffix=ARCHIVE_SUFFIX)
    os.close(handle)
    path = Path(temporary)
    weakref.finalize(owner, path.unlink, missing_ok=True)
    with backup_storage().open(name, "rb") as source, path.open("wb") as target:
        while chunk := source.read(COPY_CHUNK_SIZE):
            target.write(chunk)
    return path


def read_checksum(name: str) -> str:
    """Return the SHA-256 in the .sha256 object next to an archive ("" if there is none)."""
    sidecar = name + CHECKSUM_SUFFIX
    if not exists(sidecar):
        return ""
    with backup_storage().open(sidecar, "rb") as handle:
        words = handle.read(4096).decode("ascii", errors="replace").split()
    return words[0].lower() if words else ""


def remove(name: str) -> bool:
    """Remove an archive and its .sha256 object from the backup storage; return if it was there."""
    storage = backup_storage()
    found = storage.exists(name)
    if found:
        storage.delete(name)
    if storage.exists(name + CHECKSUM_SUFFIX):
        storage.delete(name + CHECKSUM_SUFFIX)
    return found
