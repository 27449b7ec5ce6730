"""The bytes of artefacts: allowed formats, content sniffing, streamed storage, integrity checks.

Services, the admin and the API call this package; it never creates or changes an
Artefact row. By concern:

- `formats`: the allow-list of formats per artefact type;
- `detection`: what the content is, checked against the name;
- `storage`: names and paths, streaming, hashing and storing the bytes, discarding them;
- `integrity`: re-hashing stored bytes before they are served, recording problems;
- `uploads`: the upload handler that stops a request at the size limit.
"""

from .detection import (
    CONTENT_MISMATCH_MESSAGE,
    SNIFF_SIZE,
    UNRECOGNISED_CONTENT_MESSAGE,
)
from .formats import (
    ARTEFACT_TYPE_FORMATS,
    FORMATS,
    GZIP_MAGIC,
    JPEG_MAGIC,
    OLE2_MAGIC,
    PARQUET_MAGIC,
    PDF_MAGIC,
    PNG_MAGIC,
    UNKNOWN_ARTEFACT_TYPE_MESSAGE,
    ZIP_MAGICS,
    FileFormat,
    accepted_extensions,
    allowed_formats,
    format_for_name,
)
from .integrity import (
    FILE_CORRUPTED_MESSAGE,
    FILE_MISSING_MESSAGE,
    ArtefactFileUnavailable,
    FileCheck,
    FileStatus,
    open_verified,
    record_file_problem,
    verify_artefact_file,
)
from .storage import (
    BINARY_MODE_MESSAGE,
    CHUNK_SIZE,
    EMPTY_FILE_MESSAGE,
    FILE_TOO_LARGE_MESSAGE,
    FORMAT_NOT_ALLOWED_MESSAGE,
    MAX_ORIGINAL_NAME_LENGTH,
    MAX_STORED_NAME_LENGTH,
    STORED_SIZE_MISMATCH_MESSAGE,
    FileTooLarge,
    StoredFile,
    artefact_file_path,
    artefact_storage,
    discard_stored_file,
    original_file_name,
    safe_file_name,
    store_artefact_file,
)
from .uploads import (
    MaxSizeUploadHandler,
    install_max_size_upload_handler,
)

__all__ = [
    "ARTEFACT_TYPE_FORMATS",
    "BINARY_MODE_MESSAGE",
    "CHUNK_SIZE",
    "CONTENT_MISMATCH_MESSAGE",
    "EMPTY_FILE_MESSAGE",
    "FILE_CORRUPTED_MESSAGE",
    "FILE_MISSING_MESSAGE",
    "FILE_TOO_LARGE_MESSAGE",
    "FORMATS",
    "FORMAT_NOT_ALLOWED_MESSAGE",
    "GZIP_MAGIC",
    "JPEG_MAGIC",
    "MAX_ORIGINAL_NAME_LENGTH",
    "MAX_STORED_NAME_LENGTH",
    "OLE2_MAGIC",
    "PARQUET_MAGIC",
    "PDF_MAGIC",
    "PNG_MAGIC",
    "SNIFF_SIZE",
    "STORED_SIZE_MISMATCH_MESSAGE",
    "UNKNOWN_ARTEFACT_TYPE_MESSAGE",
    "UNRECOGNISED_CONTENT_MESSAGE",
    "ZIP_MAGICS",
    "ArtefactFileUnavailable",
    "FileCheck",
    "FileFormat",
    "FileStatus",
    "FileTooLarge",
    "MaxSizeUploadHandler",
    "StoredFile",
    "accepted_extensions",
    "allowed_formats",
    "artefact_file_path",
    "artefact_storage",
    "discard_stored_file",
    "format_for_name",
    "install_max_size_upload_handler",
    "open_verified",
    "original_file_name",
    "record_file_problem",
    "safe_file_name",
    "store_artefact_file",
    "verify_artefact_file",
]
