"""Encryption of archives at rest: AES-256-GCM from `cryptography`, streamed in chunks.

With BACKUP_ENCRYPTION_KEY set, an archive is written through `EncryptingWriter` and
read back through `decrypt_file`. The construction is STREAM (Hoang, Reyhanitabar,
Rogaway and Vizár, "Online authenticated-encryption and its nonce-reuse
misuse-resistance", 2015) over the library's AESGCM — no cipher of our own:

- a header: magic, format version, key id, a random 7-byte nonce prefix, chunk size;
- then the plaintext in chunks of `CHUNK_SIZE` bytes, each sealed by AESGCM with the
  nonce prefix ‖ the chunk's 4-byte index ‖ a final-chunk flag byte, and the whole
  header as associated data.

So every chunk is authenticated, and chunks cannot be reordered, dropped, moved to
another archive or cut off at the end (the last chunk carries the final flag) without
decryption failing. Memory holds one chunk whatever the size of the archive.

Keys are 32 random bytes in URL-safe base64 (`python -c "import base64, os;
print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`), optionally prefixed by an
id and a colon (`2026-12:…`); without an id, the id is the first 16 hex digits of the
key's SHA-256. BACKUP_DECRYPTION_KEYS lists older keys, so archives written before a
rotation stay readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from .errors import BackupFailed, RestoreRefused

MAGIC = b"AIACTENC"
VERSION = 1
ALGORITHM = "AES-256-GCM STREAM"
ENCRYPTED_SUFFIX = ".enc"
CHUNK_SIZE = 1024 * 1024
TAG_SIZE = 16
NONCE_PREFIX_SIZE = 7
MAX_CHUNKS = 2**32

KEY_INVALID = (
    "{setting} holds a key that is not 32 bytes of URL-safe base64 (optionally “id:” first): "
    "{problem}."
)
ARCHIVE_ENCRYPTED_NO_KEY = (
    "Archive {path} is encrypted with key id “{key_id}”, and no key is configured: set "
    "BACKUP_ENCRYPTION_KEY or BACKUP_DECRYPTION_KEYS. Nothing was restored."
)
KEY_UNKNOWN = (
    "Archive {path} is encrypted with key id “{key_id}”; the configured keys are {known}. "
    "Set the key it was written with in BACKUP_DECRYPTION_KEYS. Nothing was restored."
)
WRONG_KEY = (
    "Archive {path} cannot be decrypted with the key “{key_id}”: the key is wrong or the "
    "archive was altered (chunk {chunk} failed authentication). Nothing was restored."
)
HEADER_INVALID = "Archive {path} has no valid encryption header: {problem}. Nothing was restored."


@dataclass(frozen=True)
class BackupKey:
    """A key archives are encrypted or decrypted with, and its id."""

    key_id: str
    key: bytes = b""

    def __repr__(self) -> str:
        return f"BackupKey({self.key_id!r})"


def parse_key(value: str, setting: str) -> BackupKey:
    """Return the key a setting value names ("id:base64" or "base64")."""
    key_id, _colon, encoded = value.strip().rpartition(":")
    try:
        key = base64.urlsafe_b64decode(encoded.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeError) as error:
        raise BackupFailed(KEY_INVALID.format(setting=setting, problem=error)) from error
    if len(key) != 32:
        raise BackupFailed(KEY_INVALID.format(setting=setting, problem=f"{len(key)} bytes"))
    return BackupKey(key_id or hashlib.sha256(key).hexdigest()[:16], key)


def encryption_key() -> BackupKey | None:
    """Return the key new archives are encrypted with (None: they are not encrypted)."""
    value = getattr(settings, "BACKUP_ENCRYPTION_KEY", "")
    return parse_key(value, "BACKUP_ENCRYPTION_KEY") if value else None


def decryption_keys() -> dict[str, BackupKey]:
    """Return every key archives may be decrypted with, by id (current and older ones)."""
    keys = {}
    current = encryption_key()
    if current is not None:
        keys[current.key_id] = current
    for value in getattr(settings, "BACKUP_DECRYPTION_KEYS", ()) or ():
        if value.strip():
            key = parse_key(value, "BACKUP_DECRYPTION_KEYS")
            keys.setdefault(key.key_id, key)
    return keys


def _header(key_id: str, prefix: bytes, chunk_size: int) -> bytes:
    encoded_id = key_id.encode("utf-8")
    return (
        MAGIC
        + struct.pack(">BB", VERSION, len(encoded_id))
        + encoded_id
        + prefix
        + struct.pack(">I", chunk_size)
    )


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if final else 0)


class EncryptingWriter:
    """A binary writer that encrypts what is written to `raw`, one chunk at a time."""

    def __init__(self, raw, key: BackupKey, chunk_size: int = CHUNK_SIZE):
        self.raw = raw
        self.aead = AESGCM(key.key)
        self.prefix = os.urandom(NONCE_PREFIX_SIZE)
        self.header = _header(key.key_id, self.prefix, chunk_size)
        self.chunk_size = chunk_size
        self.buffer = bytearray()
        self.index = 0
        self.closed = False
        raw.write(self.header)

    def write(self, data) -> int:
        """Buffer `data`; seal every full chunk that has more data after it."""
        self.buffer += data
        while len(self.buffer) > self.chunk_size:
            self._seal(bytes(self.buffer[: self.chunk_size]), final=False)
            del self.buffer[: self.chunk_size]
        return len(data)

    def _seal(self, chunk: bytes, *, final: bool) -> None:
        if self.index >= MAX_CHUNKS:
            raise BackupFailed("The archive is too large to encrypt in one stream.")
        nonce = _nonce(self.prefix, self.index, final)
        self.raw.write(self.aead.encrypt(nonce, chunk, self.header))
        self.index += 1

    def flush(self) -> None:
        """Flush the underlying file (the pending chunk stays until close)."""
        self.raw.flush()

    def close(self) -> None:
        """Seal the last chunk (possibly empty) with the final flag."""
        if not self.closed:
            self._seal(bytes(self.buffer), final=True)
            self.buffer.clear()
            self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        return False


def is_encrypted(path: Path) -> bool:
    """Return whether a file starts with the encryption header."""
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def read_key_id(path: Path) -> str:
    """Return the id of the key an encrypted archive was written with."""
    with path.open("rb") as handle:
        return _read_header(handle, path)[1]


def _read_header(handle, path: Path) -> tuple[bytes, str, bytes, int]:
    magic = handle.read(len(MAGIC))
    if magic != MAGIC:
        raise RestoreRefused(HEADER_INVALID.format(path=path, problem="not an encrypted archive"))
    fixed = handle.read(2)
    if len(fixed) != 2 or fixed[0] != VERSION:
        raise RestoreRefused(HEADER_INVALID.format(path=path, problem="unknown version"))
    encoded_id = handle.read(fixed[1])
    prefix = handle.read(NONCE_PREFIX_SIZE)
    size = handle.read(4)
    if len(prefix) != NONCE_PREFIX_SIZE or len(size) != 4:
        raise RestoreRefused(HEADER_INVALID.format(path=path, problem="truncated header"))
    chunk_size = struct.unpack(">I", size)[0]
    if not 0 < chunk_size <= 64 * CHUNK_SIZE:
        raise RestoreRefused(HEADER_INVALID.format(path=path, problem="bad chunk size"))
    key_id = encoded_id.decode("utf-8", errors="replace")
    header = magic + fixed + encoded_id + prefix + size
    return header, key_id, prefix, chunk_size


def decrypt_file(path: Path, target: Path) -> str:
    """Decrypt the archive at `path` into `target`, chunk by chunk; return the key id.

    Raises RestoreRefused, naming the key id, if no configured key has that id or the
    key does not authenticate every chunk (wrong key, or an altered or cut archive).
    """
    keys = decryption_keys()
    with path.open("rb") as source:
        header, key_id, prefix, chunk_size = _read_header(source, path)
        if not keys:
            raise RestoreRefused(ARCHIVE_ENCRYPTED_NO_KEY.format(path=path, key_id=key_id))
        key = keys.get(key_id)
        if key is None:
            known = ", ".join(f"“{known}”" for known in sorted(keys))
            raise RestoreRefused(KEY_UNKNOWN.format(path=path, key_id=key_id, known=known))
        aead = AESGCM(key.key)
        sealed_size = chunk_size + TAG_SIZE
        index = 0
        with target.open("wb") as out:
            current = source.read(sealed_size)
            while True:
                following = source.read(sealed_size) if len(current) == sealed_size else b""
                final = not following
                try:
                    out.write(aead.decrypt(_nonce(prefix, index, final), current, header))
                except InvalidTag:
                    raise RestoreRefused(
                        WRONG_KEY.format(path=path, key_id=key_id, chunk=index)
                    ) from None
                if final:
                    break
                current, index = following, index + 1
    return key_id
