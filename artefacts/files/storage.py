"""Storing the bytes of artefacts: streamed, hashed, checked, content-addressed, never written over.

An upload is read once, in chunks, into a temporary file while its SHA-256 and size
are computed, so a 100 MB file never sits in memory; its format is checked
(`formats`, `detection`); the bytes are stored under
``artefacts/<engagement>/<hash[:2]>/<hash>/<name>``, are never written over, and
nothing is left behind when a step fails.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import tempfile
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File

from artefacts.models import Artefact
from records.exceptions import InvalidInput

from .detection import _resolve_format
from .formats import (
    _MIME_TYPES,
    FORMATS,
    FileFormat,
    _allowed_text,
    _describe_name,
    _extension,
    allowed_formats,
    format_for_name,
)

logger = logging.getLogger(__name__)

# Bytes read or written at a time: large enough to keep the loop cheap, small enough
# that memory stays flat whatever the file size.
CHUNK_SIZE = 256 * 1024

# The longest stored file name (the storage path adds about 115 characters before it;
# Artefact.file holds 500).
MAX_STORED_NAME_LENGTH = 150
# Storage names fit Artefact.file.
_FILE_FIELD_MAX_LENGTH = Artefact._meta.get_field("file").max_length
# The longest original file name kept for display and download (Artefact.file_name).
MAX_ORIGINAL_NAME_LENGTH = 255

EMPTY_FILE_MESSAGE = "The file “{file_name}” is empty."
FILE_TOO_LARGE_MESSAGE = (
    "The file “{file_name}” is larger than the maximum upload size of {limit_display} "
    "({limit} bytes)."
)
FORMAT_NOT_ALLOWED_MESSAGE = (
    "Artefact type “{artefact_type}” does not accept {detected} files (“{file_name}”); "
    "allowed formats: {allowed}."
)

BINARY_MODE_MESSAGE = "Artefact files must be read in binary mode, got {kind} chunks."
STORED_SIZE_MISMATCH_MESSAGE = (
    "Storage kept {stored_size} bytes of “{name}” instead of {file_size}; the copy was removed."
)


for _fmt in FORMATS.values():
    for _ext in _fmt.extensions:
        _MIME_TYPES.add_type(_fmt.mime_type, _ext)


def original_file_name(file_name: str) -> str:
    """Return the name to show and download: the last path part, printable, at most 255."""
    base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(char for char in base if char.isprintable()).strip()
    if base in {"", ".", ".."}:
        return ""
    return _truncate_keeping_extension(base, MAX_ORIGINAL_NAME_LENGTH)


def safe_file_name(file_name: str) -> str:
    """Return a storage-safe version of a file name: word characters, dots, dashes only."""
    base = unicodedata.normalize("NFKC", original_file_name(file_name))
    base = re.sub(r"\s+", "_", base)
    base = re.sub(r"[^\w.-]", "", base).lstrip(".-")
    base = re.sub(r"\.{2,}", ".", base)
    if not base or base.startswith("."):
        base = f"file{base}"
    return _truncate_keeping_extension(base, MAX_STORED_NAME_LENGTH)


def _truncate_keeping_extension(name: str, limit: int) -> str:
    """Return the name cut to `limit` characters, keeping its extension."""
    if len(name) <= limit:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) >= limit - 1:
        return name[:limit]
    return f"{stem[: limit - len(suffix) - 1]}.{suffix}"


def artefact_file_path(*, engagement_id: uuid.UUID | str, content_hash: str, file_name: str) -> str:
    """Return the storage name of an artefact's bytes: engagement, hash, then a safe name."""
    return (
        f"artefacts/{engagement_id}/{content_hash[:2]}/{content_hash}/{safe_file_name(file_name)}"
    )


class FileTooLarge(InvalidInput):
    """The file is larger than the maximum upload size (the API answers 413)."""

    code = "file_too_large"

    def __init__(self, *, file_name: str, limit: int):
        self.file_name = file_name
        self.limit = limit
        super().__init__(
            FILE_TOO_LARGE_MESSAGE.format(
                file_name=file_name, limit=limit, limit_display=_display_size(limit)
            )
        )


