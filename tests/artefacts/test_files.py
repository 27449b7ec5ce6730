"""The byte-handling core of artefacts: allow-list, sniffing, streamed storage, integrity."""

import gzip
import hashlib
import io
import re
import runpy
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test.client import BOUNDARY, MULTIPART_CONTENT, RequestFactory, encode_multipart

from artefacts import files
from artefacts.choices import ArtefactType
from artefacts.files import (
    ARTEFACT_TYPE_FORMATS,
    CONTENT_MISMATCH_MESSAGE,
    EMPTY_FILE_MESSAGE,
    FORMATS,
    ArtefactFileUnavailable,
    FileStatus,
    FileTooLarge,
    MaxSizeUploadHandler,
    discard_stored_file,
    install_max_size_upload_handler,
    open_verified,
    record_file_problem,
    safe_file_name,
    store_artefact_file,
    verify_artefact_file,
)
from audit.models import AuditLog
from records.exceptions import Conflict, InvalidInput
from tests.factories import TRIANGLE_CSV, ArtefactFactory

pytestmark = pytest.mark.django_db

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "config" / "settings" / "base.py"


# --- Real sample files ---------------------------------------------------------------------


def png_bytes() -> bytes:
    """Return a valid 1×1 PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return files.PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def jpeg_bytes() -> bytes:
    """Return the start of a JFIF JPEG (enough for its magic number)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def pdf_bytes() -> bytes:
    """Return a minimal one-page PDF."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )


def ooxml_bytes(part: str, *, macros: bool = False) -> bytes:
    """Return an Office Open XML package whose main part lives in `part` (xl, word, ppt)."""
    content_type = "application/vnd.ms-excel.sheet.macroEnabled.main+xml" if macros else "x"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<?xml version="1.0"?><Types><Override ContentType="{content_type}"/></Types>',
        )
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(f"{part}/document.xml", "<document/>")
    return buffer.getvalue()


def xlsx_bytes() -> bytes:
    """Return a real Excel workbook written by openpyxl."""
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["origin", "development", "value"])
    sheet.append([2020, 12, 100])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def zip_bytes() -> bytes:
    """Return a plain ZIP archive holding one CSV."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("triangle.csv", TRIANGLE_CSV)
    return buffer.getvalue()


def ole2_bytes(stream_name: str) -> bytes:
    """Return a minimal OLE2 compound file whose directory holds one named stream."""
    end_of_chain, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = bytearray(512)
    header[0:8] = files.OLE2_MAGIC
    struct.pack_into("<HHH", header, 24, 0x3E, 3, 0xFFFE)
    struct.pack_into("<HH", header, 30, 9, 6)
    struct.pack_into("<I", header, 44, 1)  # one FAT sector
    struct.pack_into("<I", header, 48, 1)  # directory starts at sector 1
    struct.pack_into("<III", header, 56, 4096, end_of_chain, 0)
    struct.pack_into("<II", header, 68, end_of_chain, 0)
    struct.pack_into("<I", header, 76, 0)  # the FAT is sector 0
    for index in range(1, 109):
        struct.pack_into("<I", header, 76 + 4 * index, free)
    fat = bytearray(struct.pack("<I", free) * 128)
    struct.pack_into("<II", fat, 0, fat_sector, end_of_chain)

    def entry(name: str, kind: int) -> bytes:
        raw = bytearray(128)
        encoded = (name + "\0").encode("utf-16-le")
        raw[: len(encoded)] = encoded
        struct.pack_into("<HB", raw, 64, len(encoded), kind)
        return bytes(raw)

    directory = entry("Root Entry", 5) + entry(stream_name, 2) + bytes(256)
    return bytes(header) + bytes(fat) + directory


def parquet_bytes() -> bytes:
    """Return bytes shaped like a Parquet file: magic, data, footer length, magic."""
    return b"PAR1" + b"\x15\x00" * 20 + struct.pack("<I", 40) + b"PAR1"


NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n'


def store(engagement, content: bytes, file_name: str, artefact_type: str, **kwargs):
    """Store bytes through the public entry point, as an upload would."""
    return store_artefact_file(
        engagement_id=engagement.pk,
        file=SimpleUploadedFile(file_name, content),
        file_name=file_name,
        artefact_type=artefact_type,
        **kwargs,
    )


