"""What reading one uploaded file may cost (hardening finding 2, issue 15).

An 830 KB workbook holding 3,000,000 rows was accepted as a triangle; used as a run's
input it held a web request for 110 s at 2.8 GB before the 400. Reading now stops at
fixed limits, whatever the file claims, and says which limit and where.
"""

import io
import zipfile

import pytest
from openpyxl import Workbook

from workflows.reserving import TriangleError, read_triangle
from workflows.reserving.triangles.limits import (
    MAX_FILE_COLUMNS,
    MAX_FILE_ROWS,
    MAX_SCANNED_ROWS,
    MAX_UNPACKED_BYTES,
)


def read(data, name):
    return read_triangle(data, name, cumulative=True, measure="paid")


def workbook_bytes(rows) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.slow  # writing a workbook of 55,000 rows takes a few seconds
def test_a_workbook_with_too_many_rows_is_refused_at_the_limit_without_loading_the_rest():
    rows = [("origin", "development", "value")] + [
        (2000 + n % 20, 12 * (n % 20 + 1), n) for n in range(MAX_FILE_ROWS + 5_000)
    ]
    data = workbook_bytes(rows)

    with pytest.raises(TriangleError) as refused:
        read(data, "huge.xlsx")

    # Read one row at a time and stopped at the first row past the limit.
    message = str(refused.value)
    assert message.startswith(f"row {MAX_FILE_ROWS + 1}: 'huge.xlsx' has more than 50,000 rows")


def test_a_csv_with_too_many_rows_is_refused_too():
    lines = ["origin,development,value"] + [
        f"{2000 + n % 20},{12 * (n % 20 + 1)},{n}" for n in range(MAX_FILE_ROWS + 10)
    ]
    with pytest.raises(TriangleError, match="has more than 50,000 rows"):
        read("\n".join(lines).encode(), "huge.csv")


def test_a_sheet_formatted_far_below_its_data_names_the_row_to_delete_from():
    rows = [("origin", "development", "value"), (2020, 12, 1)] + [
        () for _ in range(MAX_SCANNED_ROWS + 10)
    ]
    data = "\n".join(",".join(map(str, row)) for row in rows).encode()
    with pytest.raises(TriangleError, match="runs past row 200,000, mostly empty"):
        read(data, "padded.csv")


def test_too_many_columns_is_refused():
    header = ["origin", *[str(12 * n) for n in range(1, MAX_FILE_COLUMNS + 5)]]
    data = workbook_bytes([header, [2020, *range(MAX_FILE_COLUMNS + 3)]])
    with pytest.raises(TriangleError, match=f"has more than {MAX_FILE_COLUMNS} columns"):
        read(data, "wide.xlsx")


def test_a_workbook_that_unpacks_to_too_much_is_refused_before_it_is_opened():
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b" " * (MAX_UNPACKED_BYTES + 1))
    data = packed.getvalue()
    assert len(data) < 1024 * 1024  # a small upload

    with pytest.raises(TriangleError) as refused:
        read(data, "bomb.xlsx")
    assert "'bomb.xlsx' unpacks to 67,108,873 bytes, more than the 67,108,864" in str(refused.value)


def test_a_csv_field_longer_than_the_csv_module_reads_is_a_clear_refusal():
    data = b"origin,development,value\n2020,12," + b'"' + b"9" * 200_000 + b'"\n'
    with pytest.raises(TriangleError, match=r"'long\.csv' is not a readable CSV file"):
        read(data, "long.csv")
