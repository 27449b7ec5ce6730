"""The bytes of artefacts: allowed formats, content sniffing, streamed storage, integrity checks.

Services, the admin and the API call this module; it never creates or changes an
Artefact row. The rules it keeps:

- an upload is read once, in chunks, into a temporary file while its SHA-256 and
  size are computed, so a 100 MB file never sits in memory;
- the format is taken from the content *and* the name, and both must agree with
  each other and with the allow-list of the artefact type;
- the bytes are stored under ``artefacts/<engagement>/<hash[:2]>/<hash>/<name>``,
  are never written over, and nothing is left behind when a step fails;
- a stored file is served only after its bytes were re-hashed and matched.
"""

from __future__ import annotations

import codecs
import enum
import hashlib
import logging
import mimetypes
import re
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from artefacts.choices import ArtefactType
from artefacts.models import Artefact
from audit.choices import AuditAction, Severity
from audit.services import audit_record
from records.exceptions import Conflict, InvalidInput

logger = logging.getLogger(__name__)

# Bytes read or written at a time: large enough to keep the loop cheap, small enough
# that memory stays flat whatever the file size.
CHUNK_SIZE = 256 * 1024
# How much of the start of a file is inspected for magic numbers and text rules.
SNIFF_SIZE = 64 * 1024
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
CONTENT_MISMATCH_MESSAGE = (
    "The content of “{file_name}” does not match its name: the name says {claimed}, "
    "the content is {detected}."
)
UNRECOGNISED_CONTENT_MESSAGE = (
    "The format of “{file_name}” is not recognised: it has no known extension and its "
    "content is neither a known binary format nor UTF-8 text."
)
UNKNOWN_ARTEFACT_TYPE_MESSAGE = "Unknown artefact type “{artefact_type}”."
BINARY_MODE_MESSAGE = "Artefact files must be read in binary mode, got {kind} chunks."
STORED_SIZE_MISMATCH_MESSAGE = (
    "Storage kept {stored_size} bytes of “{name}” instead of {file_size}; the copy was removed."
)
FILE_MISSING_MESSAGE = (
    "The file of artefact “{artefact}” ({artefact_id}) is missing from storage "
    "(“{storage_name}”); it cannot be served."
)
FILE_CORRUPTED_MESSAGE = (
    "The file of artefact “{artefact}” ({artefact_id}) does not match its record "
    "(expected SHA-256 {expected_hash}, {expected_size} bytes; found {actual_hash}, "
    "{actual_size} bytes); it cannot be served."
)

# Magic numbers of the binary formats the allow-list knows.
PDF_MAGIC = b"%PDF-"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


# --- The allow-list ---------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    """One file format the back office accepts: its extensions, MIME type and kind."""

    key: str
    label: str
    extensions: tuple[str, ...]
    mime_type: str
    text: bool = False

    def describe(self) -> str:
        """Return the label with the MIME type, as error messages show it."""
        return f"{self.label} ({self.mime_type})"


