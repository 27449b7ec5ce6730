"""Domain errors raised by the service layer and model lifecycle methods.

Every refusal is one of these; its message says what was refused and why, so the
admin can show it as is and the API can return it (one exception handler maps
them to HTTP statuses once DRF is wired in).
"""


class DomainError(Exception):
    """Base class: a business rule refused an operation; nothing was changed."""

    code = "domain_error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidTransition(DomainError):
    """A lifecycle move that is not allowed from the object's current state."""

    code = "invalid_transition"

    def __init__(self, *, obj, move: str, current: str, allowed_from=()):
        self.obj = obj
        self.move = move
        self.current = current
        self.allowed_from = tuple(allowed_from)
        label = obj._meta.verbose_name
        allowed = ", ".join(sorted(self.allowed_from)) or "nowhere"
        super().__init__(
            f"Cannot {move.replace('_', ' ')} {label} “{obj}”: it is {current} "
            f"(allowed only from: {allowed})."
        )


class NotAllowed(DomainError):
    """The acting user may not do this (independence, designation, qualification, team)."""

    code = "not_allowed"


class Conflict(DomainError):
    """The request conflicts with the current state of other data (stale hash, open runs, …)."""

    code = "conflict"


class InvalidInput(DomainError):
    """The operation was given input that breaks a rule (missing reason, bad parameters).

    `field` (optional) names the input at fault (`input_params`, `file`, `reason`, …):
    the API reports the message under it, the admin can show it next to the field.
    """

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


# --- The REST API's one exception handler ------------------------------------------------

# The HTTP status each kind of domain error answers with; the most specific class wins.
HTTP_STATUS_BY_ERROR = (
    (InvalidTransition, 409),
    (Conflict, 409),
    (NotAllowed, 403),
    (InvalidInput, 400),
    (DomainError, 400),
)
# Codes that need their own HTTP status (an InvalidInput subclass in artefacts/files.py).
HTTP_STATUS_BY_CODE = {"file_too_large": 413}

VALIDATION_FAILED = "The request is invalid: see errors for each field ({fields})."
NON_FIELD_ERRORS = "non_field_errors"


def api_exception_handler(exc, context):
    """Return the API's error response for `exc` (None: let Django answer 500).

    Every error body has `detail` (a sentence) and `code` (machine-readable). A
    validation error (400) adds `errors`, the messages per field; an illegal
    lifecycle move (409, code invalid_transition) adds `status`, the object's
    current state; a file over the upload limit answers 413 with `max_size`. A
    service's InvalidInput that names its `field` is reported under that field.
    Domain errors from the services map to 409 (InvalidTransition, Conflict), 403
    (NotAllowed) and 400 (InvalidInput); DRF's own errors keep their status.
    """
    # DRF is imported here, not at the top: models import this module at start-up.
    from django.core.exceptions import ValidationError as DjangoValidationError
    from rest_framework import exceptions
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, DomainError):
        return Response(_domain_error_body(exc), status=_domain_error_status(exc))
    if isinstance(exc, DjangoValidationError):
        # Raised below DRF (a model or field check): a client error, never a 500.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _validation_error_body(response.data)
    else:
        response.data = _error_body(exc, response.data)
    return response


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
