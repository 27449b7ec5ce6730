"""Check real JSON values against the OpenAPI schema's components, strictly.

`assert_shape(value, "ReserveTotals")` validates `value` against that component of the
live schema (drf-spectacular's generator), turned into JSON Schema: OpenAPI's
`nullable` becomes a null alternative, and every object that lists its properties and
does not declare `additionalProperties` is closed. So a key the server writes that the
schema does not name fails, as does a required key it leaves out, or a wrong type.
`complete=True` also requires every property of the top object, for shapes whose keys
are all optional because the value may still be empty.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
from drf_spectacular.generators import SchemaGenerator

OPENAPI_ONLY = ("readOnly", "writeOnly", "x-spec-enum-id")


@functools.cache
def openapi_schema() -> dict:
    """Return the API's OpenAPI schema, as /api/schema/ serves it (built once)."""
    return SchemaGenerator().get_schema(request=None, public=True)


def components() -> dict[str, dict]:
    return openapi_schema()["components"]["schemas"]


def json_schema(node: Any) -> Any:
    """Return an OpenAPI 3.0 schema (or part of one) as a closed JSON Schema."""
    if isinstance(node, list):
        return [json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: value if key in ("enum", "required") else json_schema(value)
        for key, value in node.items()
        if key not in (*OPENAPI_ONLY, "nullable", "properties")
    }
    if "$ref" in converted:
        converted["$ref"] = converted["$ref"].replace("#/components/schemas/", "#/$defs/")
    if "properties" in node:
        converted["properties"] = {
            name: json_schema(value) for name, value in node["properties"].items()
        }
        converted.setdefault("additionalProperties", False)
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def _definitions() -> dict:
    return {name: json_schema(schema) for name, schema in components().items()}


def validator(
    name: str, *, complete: bool = False, without: tuple[str, ...] = ()
) -> jsonschema.Draft202012Validator:
    """Return a validator of the component `name` (closed; `complete`: every key required).

    `without` leaves keys of the component out (a part of it that is produced alone).
    """
    schema = dict(_definitions()[name])
    if complete:
        schema["required"] = sorted(components()[name]["properties"])
    if without:
        schema["properties"] = {
            key: value for key, value in schema["properties"].items() if key not in without
        }
        schema["required"] = [key for key in schema.get("required", []) if key not in without]
    schema["$defs"] = _definitions()
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_shape(
    value: Any, name: str, *, complete: bool = False, without: tuple[str, ...] = ()
) -> None:
    """Assert that `value` is a `name` of the schema, listing every error if it is not."""
    check = validator(name, complete=complete, without=without)
    errors = sorted(check.iter_errors(value), key=str)
    assert not errors, f"{name}: " + "\n".join(
        f"at {'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in errors[:20]
    )