FORMATS: dict[str, FileFormat] = {
    fmt.key: fmt
    for fmt in (
        # Data.
        FileFormat("csv", "CSV", (".csv",), "text/csv", text=True),
        FileFormat("tsv", "TSV", (".tsv", ".tab"), "text/tab-separated-values", text=True),
        FileFormat("txt", "plain text", (".txt",), "text/plain", text=True),
        FileFormat("json", "JSON", (".json",), "application/json", text=True),
        FileFormat("xml", "XML", (".xml",), "application/xml", text=True),
        FileFormat(
            "xlsx",
            "Excel workbook",
            (".xlsx",),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        FileFormat(
            "xlsm",
            "macro-enabled Excel workbook",
            (".xlsm",),
            "application/vnd.ms-excel.sheet.macroEnabled.12",
        ),
        FileFormat("xls", "Excel 97-2003 workbook", (".xls",), "application/vnd.ms-excel"),
        FileFormat("parquet", "Parquet", (".parquet",), "application/vnd.apache.parquet"),
        # Documents.
        FileFormat("pdf", "PDF", (".pdf",), "application/pdf"),
        FileFormat(
            "docx",
            "Word document",
            (".docx",),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        FileFormat("doc", "Word 97-2003 document", (".doc",), "application/msword"),
        FileFormat(
            "pptx",
            "PowerPoint presentation",
            (".pptx",),
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ),
        FileFormat("md", "Markdown", (".md", ".markdown"), "text/markdown", text=True),
        FileFormat("html", "HTML", (".html", ".htm"), "text/html", text=True),
        # Images.
        FileFormat("png", "PNG image", (".png",), "image/png"),
        FileFormat("jpeg", "JPEG image", (".jpg", ".jpeg"), "image/jpeg"),
        FileFormat("svg", "SVG image", (".svg",), "image/svg+xml", text=True),
        # Code and configuration.
        FileFormat("ipynb", "Jupyter notebook", (".ipynb",), "application/x-ipynb+json", text=True),
        FileFormat("py", "Python script", (".py",), "text/x-python", text=True),
        FileFormat("r", "R script", (".r",), "text/x-r", text=True),
        FileFormat("sql", "SQL script", (".sql",), "application/sql", text=True),
        FileFormat("log", "log file", (".log",), "text/plain", text=True),
        FileFormat("yaml", "YAML", (".yaml", ".yml"), "application/yaml", text=True),
        FileFormat("toml", "TOML", (".toml",), "application/toml", text=True),
        # Archives.
        FileFormat("zip", "ZIP archive", (".zip",), "application/zip"),
        FileFormat("gz", "gzip archive", (".gz", ".tgz"), "application/gzip"),
    )
}

_T = ArtefactType
# Tabular data an actuary exchanges: delimited text, spreadsheets, columnar files.
_TABULAR = ("csv", "tsv", "txt", "json", "xlsx", "xls", "parquet")
_IMAGES = ("png", "jpeg", "svg")
_STRUCTURED_TEXT = ("json", "yaml", "toml")

# Artefact type -> the formats its file may have (keys of FORMATS).
ARTEFACT_TYPE_FORMATS: dict[str, tuple[str, ...]] = {
    # Raw extracts often arrive as XML or gzip-compressed CSV.
    _T.DATA_FILE: (*_TABULAR, "xml", "gz"),
    # A CSV artefact is delimited text, whatever the delimiter.
    _T.CSV: ("csv", "tsv", "txt"),
    # Actuarial models are often macro-enabled workbooks.
    _T.EXCEL: ("xlsx", "xlsm", "xls"),
    _T.PARQUET: ("parquet",),
    # Board packs are PowerPoint as often as Word or PDF.
    _T.REPORT: ("pdf", "docx", "doc", "md", "html", "pptx"),
    _T.PDF: ("pdf",),
    _T.WORD: ("docx", "doc"),
    _T.MARKDOWN: ("md",),
    # Charts are exported as images, as PDF, or as interactive HTML (plotly).
    _T.CHART: (*_IMAGES, "pdf", "html"),
    _T.GRAPH: (*_IMAGES, "pdf", "html"),
    _T.DASHBOARD: ("html", "pdf", *_IMAGES, "xlsx", "pptx"),
    _T.MODEL_OUTPUT: _TABULAR,
    _T.TRIANGLE: _TABULAR,
    _T.PROJECTION: _TABULAR,
    _T.SENSITIVITY: _TABULAR,
    _T.NOTEBOOK: ("ipynb",),
    _T.SCRIPT: ("py", "r", "sql"),
    _T.LOG: ("txt", "log"),
    _T.METADATA: _STRUCTURED_TEXT,
    _T.CONFIG: _STRUCTURED_TEXT,
    _T.ARCHIVE: ("zip", "gz"),
    # "Other" widens the type, not the formats: still only formats we can sniff.
    _T.OTHER: tuple(FORMATS),
}

_FORMAT_BY_EXTENSION = {ext: fmt for fmt in FORMATS.values() for ext in fmt.extensions}

# A private MIME table: Python's defaults plus ours, never the machine's /etc/mime.types,
# so the answer is the same on every machine.
_MIME_TYPES = mimetypes.MimeTypes()
for _fmt in FORMATS.values():
    for _ext in _fmt.extensions:
        _MIME_TYPES.add_type(_fmt.mime_type, _ext)


def allowed_formats(artefact_type: str) -> tuple[FileFormat, ...]:
    """Return the formats an artefact of this type may hold; refuse an unknown type."""
    try:
        keys = ARTEFACT_TYPE_FORMATS[artefact_type]
    except KeyError:
        raise InvalidInput(
            UNKNOWN_ARTEFACT_TYPE_MESSAGE.format(artefact_type=artefact_type)
        ) from None
    return tuple(FORMATS[key] for key in keys)


def accepted_extensions(artefact_type: str) -> tuple[str, ...]:
    """Return the file extensions an artefact of this type accepts (for `accept=` hints)."""
    return tuple(ext for fmt in allowed_formats(artefact_type) for ext in fmt.extensions)


def format_for_name(file_name: str) -> FileFormat | None:
    """Return the format a file name claims by its extension, or None if it claims none."""
    suffix = _extension(file_name)
    return _FORMAT_BY_EXTENSION.get(suffix) if suffix else None


def _extension(file_name: str) -> str:
    """Return the lowercase last extension of a name (".csv"), or "" if it has none."""
    base = file_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    stem, dot, suffix = base.rpartition(".")
    return f".{suffix.lower()}" if dot and stem.strip(".") and suffix else ""


def _describe_name(file_name: str) -> str:
    """Return what a name with an extension outside the allow-list claims to be."""
    suffix = _extension(file_name)
    mime_type, encoding = _MIME_TYPES.guess_type(f"file{suffix}", strict=False)
    if encoding and not mime_type:
        mime_type = f"application/x-{encoding}"
    return f"“{suffix}” ({mime_type or 'unknown MIME type'})"


def _allowed_text(artefact_type: str) -> str:
    """Return the allowed extensions of an artefact type, as messages list them."""
    return ", ".join(accepted_extensions(artefact_type))


# --- Names and paths -----------------------------------------------------------------------


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


# --- Storing ---------------------------------------------------------------------------------


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


def _resolve_format(
    spool, file_name: str, claimed: FileFormat | None, *, is_text: bool, file_size: int
) -> FileFormat:
    """Return the format that both the content and the name agree on; refuse a mismatch."""
    candidates = _sniff(spool, is_text=is_text, file_size=file_size)
    if claimed is not None:
        if claimed.key in candidates:
            return claimed
        raise InvalidInput(
            CONTENT_MISMATCH_MESSAGE.format(
                file_name=file_name,
                claimed=claimed.describe(),
                detected=_describe_content(candidates, claimed, is_text=is_text),
            )
        )
    if not candidates:
        raise InvalidInput(UNRECOGNISED_CONTENT_MESSAGE.format(file_name=file_name))
    # Text without an extension is plain text; binary content names its own format.
    return FORMATS["txt"] if "txt" in candidates else FORMATS[candidates[0]]


def _describe_content(candidates: tuple[str, ...], claimed: FileFormat, *, is_text: bool) -> str:
    """Return what the content turned out to be, for the mismatch message."""
    if candidates and not FORMATS[candidates[0]].text:
        # Binary formats first: an all-ASCII PDF is also UTF-8 text, but it is a PDF.
        return FORMATS[candidates[0]].describe()
    if is_text:
        return f"UTF-8 text that is not {claimed.label}"
    return "not a recognised format (text formats must be UTF-8 encoded)"


def _sniff(spool, *, is_text: bool, file_size: int) -> tuple[str, ...]:
    """Return the keys of the formats the content is consistent with, most specific first."""
    spool.seek(0)
    head = spool.read(SNIFF_SIZE)
    binary = _sniff_binary(spool, head, is_text=is_text, file_size=file_size)
    if binary or not is_text:
        return binary
    # Text that merely starts like a magic number ("PAR1,..." in a CSV) is still text.
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff").lstrip()
    return tuple(
        key for key, fmt in FORMATS.items() if fmt.text and _TEXT_RULES.get(key, _any)(text)
    )


def _sniff_binary(spool, head: bytes, *, is_text: bool, file_size: int) -> tuple[str, ...]:
    """Return the binary formats whose magic number and structure the content shows."""
    # The PDF header may follow a little junk (the PDF specification allows 1024 bytes);
    # real PDFs hold binary bytes, so a text file that mentions "%PDF-" stays text.
    if head.startswith(PDF_MAGIC) or (not is_text and PDF_MAGIC in head[:1024]):
        return ("pdf",)
    if head.startswith(PNG_MAGIC):
        return ("png",)
    if head.startswith(JPEG_MAGIC):
        return ("jpeg",)
    if head.startswith(GZIP_MAGIC):
        return ("gz",)
    if head.startswith(PARQUET_MAGIC):
        # A Parquet file also ends with the magic number, after its footer.
        spool.seek(max(file_size - len(PARQUET_MAGIC), 0))
        return ("parquet",) if file_size >= 12 and spool.read() == PARQUET_MAGIC else ()
    if head.startswith(OLE2_MAGIC):
        return _sniff_ole2(spool)
    if head.startswith(ZIP_MAGICS):
        return _sniff_zip(spool)
    return ()


def _any(text: str) -> bool:
    """Accept any UTF-8 text (CSV, Markdown, scripts, logs, ...)."""
    return True


def _starts_with_markup(text: str) -> bool:
    """Return whether the text starts like XML or HTML."""
    return text.startswith("<")


# Text formats with a shape the start of the file must show; the others take any text.
_TEXT_RULES = {
    "json": lambda text: text[:1] in {"{", "["},
    "ipynb": lambda text: text[:1] == "{",
    "xml": _starts_with_markup,
    "html": _starts_with_markup,
    "svg": lambda text: _starts_with_markup(text) and "<svg" in text.lower(),
}


def _sniff_zip(spool) -> tuple[str, ...]:
    """Return the formats of a ZIP file: an Office Open XML document is also a ZIP."""
    try:
        with zipfile.ZipFile(spool) as archive:
            names = archive.namelist()
            content_types = b""
            if "[Content_Types].xml" in names:
                with archive.open("[Content_Types].xml") as entry:
                    content_types = entry.read(SNIFF_SIZE)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, RuntimeError, ValueError):
        return ()
    if content_types:
        if any(name.startswith("xl/") for name in names):
            macros = b"macroenabled" in content_types.lower()
            return ("xlsm", "zip") if macros else ("xlsx", "zip")
        if any(name.startswith("word/") for name in names):
            return ("docx", "zip")
        if any(name.startswith("ppt/") for name in names):
            return ("pptx", "zip")
    return ("zip",)


_OLE2_LAST_REGULAR_SECTOR = 0xFFFFFFFA
_OLE2_MAX_DIRECTORY_SECTORS = 4096


def _sniff_ole2(spool) -> tuple[str, ...]:
    """Return the format of an OLE2 compound file from its stream names (xls or doc)."""
    try:
        names = _ole2_entry_names(spool)
    except (ValueError, OSError, UnicodeDecodeError):
        return ()
    if "Workbook" in names or "Book" in names:
        return ("xls",)
    if "WordDocument" in names:
        return ("doc",)
    return ()


def _ole2_entry_names(spool) -> set[str]:
    """Return the names in an OLE2 compound file's directory, following its FAT chain."""

    def u32(data: bytes, offset: int) -> int:
        """Return the little-endian 32-bit number at `offset`."""
        return int.from_bytes(data[offset : offset + 4], "little")

    spool.seek(0)
    header = spool.read(512)
    sector_size = 1 << int.from_bytes(header[30:32], "little")
    if sector_size not in {512, 4096}:
        raise ValueError("not an OLE2 sector size")
    per_sector = sector_size // 4

    def read_sector(sector: int) -> bytes:
        """Return one sector (sector 0 follows the header)."""
        spool.seek((sector + 1) * sector_size)
        return spool.read(sector_size)

    # The FAT sectors are listed in the header (109) and then in a chain of DIFAT sectors.
    fat_sectors = [u32(header, 76 + 4 * index) for index in range(109)]
    difat_sector, difat_count = u32(header, 68), u32(header, 72)
    for _ in range(min(difat_count, _OLE2_MAX_DIRECTORY_SECTORS)):
        if difat_sector >= _OLE2_LAST_REGULAR_SECTOR:
            break
        data = read_sector(difat_sector)
        fat_sectors.extend(u32(data, 4 * index) for index in range(per_sector - 1))
        difat_sector = u32(data, sector_size - 4)
    fat_sectors = [s for s in fat_sectors if s < _OLE2_LAST_REGULAR_SECTOR][: u32(header, 44)]

    def next_sector(sector: int) -> int:
        """Return the sector after `sector` in its chain, from the FAT."""
        index, slot = divmod(sector, per_sector)
        if index >= len(fat_sectors):
            return 0xFFFFFFFE
        spool.seek((fat_sectors[index] + 1) * sector_size + 4 * slot)
        return int.from_bytes(spool.read(4), "little")

    names: set[str] = set()
    sector, seen = u32(header, 48), set()
    while sector < _OLE2_LAST_REGULAR_SECTOR and sector not in seen:
        if len(seen) >= _OLE2_MAX_DIRECTORY_SECTORS:
            break
        seen.add(sector)
        data = read_sector(sector)
        for offset in range(0, len(data) - 127, 128):
            length = int.from_bytes(data[offset + 64 : offset + 66], "little")
            if 2 <= length <= 64:
                names.add(data[offset : offset + length - 2].decode("utf-16-le"))
        sector = next_sector(sector)
    return names


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


# --- Checking -------------------------------------------------------------------------------


class FileStatus(enum.StrEnum):
    """The outcome of re-hashing an artefact's stored bytes."""

    OK = "ok"
    MISSING = "missing"
    CORRUPTED = "corrupted"


@dataclass(frozen=True)
class FileCheck:
    """The result of re-hashing an artefact's stored bytes against its record."""

    status: FileStatus
    storage_name: str
    expected_hash: str
    expected_size: int
    actual_hash: str | None = None
    actual_size: int | None = None

    @property
    def ok(self) -> bool:
        """Return whether the stored bytes are the recorded ones."""
        return self.status == FileStatus.OK

    def message(self, artefact) -> str:
        """Return the sentence that explains a failed check (empty when it passed)."""
        if self.status == FileStatus.MISSING:
            return FILE_MISSING_MESSAGE.format(
                artefact=artefact, artefact_id=artefact.pk, storage_name=self.storage_name
            )
        if self.status == FileStatus.CORRUPTED:
            return FILE_CORRUPTED_MESSAGE.format(
                artefact=artefact,
                artefact_id=artefact.pk,
                expected_hash=self.expected_hash or "(none recorded)",
                expected_size=self.expected_size,
                actual_hash=self.actual_hash,
                actual_size=self.actual_size,
            )
        return ""

    def as_metadata(self) -> dict:
        """Return the check as JSON-ready audit metadata."""
        return {
            "integrity_check": str(self.status),
            "storage_name": self.storage_name,
            "expected_hash": self.expected_hash,
            "actual_hash": self.actual_hash,
            "expected_size": self.expected_size,
            "actual_size": self.actual_size,
        }


class ArtefactFileUnavailable(Conflict):
    """The artefact's bytes are missing or differ from its record; they are never served."""

    code = "artefact_file_unavailable"

    def __init__(self, *, artefact, check: FileCheck):
        self.artefact = artefact
        self.check = check
        super().__init__(check.message(artefact))


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


def _open_and_check(artefact) -> tuple[FileCheck, File | None]:
    """Open the artefact's bytes and re-hash them; return the check and the open file.

    The file is returned only when the check passed, rewound to its start.
    """
    name = artefact.file.name or ""
    missing = FileCheck(
        status=FileStatus.MISSING,
        storage_name=name,
        expected_hash=artefact.content_hash,
        expected_size=artefact.file_size,
    )
    if not name:
        return missing, None
    try:
        handle = artefact.file.storage.open(name, "rb")
    except FileNotFoundError:
        return missing, None
    try:
        actual_hash, actual_size = _digest_of(handle)
        intact = actual_hash == artefact.content_hash and actual_size == artefact.file_size
        check = FileCheck(
            status=FileStatus.OK if intact else FileStatus.CORRUPTED,
            storage_name=name,
            expected_hash=artefact.content_hash,
            expected_size=artefact.file_size,
            actual_hash=actual_hash,
            actual_size=actual_size,
        )
        if not intact:
            handle.close()
            return check, None
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return check, handle


def verify_artefact_file(artefact) -> FileCheck:
    """Re-hash an artefact's stored bytes, in chunks, and return how they compare."""
    check, handle = _open_and_check(artefact)
    if handle is not None:
        handle.close()
    return check


def open_verified(artefact) -> File:
    """Return the artefact's stored file, open and rewound, after checking its bytes.

    Raises ArtefactFileUnavailable (a Conflict: 409) when the file is missing or its
    bytes differ from the record; the caller records it with `record_file_problem`.
    The caller closes the file (FileResponse does).

    Check, then serve: hashing while streaming would find a mismatch only after the
    bytes were sent, and sent bytes cannot be taken back. The window between check
    and serve is closed as far as storage allows by serving the very handle that was
    hashed: on local disk a file replaced or deleted after the check is still read
    from the checked inode (only an in-place write to it could slip through); from
    S3, django-storages reads the object into a local temporary file, so the bytes
    served are the bytes hashed.
    """
    check, handle = _open_and_check(artefact)
    if handle is None:
        raise ArtefactFileUnavailable(artefact=artefact, check=check)
    return handle


def record_file_problem(*, artefact, check: FileCheck, source: str, user=None):
    """Write the critical audit event for a missing or corrupted artefact file.

    The action is artefact_access: the event is a failed read of the artefact's bytes,
    whether by a download or by `verify_artefacts` (named in `source`).
    """
    return audit_record(
        action=AuditAction.ARTEFACT_ACCESS,
        severity=Severity.CRITICAL,
        resource=artefact,
        user=user,
        description=check.message(artefact),
        metadata={
            **check.as_metadata(),
            "source": source,
            "artefact_name": artefact.name,
            "artefact_version": artefact.version,
        },
    )


# --- Upload handler --------------------------------------------------------------------------


class MaxSizeUploadHandler(FileUploadHandler):
    """Stop a multipart upload as soon as one file passes the artefact size limit.

    Put it first in `request.upload_handlers` (see `install_max_size_upload_handler`)
    before the body is read. Past the limit it stops the upload (the other handlers
    drop their partial temporary file), sets `exceeded`, and, when the parser has
    finished, raises FileTooLarge out of `request.POST` / `request.FILES` (DRF:
    `request.data`), which the API maps to 413. With `raise_error=False` it only sets
    `exceeded` and the file is absent from `request.FILES`; the view checks the flag.
    """

    def __init__(self, request=None, *, max_size: int | None = None, raise_error: bool = True):
        """Set the limit (default ARTEFACT_MAX_UPLOAD_SIZE) and how to report passing it."""
        super().__init__(request)
        self.max_size = settings.ARTEFACT_MAX_UPLOAD_SIZE if max_size is None else max_size
        self.raise_error = raise_error
        self.exceeded = False
        self._reported = False

    def new_file(self, field_name, file_name, content_type, content_length, *args, **kwargs):
        """Start counting a new file; refuse it at once if its declared length is too big."""
        super().new_file(field_name, file_name, content_type, content_length, *args, **kwargs)
        if content_length is not None and content_length > self.max_size:
            self._stop()

    def receive_data_chunk(self, raw_data, start):
        """Pass the chunk on, or stop the upload if it takes the file past the limit."""
        if start + len(raw_data) > self.max_size:
            self._stop()
        return raw_data

    def file_complete(self, file_size):
        """Leave the file to the next handlers (this one keeps no bytes)."""
        return None

    def upload_complete(self):
        """Raise FileTooLarge once the parser has finished, if a file passed the limit."""
        if self.exceeded and self.raise_error and not self._reported:
            # Only once: a later read of request.POST then sees an empty form, not a loop
            # of errors (Django's error pages read request.POST too).
            self._reported = True
            raise FileTooLarge(file_name=self.file_name or "", limit=self.max_size)

    def _stop(self):
        """Mark the upload too large and stop it."""
        self.exceeded = True
        # connection_reset=False: Django reads and discards the rest of the body, chunk
        # by chunk, so the client receives the 413 instead of a reset connection.
        raise StopUpload(connection_reset=False)


def install_max_size_upload_handler(request, *, max_size: int | None = None, **kwargs):
    """Put a MaxSizeUploadHandler first on the request and return it.

    Call it before anything reads the body (request.POST, request.FILES, DRF's
    request.data); Django refuses to change the handlers afterwards.
    """
    django_request = getattr(request, "_request", request)
    handler = MaxSizeUploadHandler(django_request, max_size=max_size, **kwargs)
    django_request.upload_handlers = [handler, *django_request.upload_handlers]
    return handler
