"""The REST API's one exception handler: domain errors and DRF's own, in one error body.

Named by the REST_FRAMEWORK setting EXCEPTION_HANDLER; the body is described in the
OpenAPI schema by `records.api.schema.ErrorSerializer`.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.signals import got_request_exception
from django.utils.log import log_response
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from ..exceptions import Conflict, DomainError, InvalidInput, InvalidTransition, NotAllowed

# The HTTP status each kind of domain error answers with; the most specific class wins.
HTTP_STATUS_BY_ERROR = (
    (InvalidTransition, 409),
    (Conflict, 409),
    (NotAllowed, 403),
    (InvalidInput, 400),
    (DomainError, 400),
)
# Codes that need their own HTTP status (FileTooLarge, an InvalidInput of artefacts.files).
HTTP_STATUS_BY_CODE = {"file_too_large": 413}

VALIDATION_FAILED = "The request is invalid: see errors for each field ({fields})."
REQUEST_TOO_LARGE = (
    "The request body is larger than the server accepts ({limit} bytes for fields other "
    "than uploaded files)."
)
UNSUPPORTED_MEDIA_TYPE = (
    'Unsupported media type "{media_type}" in request: this endpoint takes {accepted} '
    "(send the header Content-Type: {first})."
)
SERVER_ERROR = (
    "The server failed to answer this request. The error is logged; if it persists, "
    "tell the administrator the time and the request."
)
NON_FIELD_ERRORS = "non_field_errors"


def api_exception_handler(exc, context):
    """Return the API's error response for `exc`, 500s included (in the same JSON body).

    Every error body has `detail` (a sentence) and `code` (machine-readable). A
    validation error (400) adds `errors`, the messages per field; an illegal
    lifecycle move (409, code invalid_transition) adds `status`, the object's
    current state; a file over the upload limit answers 413 with `max_size`. A
    service's InvalidInput that names its `field` is reported under that field.
    Domain errors from the services map to 409 (InvalidTransition, Conflict), 403
    (NotAllowed) and 400 (InvalidInput); DRF's own errors keep their status.
    """
    if isinstance(exc, DomainError):
        return Response(_domain_error_body(exc), status=_domain_error_status(exc))
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = {
            "detail": REQUEST_TOO_LARGE.format(limit=limit),
            "code": "request_too_large",
            "max_size": limit,
        }
        return Response(body, status=413)
    if isinstance(exc, DjangoValidationError):
        # Raised below DRF (a model or field check): a client error, never a 500.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        )
    if isinstance(exc, exceptions.UnsupportedMediaType):
        exc = _unsupported_media_type(context.get("request"))
    response = exception_handler(exc, context)
    if response is None:
        return _server_error(exc, context)
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_error_body(response.data)
    else:
        response.data = _error_body(exc, response.data)
    return response


def _server_error(exc, context):
    """Log an unexpected error as Django would, and answer 500 in the API's JSON body.

    `got_request_exception` is sent as Django's own handler sends it, so error
    reporting (and the test client, which re-raises) still sees the exception.
    """
    request = getattr(context.get("request"), "_request", context.get("request"))
    got_request_exception.send(sender=None, request=request)
    response = Response({"detail": SERVER_ERROR, "code": "server_error"}, status=500)
    log_response(
        "%s: %s",
        "Internal Server Error",
        getattr(request, "path", ""),
        response=response,
        request=request,
        exception=exc,
    )
    response._has_been_logged = True
    return response


def _unsupported_media_type(request) -> exceptions.UnsupportedMediaType:
    """Return the 415 naming the body types this endpoint does take (JSON, or a multipart form)."""
    media_type = (getattr(request, "content_type", "") or "").partition(";")[0].strip()
    accepted = [parser.media_type for parser in getattr(request, "parsers", ())]
    detail = (
        UNSUPPORTED_MEDIA_TYPE.format(
            media_type=media_type, accepted=" or ".join(accepted), first=accepted[0]
        )
        if accepted
        else None
    )
    return exceptions.UnsupportedMediaType(media_type, detail=detail)


def _domain_error_status(exc: DomainError) -> int:
    if exc.code in HTTP_STATUS_BY_CODE:
        return HTTP_STATUS_BY_CODE[exc.code]
    return next(status for kind, status in HTTP_STATUS_BY_ERROR if isinstance(exc, kind))


def _domain_error_body(exc: DomainError) -> dict:
    body = {"detail": exc.message, "code": exc.code}
    if isinstance(exc, InvalidTransition):
        body["status"] = str(exc.current)
    if exc.code in HTTP_STATUS_BY_CODE and hasattr(exc, "limit"):
        body["max_size"] = exc.limit
    elif isinstance(exc, InvalidInput):
        # Under the input at fault when the service knows it, as a serializer would say.
        body["errors"] = {getattr(exc, "field", None) or NON_FIELD_ERRORS: [exc.message]}
    return body


def _error_body(exc, data) -> dict:
    """Return DRF's `{"detail": ...}` body with its code alongside."""
    detail = data.get("detail", "") if isinstance(data, dict) else data
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    return {"detail": str(detail), "code": str(code)}


def _validation_error_body(data) -> dict:
    """Return a validation error as `{"detail", "code": "invalid", "errors": {field: [...]}}`."""
    if isinstance(data, dict):
        errors = {key: _messages(value) for key, value in data.items()}
    else:
        errors = {NON_FIELD_ERRORS: _messages(data)}
    flat = [(field, message) for field, messages in errors.items() for message in messages]
    if len(flat) == 1:
        field, message = flat[0]
        detail = message if field == NON_FIELD_ERRORS else f"{field}: {message}"
    else:
        detail = VALIDATION_FAILED.format(fields=", ".join(errors))
    return {"detail": detail, "code": "invalid", "errors": errors}


def _messages(value) -> list[str]:
    """Return the error messages under one field as a flat list of strings."""
    if isinstance(value, dict):
        return [f"{key}: {message}" for key, inner in value.items() for message in _messages(inner)]
    if isinstance(value, list | tuple):
        return [message for item in value for message in _messages(item)]
    return [str(value)]
