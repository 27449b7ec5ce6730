"""The OpenAPI schema's view of errors: the one error body and where each status can occur.

Kept apart from the modules the settings name (permissions, pagination): drf-spectacular's
AutoSchema imports DRF's views, which read the REST_FRAMEWORK settings naming them.
"""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# --- Errors in the schema --------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The body of every error response (see records.api.exceptions.api_exception_handler)."""

    detail = serializers.CharField(help_text="What went wrong, in a sentence a person can read.")
    code = serializers.CharField(
        help_text=(
            "Machine-readable reason: invalid, parse_error, not_authenticated, "
            "authentication_failed, permission_denied, not_allowed, not_found, "
            "method_not_allowed, unsupported_media_type, invalid_transition, conflict, "
            "artefact_file_unavailable, file_too_large, …"
        )
    )
    status = serializers.CharField(
        required=False,
        help_text="invalid_transition only: the object's current status.",
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=(
            "400 only: the messages per input field; errors not tied to one field are "
            "under non_field_errors."
        ),
    )
    max_size = serializers.IntegerField(
        required=False, help_text="file_too_large only: the largest file accepted, in bytes."
    )


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: malformed body, wrong types, missing or read-only fields, "
    "bad filter values, or a value a business rule refuses.",
    "401": "Not authenticated: send a session cookie or `Authorization: Token <key>`.",
    "403": "Authenticated, but missing the model permission, or a business rule refuses "
    "this user (code not_allowed).",
    "404": "No such object, or it lies in an engagement the user is not on.",
    "409": "Conflicts with the object's state: an illegal lifecycle move "
    "(code invalid_transition, with the current status) or other data (code conflict).",
    "413": "The uploaded file is larger than ARTEFACT_MAX_UPLOAD_SIZE.",
}


def error_response(code: int | str, description: str | None = None) -> OpenApiResponse:
    """Return the schema of an error response with the common error body."""
    return OpenApiResponse(
        ErrorSerializer, description=description or ERROR_DESCRIPTIONS[str(code)]
    )


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the error responses every operation can give.

    401, 403 and 404 everywhere; 400 for writes and filtered lists; 409 for writes
    and transitions. Responses an operation declares itself (e.g. 413 on uploads,
    409 on download) are kept as declared.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["401", "403", "404"]
        if self.method in {"POST", "PUT", "PATCH"} or self._is_list_view():
            codes.append("400")
        if self.method in {"POST", "PUT", "PATCH", "DELETE"}:
            codes.append("409")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(code), code, direction=direction
                )
        return dict(sorted(responses.items()))