def files_under(folder: Path) -> list[Path]:
    """Return every file below a folder (none if it does not exist)."""
    return [path for path in Path(folder).rglob("*") if path.is_file()]


# --- Storing ---------------------------------------------------------------------------------


def test_store_computes_hash_size_mime_and_keeps_the_bytes(engagement, media_root):
    stored = store(engagement, TRIANGLE_CSV, "Paid triangle.csv", ArtefactType.TRIANGLE)

    digest = hashlib.sha256(TRIANGLE_CSV).hexdigest()
    assert stored.content_hash == digest
    assert stored.file_size == len(TRIANGLE_CSV)
    assert stored.mime_type == "text/csv"
    assert stored.format == "csv"
    assert stored.file_name == "Paid triangle.csv"
    assert stored.storage_bucket == "artefacts"
    assert stored.reused is False
    assert stored.name == f"artefacts/{engagement.pk}/{digest[:2]}/{digest}/Paid_triangle.csv"
    assert (media_root / stored.name).read_bytes() == TRIANGLE_CSV


def test_store_reads_a_large_file_in_chunks_and_hashes_every_byte(engagement, media_root):
    content = b"origin,development,value\n" + b"2020,12,100.25\n" * 200_000  # ~3 MB
    stored = store(engagement, content, "big.csv", ArtefactType.DATA_FILE)
    assert stored.file_size == len(content) > files.CHUNK_SIZE * 10
    assert stored.content_hash == hashlib.sha256(content).hexdigest()
    assert (media_root / stored.name).read_bytes() == content


def test_store_accepts_uploads_and_plain_binary_file_objects(engagement, tmp_path, settings):
    digest = hashlib.sha256(TRIANGLE_CSV).hexdigest()
    source = tmp_path / "triangle.csv"
    source.write_bytes(TRIANGLE_CSV)
    temporary = TemporaryUploadedFile("triangle.csv", "text/csv", len(TRIANGLE_CSV), None)
    temporary.write(TRIANGLE_CSV)
    with source.open("rb") as plain:
        inputs = [
            SimpleUploadedFile("triangle.csv", TRIANGLE_CSV),
            temporary,
            ContentFile(TRIANGLE_CSV, name="triangle.csv"),
            io.BytesIO(TRIANGLE_CSV),
            plain,
        ]
        for upload in inputs:
            stored = store_artefact_file(
                engagement_id=engagement.pk,
                file=upload,
                file_name="triangle.csv",
                artefact_type=ArtefactType.TRIANGLE,
            )
            assert (stored.content_hash, stored.file_size) == (digest, len(TRIANGLE_CSV))
    temporary.close()


def test_store_refuses_a_text_mode_file():
    with pytest.raises(TypeError, match="binary mode"):
        store_artefact_file(
            engagement_id=uuid.uuid4(),
            file=io.StringIO("a,b\n"),
            file_name="a.csv",
            artefact_type=ArtefactType.CSV,
        )


def test_same_bytes_uploaded_twice_reuse_the_stored_file(engagement, media_root):
    first = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    second = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    assert second.name == first.name
    assert second.reused is True
    assert files_under(media_root) == [media_root / first.name]


def test_same_bytes_for_another_engagement_or_name_are_stored_apart(engagement, media_root):
    other = ArtefactFactory().engagement
    first = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    renamed = store(engagement, TRIANGLE_CSV, "copy.csv", ArtefactType.TRIANGLE)
    elsewhere = store(other, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    assert len({first.name, renamed.name, elsewhere.name}) == 3
    assert str(other.pk) in elsewhere.name


def test_different_bytes_never_overwrite_a_damaged_copy(engagement, media_root):
    first = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    damaged = media_root / first.name
    damaged.write_bytes(b"tampered")

    second = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)

    assert second.name != first.name
    assert second.reused is False
    assert damaged.read_bytes() == b"tampered"  # left as evidence for verify_artefacts
    assert (media_root / second.name).read_bytes() == TRIANGLE_CSV


