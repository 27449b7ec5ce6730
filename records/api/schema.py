"""The OpenAPI schema's view of errors: the one error body and where each status can occur.

Kept apart from the modules the settings name (permissions, pagination): drf-spectacular's
AutoSchema imports DRF's views, which read the REST_FRAMEWORK settings naming them.
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_array_type
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from .shapes import Shape, ShapeField

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
    409 on download) are kept as declared. The shapes of stored JSON
    (`records.api.shapes`) are components named after what they describe.
    """

    def get_serializer_name(self, serializer, direction):
        """Name a shape's component after what it describes (ReserveTotalsShape: ReserveTotals)."""
        if isinstance(serializer, Shape):
            return type(serializer).__name__.removesuffix("Shape")
        return super().get_serializer_name(serializer, direction)

    def _map_basic_serializer(self, serializer, direction):
        """Map a serializer; a shape with other keys says so (additionalProperties)."""
        schema = super()._map_basic_serializer(serializer, direction)
        extra = getattr(serializer, "additional_properties", None)
        if isinstance(serializer, Shape) and extra is not None:
            schema["additionalProperties"] = extra
        return schema

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


class ShapeFieldExtension(OpenApiSerializerFieldExtension):
    """Type a stored JSON field by its shape's component, or anyOf its shapes' components.

    Such a field is read-only: it has no place in a request, nor do its components.
    """

    target_class = ShapeField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        if direction == "request":
            return None
        references = [
            auto_schema.resolve_serializer(shape, direction).ref for shape in self.target.shapes
        ]
        schema = references[0] if len(references) == 1 else {"anyOf": references}
        return build_array_type(schema) if self.target.many else schema
