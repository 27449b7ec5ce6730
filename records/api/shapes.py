"""The shapes of the JSON the server builds itself (results, snapshots, audit values).

A JSON model field holds what a service or a workflow wrote: a reserving run's result,
the qualifications an approver held, the disclosures a sign-off froze. The API shows
it as it is stored; its schema comes from a `Shape`, a read-only serializer that only
describes (it never validates input), so the OpenAPI schema has a named component for
each and generated clients get typed models instead of `Any`.

Where the value is built from frozen dataclasses (the reserving engine's results),
`dataclass_shape` derives the shape from the dataclass's fields and type hints, so a
field added to the dataclass is in the schema at once; the keys its `to_dict()` writes
differently are declared beside it. Where a function builds the dict, the shape is
declared next to the function's app. Either way the tests check real values against
the schema (tests/test_api_result_schemas.py), so neither can drift from the other.

A shape lists every key the server writes, and the tests hold it to that (no other
key may appear); `additional_properties` (a schema, `{}` for any value) declares that
other keys may, e.g. in a run's metrics, which merge what a client reports with what
the runner measured. The published schema leaves objects open, as OpenAPI does by
default, so a key added later does not break a client generated earlier.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar

from rest_framework import serializers

UNSUPPORTED_HINT = "{cls}.{name}: no schema for the type {hint!r}; declare the field."
NESTED_SHAPE_MISSING = (
    "{cls}.{name}: declare the shape of {nested} (dataclass_shape) before the shapes using it."
)
SHAPE_DECLARED_TWICE = "The shape of {cls} is already declared ({shape})."

# The shape of every dataclass declared so far, for the fields that nest one.
_DATACLASS_SHAPES: dict[type, type[Shape]] = {}


class Shape(serializers.Serializer):
    """A JSON object the server builds, described for the schema; never read from input.

    Subclasses declare their keys as serializer fields: `required=False` for a key
    that may be missing, `allow_null=True` for one that may be null. The class name
    without "Shape" is the component's name; its docstring the description.
    """

    # None: no other keys; a schema ({} for any value): other keys may appear.
    additional_properties: ClassVar[dict[str, Any] | None] = None

    def to_internal_value(self, data):
        """Refuse to read input: a shape only describes what the server writes."""
        raise NotImplementedError(f"{type(self).__name__} describes output; it reads no input.")


class OpenShape(Shape):
    """A JSON object whose keys vary: what it holds is said in its description."""

    additional_properties: ClassVar[dict[str, Any] | None] = {}


class ShapeField(serializers.JSONField):
    """A JSON model field, answered as stored, typed in the schema by its shape(s).

    `shape` is a Shape class, or a tuple of them when the value is any one of several
    (the schema's anyOf, the likeliest first: clients try them in order); `many` for a
    list of them. Always read-only: the server writes these values itself.
    """

    def __init__(self, shape: type[Shape] | tuple[type[Shape], ...], *, many=False, **kwargs):
        """Remember the shape(s); the field is read-only."""
        self.shapes = shape if isinstance(shape, tuple) else (shape,)
        self.many = many
        kwargs["read_only"] = True
        super().__init__(**kwargs)


def dataclass_shape(
    cls: type,
    *,
    fields: dict[str, serializers.Field] | None = None,
    exclude: tuple[str, ...] = (),
    help_texts: dict[str, str] | None = None,
    name: str | None = None,
) -> type[Shape]:
    """Return the shape of a frozen dataclass's `to_dict()`: its fields, typed by their hints.

    `fields` declares the keys `to_dict()` writes differently from the dataclass field of
    the same name (or adds); `exclude` the fields it leaves out; `help_texts` describes
    keys. Nested dataclasses use the shapes declared for them before. Every key is
    required; `X | None` is nullable; `int | float` is a number.
    """
    if cls in _DATACLASS_SHAPES:
        raise ValueError(SHAPE_DECLARED_TWICE.format(cls=cls, shape=_DATACLASS_SHAPES[cls]))
    declared = dict(fields or {})
    help_texts = help_texts or {}
    hints = typing.get_type_hints(cls)
    keys: dict[str, serializers.Field] = {}
    for field in dataclasses.fields(cls):
        if field.name in exclude:
            continue
        keys[field.name] = declared.pop(field.name, None) or _field_for(
            hints[field.name], owner=cls, name=field.name, help_text=help_texts.get(field.name)
        )
    keys.update(declared)
    attributes: dict[str, Any] = {}
    for key, serializer_field in keys.items():
        if key in help_texts and not serializer_field.help_text:
            serializer_field.help_text = help_texts[key]
        # Serializers order their fields by creation: keep the dataclass's order.
        serializer_field._creation_counter = serializers.Field._creation_counter
        serializers.Field._creation_counter += 1
        attributes[key] = serializer_field
    attributes["__doc__"] = cls.__doc__
    attributes["__module__"] = cls.__module__
    shape = type(Shape)(f"{name or cls.__name__}Shape", (Shape,), attributes)
    _DATACLASS_SHAPES[cls] = shape
    return shape


def _field_for(hint: Any, *, owner: type, name: str, help_text: str | None) -> serializers.Field:
    """Return the serializer field describing a value of type `hint`."""
    options: dict[str, Any] = {"help_text": help_text} if help_text else {}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = tuple(arg for arg in args if arg is not type(None))
        if len(present) < len(args):
            options["allow_null"] = True
        if set(present) == {int, float}:
            return serializers.FloatField(**options)
        if len(present) != 1:
            raise TypeError(UNSUPPORTED_HINT.format(cls=owner.__name__, name=name, hint=hint))
        hint = present[0]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (dict, list, tuple):
        origin, args = hint, ()
    if dataclasses.is_dataclass(hint):
        return _nested_shape(hint, owner=owner, name=name)(**options)
    if origin in (tuple, list):
        item = args[0] if args else Any
        if dataclasses.is_dataclass(item):
            return _nested_shape(item, owner=owner, name=name)(many=True, **options)
        child = _field_for(item, owner=owner, name=name, help_text=None)
        return serializers.ListField(child=child, **options)
    if origin is dict:
        value = args[1] if args else Any
        if value is Any:
            return serializers.DictField(**options)
        child = _field_for(value, owner=owner, name=name, help_text=None)
        return serializers.DictField(child=child, **options)
    simple = {
        str: serializers.CharField,
        bool: serializers.BooleanField,
        int: serializers.IntegerField,
        float: serializers.FloatField,
    }
    if hint in simple:
        return simple[hint](**options)
    if hint is Any:
        return serializers.JSONField(**options)
    raise TypeError(UNSUPPORTED_HINT.format(cls=owner.__name__, name=name, hint=hint))


def _nested_shape(cls: type, *, owner: type, name: str) -> type[Shape]:
    try:
        return _DATACLASS_SHAPES[cls]
    except KeyError:
        raise TypeError(
            NESTED_SHAPE_MISSING.format(cls=owner.__name__, name=name, nested=cls.__name__)
        ) from None