def _display_size(size: int) -> str:
    """Return a byte count as people read it (100 MB, 512 KB, 10 bytes)."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            return f"{round(size / factor, 1):g} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class StoredFile:
    """Where and what an artefact's bytes are once stored; the service copies it to the row.

    `name` goes to both `Artefact.file` and `Artefact.storage_path`. `reused` is true
    when the identical bytes were already stored under that name (they are shared, so
    `discard_stored_file` leaves them alone).
    """

    name: str
    content_hash: str
    file_size: int
    mime_type: str
    file_name: str
    storage_bucket: str
    format: str
    reused: bool = False


def artefact_storage():
    """Return the storage that holds artefact files (the one Artefact.file uses)."""
    return Artefact._meta.get_field("file").storage


def store_artefact_file(
    *,
    engagement_id: uuid.UUID | str,
    file,
    file_name: str,
    artefact_type: str,
    max_size: int | None = None,
) -> StoredFile:
    """Stream an upload once into storage and return what was stored.

    `file` is a Django File/UploadedFile (read through `chunks()`) or any binary
    file-like object (read with `read(CHUNK_SIZE)` from where it stands). The bytes
    go to a temporary file while SHA-256 and size are computed; the format is
    checked from the content and the name against the artefact type's allow-list;
    then the bytes are saved under the engagement and hash. Refuses an empty file,
    a file over `max_size` (default ARTEFACT_MAX_UPLOAD_SIZE) with FileTooLarge, and a
    disallowed or mislabelled format with InvalidInput. Nothing is left in storage
    or on disk when it refuses or fails.
    """
    if not engagement_id:
        raise ValueError("store_artefact_file needs the engagement_id the file belongs to.")
    limit = settings.ARTEFACT_MAX_UPLOAD_SIZE if max_size is None else max_size
    shown_name = original_file_name(file_name or getattr(file, "name", "") or "")
    allowed = {fmt.key for fmt in allowed_formats(artefact_type)}
    # Refuse by name before reading a byte: the content may only confirm the name.
    claimed = _check_name(shown_name, artefact_type, allowed)
    declared_size = getattr(file, "size", None)
    if isinstance(declared_size, int) and declared_size > limit:
        raise FileTooLarge(file_name=shown_name, limit=limit)

    with tempfile.NamedTemporaryFile(
        prefix="artefact-", suffix=".part", dir=settings.FILE_UPLOAD_TEMP_DIR
    ) as spool:
        content_hash, file_size, is_text = _spool(file, spool, limit=limit, file_name=shown_name)
        if file_size == 0:
            raise InvalidInput(EMPTY_FILE_MESSAGE.format(file_name=shown_name))
        fmt = _resolve_format(spool, shown_name, claimed, is_text=is_text, file_size=file_size)
        if fmt.key not in allowed:
            raise InvalidInput(
                FORMAT_NOT_ALLOWED_MESSAGE.format(
                    artefact_type=artefact_type,
                    detected=fmt.describe(),
                    file_name=shown_name,
                    allowed=_allowed_text(artefact_type),
                )
            )
        storage = artefact_storage()
        target = artefact_file_path(
            engagement_id=engagement_id,
            content_hash=content_hash,
            file_name=shown_name or f"file{fmt.extensions[0]}",
        )
        name, reused = _save_content_addressed(storage, target, spool, content_hash, file_size)

    return StoredFile(
        name=name,
        content_hash=content_hash,
        file_size=file_size,
        mime_type=fmt.mime_type,
        file_name=shown_name or name.rsplit("/", 1)[-1],
        storage_bucket=_bucket_of(storage),
        format=fmt.key,
        reused=reused,
    )


def _check_name(file_name: str, artefact_type: str, allowed: set[str]) -> FileFormat | None:
    """Return the format the name claims; refuse a name the artefact type does not accept."""
    claimed = format_for_name(file_name)
    if claimed is not None and claimed.key in allowed:
        return claimed
    if claimed is None and not _extension(file_name):
        # No extension: the content alone decides the format.
        return None
    raise InvalidInput(
        FORMAT_NOT_ALLOWED_MESSAGE.format(
            artefact_type=artefact_type,
            detected=claimed.describe() if claimed else _describe_name(file_name),
            file_name=file_name,
            allowed=_allowed_text(artefact_type),
        )
    )


def _input_chunks(file) -> Iterator[bytes]:
    """Yield the bytes of an upload or binary file-like object, CHUNK_SIZE at a time."""
    chunks = getattr(file, "chunks", None)
    # Plain file objects are read with a size, not iterated: iterating a binary file
    # yields "lines", and a binary file may hold one 100 MB line.
    source = chunks(CHUNK_SIZE) if callable(chunks) else iter(lambda: file.read(CHUNK_SIZE), b"")
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(BINARY_MODE_MESSAGE.format(kind=type(chunk).__name__))
        if chunk:
            yield chunk


def _spool(file, spool, *, limit: int, file_name: str) -> tuple[str, int, bool]:
    """Copy the input to the spool file; return its SHA-256, size and whether it is UTF-8.

    Stops at the first byte past `limit`, so an oversized upload is never copied whole.
    """
    digest = hashlib.sha256()
    size = 0
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_text = True
    for chunk in _input_chunks(file):
        size += len(chunk)
        if size > limit:
            raise FileTooLarge(file_name=file_name, limit=limit)
        digest.update(chunk)
        spool.write(chunk)
        if is_text:
            is_text = _still_text(decoder, chunk)
    if is_text:
        is_text = _still_text(decoder, b"", final=True)
    spool.flush()
    return digest.hexdigest(), size, is_text


def _still_text(decoder, chunk: bytes, *, final: bool = False) -> bool:
    """Return whether the bytes so far are NUL-free UTF-8 (a BOM is allowed)."""
    if b"\x00" in chunk:
        return False
    try:
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _save_content_addressed(
    storage, target: str, spool, content_hash: str, file_size: int
) -> tuple[str, bool]:
    """Save the spool under `target` unless identical bytes are there; return (name, reused).

    Never writes over existing bytes: if different bytes sit at the target (they can
    only be a damaged copy, since the name holds the hash), they are left for
    `verify_artefacts` to report and the new copy goes beside them.
    """
    if storage.exists(target):
        if _stored_digest(storage, target) == (content_hash, file_size):
            return target, True
        logger.warning("Stored bytes at %s do not match their hash; saving a new copy", target)
    name = storage.get_available_name(target, max_length=_FILE_FIELD_MAX_LENGTH)
    saved = None
    try:
        spool.seek(0)
        saved = storage.save(
            name, File(spool, name=name.rsplit("/", 1)[-1]), max_length=_FILE_FIELD_MAX_LENGTH
        )
        stored_size = storage.size(saved)
        if stored_size != file_size:
            raise OSError(
                STORED_SIZE_MISMATCH_MESSAGE.format(
                    stored_size=stored_size, name=saved, file_size=file_size
                )
            )
    except BaseException:
        # No partial copy may survive: remove whatever this call wrote.
        _delete_quietly(storage, saved or name)
        raise
    return saved, False


def _delete_quietly(storage, name: str) -> None:
    """Delete a stored file if it is there, logging (not raising) a failure to delete."""
    try:
        if storage.exists(name):
            storage.delete(name)
    except Exception:
        logger.exception("Could not remove the partial artefact file %s", name)


def _bucket_of(storage) -> str:
    """Return the bucket of an object storage, or the model's default for local files."""
    return (
        getattr(storage, "bucket_name", None)
        or Artefact._meta.get_field("storage_bucket").get_default()
    )


def discard_stored_file(stored: StoredFile) -> bool:
    """Delete bytes just stored when the artefact row could not be saved; return if deleted.

    Call it when the transaction that was to create the row failed. Shared bytes
    (`stored.reused`, or referenced by any artefact, deleted ones included) are kept.
    """
    if stored.reused or Artefact.all_objects.filter(file=stored.name).exists():
        return False
    storage = artefact_storage()
    if not storage.exists(stored.name):
        return False
    storage.delete(stored.name)
    return True


def _stored_digest(storage, name: str) -> tuple[str, int]:
    """Return the SHA-256 and size of a stored file, read in chunks."""
    with storage.open(name, "rb") as handle:
        return _digest_of(handle)


def _digest_of(handle) -> tuple[str, int]:
    """Return the SHA-256 and size of an open binary file, read from where it stands."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