def test_empty_file_is_refused_and_nothing_is_stored(engagement, media_root):
    with pytest.raises(InvalidInput, match=re.escape(EMPTY_FILE_MESSAGE.format(file_name="e.csv"))):
        store(engagement, b"", "e.csv", ArtefactType.TRIANGLE)
    assert files_under(media_root) == []


def test_file_over_the_limit_is_refused_and_leaves_nothing_behind(
    engagement, media_root, settings, tmp_path
):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    # A file-like object has no declared size: the limit stops the copy midway.
    content = b"a,b\n" * 100_000
    with pytest.raises(FileTooLarge) as refused:
        store_artefact_file(
            engagement_id=engagement.pk,
            file=io.BytesIO(content),
            file_name="big.csv",
            artefact_type=ArtefactType.CSV,
            max_size=1000,
        )
    assert refused.value.limit == 1000
    assert isinstance(refused.value, InvalidInput)
    assert refused.value.message == (
        "The file “big.csv” is larger than the maximum upload size of 1000 bytes (1000 bytes)."
    )
    assert files_under(media_root) == []
    assert files_under(tmp_path / "spool") == []


def test_default_limit_comes_from_settings_and_declared_size_is_refused_early(
    engagement, media_root, settings
):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 10 * 1024 * 1024
    upload = SimpleUploadedFile("big.csv", b"a,b\n")
    upload.size = 11 * 1024 * 1024  # what the client declared; refused before reading
    with pytest.raises(FileTooLarge, match=r"maximum upload size of 10 MB \(10485760 bytes\)"):
        store_artefact_file(
            engagement_id=engagement.pk,
            file=upload,
            file_name="big.csv",
            artefact_type=ArtefactType.CSV,
        )
    assert files_under(media_root) == []


def test_the_default_limit_is_100_mb(settings):
    assert settings.ARTEFACT_MAX_UPLOAD_SIZE == 104857600


def test_a_file_exactly_at_the_limit_is_accepted(engagement):
    stored = store(engagement, TRIANGLE_CSV, "t.csv", ArtefactType.CSV, max_size=len(TRIANGLE_CSV))
    assert stored.file_size == len(TRIANGLE_CSV)


def test_a_failure_while_saving_leaves_no_partial_file(engagement, media_root, monkeypatch):
    class FailingFile(files.storage.File):
        def chunks(self, chunk_size=None):
            yield self.read(10)
            raise OSError("disk full")

    monkeypatch.setattr(files.storage, "File", FailingFile)
    with pytest.raises(OSError, match="disk full"):
        store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    assert files_under(media_root) == []


def test_a_short_write_by_storage_is_removed(engagement, media_root, monkeypatch):
    monkeypatch.setattr(FileSystemStorage, "size", lambda self, name: 1)
    with pytest.raises(OSError, match="Storage kept 1 bytes"):
        store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    assert files_under(media_root) == []


# --- Formats -------------------------------------------------------------------------------


