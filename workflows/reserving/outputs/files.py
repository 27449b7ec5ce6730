"""Deterministic bytes: fixed decimals, fixed zip dates, PNGs without dates or software.

A replay compares the SHA-256 of each output with the stored artefact's, so the same
result must give the same bytes, in another process too.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile

AMOUNT_DECIMALS = 2
RATIO_DECIMALS = 6
# Workbook timestamps and zip entry dates: fixed so the same result gives the same bytes.
FIXED_TIMESTAMP = dt.datetime(2000, 1, 1)
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
PNG_METADATA = {"Software": None}
CHART_DPI = 100


class FixedDateZipFile(zipfile.ZipFile):
    """A ZipFile whose entries all carry the same date, so the archive bytes are repeatable."""

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if not isinstance(zinfo_or_arcname, zipfile.ZipInfo):
            zinfo_or_arcname = zipfile.ZipInfo(zinfo_or_arcname, date_time=_ZIP_DATE_TIME)
            zinfo_or_arcname.compress_type = self.compression
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        # openpyxl streams worksheets through temporary files, whose mtime would leak in.
        with open(filename, "rb") as handle:
            data = handle.read()
        self.writestr(arcname or os.path.basename(filename), data, compress_type, compresslevel)


def png(figure) -> bytes:
    """Return a matplotlib figure as PNG bytes without date or software metadata."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=CHART_DPI, metadata=PNG_METADATA)
    return buffer.getvalue()


def fixed(value: float | None, decimals: int) -> str:
    """Format with fixed decimals; '' for None; never '-0.00'."""
    if value is None:
        return ""
    return f"{round(value, decimals) + 0.0:.{decimals}f}"


def age_text(age: int | float | None) -> str:
    """Return an age without a trailing '.0'; '' for None."""
    if age is None:
        return ""
    if isinstance(age, float) and age.is_integer():
        return str(int(age))
    return str(age)
