"""The allow-list: which file formats each artefact type accepts, known by extension and content."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from artefacts.choices import ArtefactType
from records.exceptions import InvalidInput

UNKNOWN_ARTEFACT_TYPE_MESSAGE = "Unknown artefact type “{artefact_type}”."

# Magic numbers of the binary formats the allow-list knows.
PDF_MAGIC = b"%PDF-"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


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