ACCEPTED = [
    # (file name, content, artefact type, expected format, expected MIME type)
    ("triangle.csv", TRIANGLE_CSV, "triangle", "csv", "text/csv"),
    ("bom.csv", b"\xef\xbb\xbf" + TRIANGLE_CSV, "csv", "csv", "text/csv"),
    ("claims.tsv", b"origin\tvalue\n2020\t100\n", "data_file", "tsv", "text/tab-separated-values"),
    ("names.csv", "assured,amount\nZoë Müller,1\n".encode(), "csv", "csv", "text/csv"),
    ("cashflows.json", b'[{"t": 1, "cf": -100.0}]', "projection", "json", "application/json"),
    ("ldf.parquet", parquet_bytes(), "parquet", "parquet", "application/vnd.apache.parquet"),
    ("model.xlsm", ooxml_bytes("xl", macros=True), "excel", "xlsm", FORMATS["xlsm"].mime_type),
    ("legacy.xls", ole2_bytes("Workbook"), "excel", "xls", "application/vnd.ms-excel"),
    ("report.pdf", pdf_bytes(), "report", "pdf", "application/pdf"),
    ("memo.docx", ooxml_bytes("word"), "word", "docx", FORMATS["docx"].mime_type),
    ("memo.doc", ole2_bytes("WordDocument"), "word", "doc", "application/msword"),
    ("board.pptx", ooxml_bytes("ppt"), "report", "pptx", FORMATS["pptx"].mime_type),
    ("notes.md", b"# Reserving memo\n\nIBNR up 3%.\n", "markdown", "md", "text/markdown"),
    ("pack.html", b"<!doctype html><html><body>CSM</body></html>", "report", "html", "text/html"),
    ("ldf.png", png_bytes(), "chart", "png", "image/png"),
    ("ldf.JPG", jpeg_bytes(), "graph", "jpeg", "image/jpeg"),
    ("ldf.svg", SVG, "graph", "svg", "image/svg+xml"),
    ("chain.ipynb", NOTEBOOK, "notebook", "ipynb", "application/x-ipynb+json"),
    ("chain.py", b"import math\nprint(math.pi)\n", "script", "py", "text/x-python"),
    ("chain.R", b"library(ChainLadder)\n", "script", "r", "text/x-r"),
    ("extract.sql", b"select * from claims;\n", "script", "sql", "application/sql"),
    ("run.log", b"2025-01-01 started\n", "log", "log", "text/plain"),
    ("run.yaml", b"tail_factor: 1.02\n", "config", "yaml", "application/yaml"),
    ("run.toml", b"tail_factor = 1.02\n", "metadata", "toml", "application/toml"),
    ("bundle.zip", zip_bytes(), "archive", "zip", "application/zip"),
    ("workbook-as-zip.zip", ooxml_bytes("xl"), "archive", "zip", "application/zip"),
    ("bundle.tar.gz", gzip.compress(b"tar"), "archive", "gz", "application/gzip"),
    ("claims.csv.gz", gzip.compress(TRIANGLE_CSV), "data_file", "gz", "application/gzip"),
    ("README", b"plain words\n", "other", "txt", "text/plain"),
    ("magic.csv", b"PAR1,%PDF-\n1,2\n", "csv", "csv", "text/csv"),
    ("scan", pdf_bytes(), "other", "pdf", "application/pdf"),
]


@pytest.mark.parametrize(
    ("file_name", "content", "artefact_type", "fmt", "mime_type"),
    ACCEPTED,
    ids=[row[0] for row in ACCEPTED],
)
def test_allowed_formats_are_detected_from_content_and_name(
    engagement, file_name, content, artefact_type, fmt, mime_type
):
    stored = store(engagement, content, file_name, artefact_type)
    assert (stored.format, stored.mime_type) == (fmt, mime_type)


def test_a_real_excel_workbook_is_accepted(engagement):
    stored = store(engagement, xlsx_bytes(), "triangle.xlsx", ArtefactType.EXCEL)
    assert stored.format == "xlsx"
    assert stored.mime_type == FORMATS["xlsx"].mime_type


def test_every_artefact_type_has_an_allow_list_of_known_formats():
    assert set(ARTEFACT_TYPE_FORMATS) == set(ArtefactType.values)
    for keys in ARTEFACT_TYPE_FORMATS.values():
        assert keys
        assert set(keys) <= set(FORMATS)


def test_a_disallowed_format_is_refused_naming_type_format_and_allowed_ones(engagement, media_root):
    with pytest.raises(InvalidInput) as refused:
        store(engagement, png_bytes(), "chart.png", ArtefactType.TRIANGLE)
    assert refused.value.message == (
        "Artefact type “triangle” does not accept PNG image (image/png) files (“chart.png”); "
        "allowed formats: .csv, .tsv, .tab, .txt, .json, .xlsx, .xls, .parquet."
    )
    assert files_under(media_root) == []


def test_a_disallowed_format_without_extension_is_refused_after_sniffing(engagement):
    with pytest.raises(InvalidInput, match=r"does not accept PDF \(application/pdf\) files"):
        store(engagement, pdf_bytes(), "scan", ArtefactType.TRIANGLE)


