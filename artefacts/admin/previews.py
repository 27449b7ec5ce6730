"""The artefact page's CSV preview: the first rows of a delimited file as a table.

Read from the verified bytes (`artefact_open_for_download`, purpose preview), at most
CSV_PREVIEW_MAX_BYTES of them, whatever the file's size or line length.
"""

from __future__ import annotations

import codecs
import csv
import itertools
from dataclasses import dataclass, field

from django.template.defaultfilters import filesizeformat

# Only raster images are shown inline: an SVG can carry script.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg"})
# Delimited text shown as a table, with the delimiter to try first.
CSV_PREVIEW_TYPES = {"text/csv": ",", "text/tab-separated-values": "\t"}
CSV_PREVIEW_ROWS = 20
# The preview reads at most this much of the file, whatever its size or line length.
CSV_PREVIEW_MAX_BYTES = 256 * 1024
CSV_PREVIEW_MAX_COLUMNS = 50
CSV_PREVIEW_MAX_CELL = 200

LEGACY_ENCODING = "cp1252"

PREVIEW_NOT_UTF8 = (
    "The file is not UTF-8 text: it is shown decoded as Windows-1252, some characters may be wrong."
)
PREVIEW_FIRST_ROWS = "The first {rows} rows; download the file for the rest."
PREVIEW_CUT = "Only the first {size} of the file were read for this preview."
PREVIEW_COLUMNS_CUT = "Only the first {columns} columns are shown."
PREVIEW_UNREADABLE = "The first rows cannot be shown: {error}"
PREVIEW_REFUSED = "No preview: {error}"


@dataclass
class CsvPreview:
    """The first rows of a delimited text file, as the change page shows them."""

    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def csv_preview(handle, *, delimiter: str = ",", rows: int = CSV_PREVIEW_ROWS) -> CsvPreview:
    """Return the first `rows` rows (after the header) of an open binary CSV file.

    Reads at most CSV_PREVIEW_MAX_BYTES, so a huge file or a file that is one long
    line costs the same as a small one. Text that is not UTF-8 is shown decoded as
    Windows-1252 (which maps every byte), with a note.
    """
    head = handle.read(CSV_PREVIEW_MAX_BYTES + 1)
    notes = []
    cut = len(head) > CSV_PREVIEW_MAX_BYTES
    head = head[:CSV_PREVIEW_MAX_BYTES]
    try:
        # Incremental: a character split by the byte limit is left out, not an error.
        text = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=not cut)
    except UnicodeDecodeError:
        text = head.decode(LEGACY_ENCODING, errors="replace")
        notes.append(PREVIEW_NOT_UTF8)
    lines = text.splitlines(keepends=True)
    if cut and lines:
        # The last line was cut by the byte limit: show whole lines only.
        lines.pop()
    table = list(
        itertools.islice(csv.reader(lines, delimiter=_delimiter_of(text, delimiter)), rows + 1)
    )
    header, body = (table[0], table[1:]) if table else ([], [])
    width = max((len(row) for row in table), default=0)
    if width > CSV_PREVIEW_MAX_COLUMNS:
        notes.append(PREVIEW_COLUMNS_CUT.format(columns=CSV_PREVIEW_MAX_COLUMNS))
    if len(body) == rows:
        notes.append(PREVIEW_FIRST_ROWS.format(rows=rows))
    elif cut:
        notes.append(PREVIEW_CUT.format(size=filesizeformat(CSV_PREVIEW_MAX_BYTES)))
    return CsvPreview(
        header=_cells(header, width), rows=[_cells(row, width) for row in body], notes=notes
    )


def _delimiter_of(text: str, default: str) -> str:
    """Return the delimiter of the sample (comma, semicolon, tab or pipe), or `default`."""
    sample = "".join(text.splitlines(keepends=True)[: CSV_PREVIEW_ROWS + 1])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return default


def _cells(row: list[str], width: int) -> list[str]:
    """Return the row padded to `width`, at most CSV_PREVIEW_MAX_COLUMNS cells, each cut short."""
    width = min(width, CSV_PREVIEW_MAX_COLUMNS)
    cells = (row + [""] * width)[:width]
    return [
        cell if len(cell) <= CSV_PREVIEW_MAX_CELL else cell[: CSV_PREVIEW_MAX_CELL - 1] + "…"
        for cell in cells
    ]
