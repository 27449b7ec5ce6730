"""Format detection: what the bytes of a file are, from their content, checked against its name.

The start of the file is sniffed for magic numbers and text rules; ZIP and OLE2
containers are opened far enough to tell Office formats apart. The name and the
content must agree: a CSV named .xlsx is refused, as is content nothing recognises.
"""

from __future__ import annotations

import zipfile

from records.exceptions import InvalidInput

from .formats import (
    FORMATS,
    GZIP_MAGIC,
    JPEG_MAGIC,
    OLE2_MAGIC,
    PARQUET_MAGIC,
    PDF_MAGIC,
    PNG_MAGIC,
    ZIP_MAGICS,
    FileFormat,
)

# How much of the start of a file is inspected for magic numbers and text rules.
SNIFF_SIZE = 64 * 1024

CONTENT_MISMATCH_MESSAGE = (
    "The content of “{file_name}” does not match its name: the name says {claimed}, "
    "the content is {detected}."
)
UNRECOGNISED_CONTENT_MESSAGE = (
    "The format of “{file_name}” is not recognised: it has no known extension and its "
    "content is neither a known binary format nor UTF-8 text."
)


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