@pytest.mark.parametrize("file_name", ["setup.exe", "macro.xlsb", "claims.csv.bz2"])
def test_an_unknown_extension_is_refused_even_for_other(engagement, file_name):
    with pytest.raises(InvalidInput, match=r"Artefact type “other” does not accept “\.\w+” \("):
        store(engagement, b"MZ\x90\x00", file_name, ArtefactType.OTHER)


def test_an_unknown_artefact_type_is_refused(engagement):
    with pytest.raises(InvalidInput, match="Unknown artefact type “spreadsheet”"):
        store(engagement, TRIANGLE_CSV, "t.csv", "spreadsheet")


MISMATCHES = [
    # (file name, content, artefact type, what the message says the content is)
    ("triangle.csv", png_bytes(), "triangle", "PNG image (image/png)"),
    ("triangle.csv", pdf_bytes(), "triangle", "PDF (application/pdf)"),
    ("triangle.xlsx", TRIANGLE_CSV, "excel", "UTF-8 text that is not Excel workbook"),
    ("triangle.xlsx", ooxml_bytes("word"), "excel", "Word document"),
    ("triangle.xlsx", zip_bytes(), "excel", "ZIP archive (application/zip)"),
    ("triangle.xls", ole2_bytes("WordDocument"), "excel", "Word 97-2003 document"),
    ("memo.doc", ole2_bytes("Contents"), "word", "not a recognised format"),
    ("cashflows.json", TRIANGLE_CSV, "projection", "UTF-8 text that is not JSON"),
    ("report.pdf", b"not really a pdf", "pdf", "UTF-8 text that is not PDF"),
    ("ldf.parquet", b"PAR1" + b"\x00" * 20, "parquet", "not a recognised format"),
    ("latin1.csv", "café,1\n".encode("latin-1"), "csv", "text formats must be UTF-8 encoded"),
    ("nul.txt", b"a\x00b\n", "log", "not a recognised format"),
    ("chart.svg", b"<html></html>", "chart", "UTF-8 text that is not SVG image"),
    ("ldf.png", jpeg_bytes(), "chart", "JPEG image (image/jpeg)"),
]


@pytest.mark.parametrize(
    ("file_name", "content", "artefact_type", "detected"),
    MISMATCHES,
    ids=[f"{row[0]}-{index}" for index, row in enumerate(MISMATCHES)],
)
def test_content_that_does_not_match_the_name_is_refused(
    engagement, media_root, file_name, content, artefact_type, detected
):
    claimed = files.format_for_name(file_name).describe()
    expected = CONTENT_MISMATCH_MESSAGE.format(
        file_name=file_name, claimed=claimed, detected="DETECTED"
    )
    prefix, _, suffix = re.escape(expected).partition("DETECTED")
    with pytest.raises(InvalidInput, match=f"^{prefix}.*{re.escape(detected)}.*{suffix}$"):
        store(engagement, content, file_name, artefact_type)
    assert files_under(media_root) == []


def test_unrecognised_binary_without_extension_is_refused(engagement):
    with pytest.raises(InvalidInput, match="The format of “blob” is not recognised"):
        store(engagement, b"\x00\x01\x02\xff", "blob", ArtefactType.OTHER)


# --- Names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("triangle.csv", "triangle.csv"),
        ("Q4 triangle (final).csv", "Q4_triangle_final.csv"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ann\\memo.docx", "memo.docx"),
        ("..hidden.csv", "hidden.csv"),
        ("réserves 2024.xlsx", "réserves_2024.xlsx"),
        ("<script>.html", "script.html"),
        ("", "file"),
        ("a" * 300 + ".csv", "a" * 146 + ".csv"),
    ],
)
def test_safe_file_name(given, safe):
    assert safe_file_name(given) == safe


def test_the_storage_path_holds_engagement_and_hash_not_the_name_alone(engagement):
    stored = store(engagement, TRIANGLE_CSV, "../../outside.csv", ArtefactType.TRIANGLE)
    parts = stored.name.split("/")
    assert parts[:2] == ["artefacts", str(engagement.pk)]
    assert parts[2] == stored.content_hash[:2]
    assert parts[3] == stored.content_hash
    assert parts[4] == "outside.csv"
    assert stored.file_name == "outside.csv"


# --- Discarding ------------------------------------------------------------------------------


