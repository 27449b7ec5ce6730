"""The upload handler that stops reading a request's file past the artefact size limit."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from .storage import FileTooLarge


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
