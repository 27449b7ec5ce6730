"""Read the rows of a CSV or Excel file, and turn cells into labels, numbers and ages.

Shared by the triangle reader and the exposure reader. Only the standard library is
used; openpyxl is imported inside the Excel reader.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterator

from workflows.reserving.triangles.limits import (
    MAX_FILE_COLUMNS,
    MAX_FILE_ROWS,
    MAX_SCANNED_ROWS,
    MAX_UNPACKED_BYTES,
)
from workflows.reserving.triangles.messages import (
    MSG_EMPTY_FILE,
    MSG_NOT_TEXT,
    MSG_OLD_EXCEL,
    MSG_TOO_MANY_COLUMNS,
    MSG_TOO_MANY_ROWS,
    MSG_TOO_MANY_SCANNED_ROWS,
    MSG_UNPACKS_TOO_LARGE,
    MSG_UNREADABLE_CSV,
    MSG_UNREADABLE_EXCEL,
)

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_EMBEDDED_NUMBER = re.compile(r"^[^\d.+-]*([+-]?\d+(?:\.\d+)?)[^\d]*$")

# A lower-case letter or digit followed by an upper-case one: where camel case splits.
_CAMEL_CASE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

Row = tuple[int, list[object]]
# Called with the problems of a check; raises to stop reading when there are any.
Reporter = Callable[[list[str]], None]


def read_rows(data: bytes, file_name: str, report: Reporter) -> list[Row]:
    """Return the non-empty rows as (row number, cells), trailing empty cells dropped.

    Reading is bounded whatever the file holds: at most MAX_FILE_ROWS non-empty rows
    of MAX_FILE_COLUMNS columns, MAX_SCANNED_ROWS rows in all, and a workbook that
    unpacks to no more than MAX_UNPACKED_BYTES; past a limit the file is refused.
    """
    if not data or not data.strip():
        report([MSG_EMPTY_FILE.format(file=file_name)])
    suffix = file_name.lower().rsplit(".", 1)[-1] if "." in file_name else ""
    if data[:4] == b"PK\x03\x04" or suffix in ("xlsx", "xlsm"):
        raw_rows = _excel_rows(data, file_name, report)
    elif data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or suffix == "xls":
        report([MSG_OLD_EXCEL.format(file=file_name)])
        raw_rows = []
    else:
        raw_rows = _csv_rows(data, file_name, report)
    rows = []
    for number, cells in enumerate(raw_rows, start=1):
        if number > MAX_SCANNED_ROWS:
            report(
                [
                    MSG_TOO_MANY_SCANNED_ROWS.format(
                        row=number, file=file_name, limit=MAX_SCANNED_ROWS
                    )
                ]
            )
        cells = [clean(cell) for cell in cells]
        while cells and cells[-1] is None:
            cells.pop()
        if not cells:
            continue
        if len(cells) > MAX_FILE_COLUMNS:
            report(
                [MSG_TOO_MANY_COLUMNS.format(row=number, file=file_name, limit=MAX_FILE_COLUMNS)]
            )
        if len(rows) == MAX_FILE_ROWS:
            report([MSG_TOO_MANY_ROWS.format(row=number, file=file_name, limit=MAX_FILE_ROWS)])
        rows.append((number, cells))
    if not rows:
        report([MSG_EMPTY_FILE.format(file=file_name)])
    return rows


def _excel_rows(data: bytes, file_name: str, report: Reporter) -> Iterator[tuple]:
    """Yield the first sheet's rows one at a time (read-only: nothing else is loaded)."""
    import openpyxl  # Imported here: the web app never needs it at start-up.

    _check_unpacked_size(data, file_name, report)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged workbook
        report(
            [MSG_UNREADABLE_EXCEL.format(file=file_name, error=str(error) or type(error).__name__)]
        )
        return
    try:
        sheet = workbook.worksheets[0]
        yield from sheet.iter_rows(values_only=True, max_col=MAX_FILE_COLUMNS + 1)
    except Exception as error:  # a damaged sheet shows only while its rows are read
        report(
            [MSG_UNREADABLE_EXCEL.format(file=file_name, error=str(error) or type(error).__name__)]
        )
    finally:
        workbook.close()


def _check_unpacked_size(data: bytes, file_name: str, report: Reporter) -> None:
    """Refuse a workbook that would unpack to more than MAX_UNPACKED_BYTES (a ZIP bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            size = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
        report([MSG_UNREADABLE_EXCEL.format(file=file_name, error=str(error))])
        return
    if size > MAX_UNPACKED_BYTES:
        report([MSG_UNPACKS_TOO_LARGE.format(file=file_name, size=size, limit=MAX_UNPACKED_BYTES)])


def _csv_rows(data: bytes, file_name: str, report: Reporter) -> Iterator[list[str]]:
    if b"\x00" in data:
        report([MSG_NOT_TEXT.format(file=file_name)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as error:  # e.g. a field longer than the csv module's limit
        report([MSG_UNREADABLE_CSV.format(file=file_name, error=error)])


def clean(cell: object) -> object:
    """Return None for an empty cell, a stripped string, or the cell's own value."""
    if cell is None:
        return None
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def column_letter(index: int) -> str:
    """Return the spreadsheet letter of a 0-based column index: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def column_ref(index: int, header: object) -> str:
    """Return how a message names a column: its letter and, if any, its header."""
    if header is None:
        return column_letter(index)
    return f"{column_letter(index)} ({text(header)!r})"


def text(value: object) -> str:
    """Return a label for a cell value: 1981.0 → '1981', a date → ISO date."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def number(value: object) -> float:
    """Return a finite float, or raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        digits = value.replace(" ", "").replace("\u00a0", "")
        if _THOUSANDS.match(digits):
            digits = digits.replace(",", "")
        result = float(digits)
    else:
        raise ValueError(value)
    if not math.isfinite(result):
        raise ValueError(value)
    return result


def age(value: object) -> int | float:
    """Return a development age from a number or a label such as '12', '12m' or 'Dev 12'."""
    try:
        result = number(value)
    except ValueError:
        match = _EMBEDDED_NUMBER.match(value) if isinstance(value, str) else None
        if not match:
            raise
        result = float(match.group(1))
    return int(result) if result.is_integer() else result


def normalise_header(value: object) -> str:
    """Return a header lower-cased with spaces, hyphens and dots turned into underscores.

    Words run together in camel case are split first: AccidentYear → accident_year.
    """
    if value is None:
        return ""
    split = _CAMEL_CASE.sub("_", text(value).strip())
    return re.sub(r"[\s\-._]+", "_", split.lower()).strip("_")


def fmt(value: float | int) -> str:
    """Format a number for a message: integral values without a decimal point."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