def test_discard_removes_fresh_bytes_but_keeps_shared_ones(engagement, media_root):
    stored = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    reused = store(engagement, TRIANGLE_CSV, "triangle.csv", ArtefactType.TRIANGLE)
    assert discard_stored_file(reused) is False
    assert (media_root / stored.name).exists()
    assert discard_stored_file(stored) is True
    assert files_under(media_root) == []


def test_discard_keeps_bytes_an_artefact_points_to(media_root):
    artefact = ArtefactFactory()
    stored = files.StoredFile(
        name=artefact.file.name,
        content_hash=artefact.content_hash,
        file_size=artefact.file_size,
        mime_type="text/csv",
        file_name="triangle.csv",
        storage_bucket="artefacts",
        format="csv",
    )
    assert discard_stored_file(stored) is False
    assert (media_root / artefact.file.name).exists()


# --- Verifying -------------------------------------------------------------------------------


def test_verify_passes_for_intact_bytes():
    artefact = ArtefactFactory()
    check = verify_artefact_file(artefact)
    assert check.ok
    assert check.status == FileStatus.OK
    assert check.actual_hash == check.expected_hash == artefact.content_hash
    assert check.actual_size == len(TRIANGLE_CSV)


def test_verify_reports_a_missing_file(media_root):
    artefact = ArtefactFactory()
    (media_root / artefact.file.name).unlink()
    check = verify_artefact_file(artefact)
    assert check.status == FileStatus.MISSING
    assert check.actual_hash is None
    assert check.expected_hash == artefact.content_hash


def test_verify_reports_an_artefact_without_a_file_as_missing():
    artefact = ArtefactFactory(file="")
    assert verify_artefact_file(artefact).status == FileStatus.MISSING


def test_verify_reports_one_changed_byte_as_corrupted(media_root):
    artefact = ArtefactFactory()
    path = media_root / artefact.file.name
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))

    check = verify_artefact_file(artefact)

    assert check.status == FileStatus.CORRUPTED
    assert check.actual_hash == hashlib.sha256(bytes(data)).hexdigest()
    assert check.actual_hash != check.expected_hash
    assert check.actual_size == check.expected_size


def test_open_verified_returns_the_checked_bytes_from_the_start():
    artefact = ArtefactFactory()
    with open_verified(artefact) as handle:
        assert handle.read() == TRIANGLE_CSV


def test_open_verified_refuses_missing_and_corrupted_files(media_root):
    missing, corrupted = ArtefactFactory(), ArtefactFactory(content=b"a,b\n1,2\n")
    (media_root / missing.file.name).unlink()
    (media_root / corrupted.file.name).write_bytes(b"a,b\n1,3\n")

    with pytest.raises(ArtefactFileUnavailable, match="is missing from storage") as refused:
        open_verified(missing)
    assert isinstance(refused.value, Conflict)
    assert refused.value.check.status == FileStatus.MISSING
    assert str(missing.pk) in refused.value.message

    with pytest.raises(ArtefactFileUnavailable, match="does not match its record") as refused:
        open_verified(corrupted)
    assert refused.value.check.status == FileStatus.CORRUPTED
    assert corrupted.content_hash in refused.value.message


def test_record_file_problem_writes_a_critical_artefact_access_event(media_root):
    artefact = ArtefactFactory()
    (media_root / artefact.file.name).unlink()
    check = verify_artefact_file(artefact)

    event = record_file_problem(artefact=artefact, check=check, source="download")

    event = AuditLog.objects.get(pk=event.pk)
    assert (event.action, event.severity) == ("artefact_access", "critical")
    assert event.resource_id == artefact.pk
    assert event.engagement_id == artefact.engagement_id
    assert event.description == check.message(artefact)
    assert event.metadata["integrity_check"] == "missing"
    assert event.metadata["expected_hash"] == artefact.content_hash
    assert event.metadata["source"] == "download"


# --- Upload handler --------------------------------------------------------------------------


def parse_upload(content: bytes, handlers):
    """Parse a multipart body holding one file through Django's parser and the handlers."""
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("triangle.csv", content)})
    meta = {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(body))}
    return MultiPartParser(meta, io.BytesIO(body), handlers).parse()


def test_upload_handler_lets_a_file_within_the_limit_through():
    limit = MaxSizeUploadHandler(max_size=len(TRIANGLE_CSV))
    _, uploaded = parse_upload(TRIANGLE_CSV, [limit, MemoryFileUploadHandler()])
    assert uploaded["file"].read() == TRIANGLE_CSV
    assert limit.exceeded is False


def test_upload_handler_stops_a_file_over_the_limit_and_raises_file_too_large(settings, tmp_path):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # spool to disk, to see the partial file go
    limit = MaxSizeUploadHandler(max_size=100)
    with pytest.raises(FileTooLarge, match=r"maximum upload size of 100 bytes") as refused:
        parse_upload(b"a,b\n" * 10_000, [limit, TemporaryFileUploadHandler()])
    assert refused.value.limit == 100
    assert limit.exceeded is True
    assert files_under(tmp_path) == []


def test_upload_handler_can_flag_instead_of_raising():
    limit = MaxSizeUploadHandler(max_size=100, raise_error=False)
    _, uploaded = parse_upload(b"a,b\n" * 10_000, [limit, MemoryFileUploadHandler()])
    assert limit.exceeded is True
    assert "file" not in uploaded


def test_upload_handler_defaults_to_the_setting(settings):
    settings.ARTEFACT_MAX_UPLOAD_SIZE = 1234
    assert MaxSizeUploadHandler().max_size == 1234


def test_installed_handler_makes_request_files_raise_file_too_large():
    body = {"file": SimpleUploadedFile("triangle.csv", b"a,b\n" * 1000)}
    request = RequestFactory().post("/artefacts/", body)
    handler = install_max_size_upload_handler(request, max_size=100)
    assert request.upload_handlers[0] is handler
    with pytest.raises(FileTooLarge):
        request.FILES  # noqa: B018
    # The refusal is raised once; a later read (an error page, a log) sees an empty form.
    assert not request.FILES


# --- Settings --------------------------------------------------------------------------------


def load_settings(monkeypatch, **env):
    """Run the base settings module with these environment variables; return its names."""
    for name in (
        "ARTEFACT_STORAGE",
        "AWS_STORAGE_BUCKET_NAME",
        "AWS_S3_ENDPOINT_URL",
        "AWS_S3_REGION_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_S3_CUSTOM_DOMAIN",
        "ARTEFACT_MAX_UPLOAD_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SECRET_KEY", "settings-test-key")
    return runpy.run_path(str(SETTINGS_FILE))


def test_storage_defaults_to_the_local_file_system(monkeypatch):
    loaded = load_settings(monkeypatch)
    assert loaded["STORAGES"]["default"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage"
    }
    assert loaded["ARTEFACT_MAX_UPLOAD_SIZE"] == 104857600


def test_a_bucket_name_switches_storage_to_s3(monkeypatch):
    loaded = load_settings(
        monkeypatch,
        AWS_STORAGE_BUCKET_NAME="actuary-artefacts",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        AWS_S3_REGION_NAME="eu-west-2",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        ARTEFACT_MAX_UPLOAD_SIZE="1048576",
    )
    storage = loaded["STORAGES"]["default"]
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    options = storage["OPTIONS"]
    assert options["bucket_name"] == "actuary-artefacts"
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region_name"] == "eu-west-2"
    assert (options["access_key"], options["secret_key"]) == ("key", "secret")
    assert options["file_overwrite"] is False
    assert "custom_domain" not in options
    assert loaded["ARTEFACT_MAX_UPLOAD_SIZE"] == 1048576

    s3 = pytest.importorskip("storages.backends.s3")
    backend = s3.S3Storage(**options)  # builds without touching the network
    assert backend.bucket_name == "actuary-artefacts"
    assert backend.file_overwrite is False


def test_s3_without_a_bucket_is_refused(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="AWS_STORAGE_BUCKET_NAME is not set"):
        load_settings(monkeypatch, ARTEFACT_STORAGE="s3")


def test_an_unknown_storage_kind_is_refused(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="must be 'local' or 's3'"):
        load_settings(monkeypatch, ARTEFACT_STORAGE="ftp")
