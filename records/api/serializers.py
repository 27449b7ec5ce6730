"""Serializer bases and fields of the API: input is refused, never silently dropped.

`RecordSerializer` (a model) and `InputSerializer` (an action's body) refuse a field
the client may not write (status, hashes, timestamps, audit fields …) and a field
that does not exist, with a message that says which.
"""

from __future__ import annotations

import json
from typing import ClassVar

from django.contrib.auth import get_user_model
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..scoping import scope_to_user

READ_ONLY_FIELD = "This field is read-only: the server sets it, and it cannot be written."
CREATE_ONLY_FIELD = "This field is set when the object is created and cannot be changed."
STATUS_READ_ONLY = (
    "The status is read-only: it changes only through the transition actions "
    "(POST …/{id}/<move>/), never by editing."
)
UNKNOWN_FIELD = "Unknown field: it is not one of the fields this endpoint accepts."
NOT_A_JSON_OBJECT = "Expected a JSON object ({...})."
INVALID_JSON = "Not valid JSON: {error}."
MAX_JSON_DEPTH = 32
JSON_NUL_CHARACTER = (
    "Text may not contain the NUL character (\\u0000): the database cannot store it."
)
JSON_TOO_DEEP = "JSON nested more than {depth} levels deep is not accepted."

# Keys a browser form adds to every POST; they are not data.
IGNORED_INPUT_KEYS = frozenset({"csrfmiddlewaretoken"})


class StorableJSONField(serializers.JSONField):
    """JSON the database can store: no NUL character in any text, nesting at most 32 deep.

    PostgreSQL's jsonb cannot hold `\\u0000` (it was a 500), and a value nested
    thousands deep is no one's data; both are a 400 naming the field.
    """

    def to_internal_value(self, data):
        """Return the value once it is checked."""
        value = super().to_internal_value(data)
        _check_storable_json(value)
        return value


def _check_storable_json(value) -> None:
    """Raise ValidationError if `value` holds a NUL character or nests too deep (iteratively)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise serializers.ValidationError(JSON_NUL_CHARACTER)
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise serializers.ValidationError(JSON_TOO_DEEP.format(depth=MAX_JSON_DEPTH))
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)


class WritableFieldsOnlyMixin:
    """Refuse (400) input that names a read-only or unknown field, instead of dropping it.

    A client that sends `status`, `content_hash` or `created_by` learns at once that
    the server owns those values; a typo (`desciption`) does not vanish silently.
    `read_only_messages` gives a field its own explanation.
    """

    read_only_messages: ClassVar[dict[str, str]] = {"status": STATUS_READ_ONLY}

    def to_internal_value(self, data):
        """Check the input's keys, then validate as usual."""
        if hasattr(data, "keys"):
            errors = {}
            for key in data:
                if key in IGNORED_INPUT_KEYS:
                    continue
                field = self.fields.get(key)
                if field is None:
                    errors[key] = [self.read_only_messages.get(key, UNKNOWN_FIELD)]
                elif field.read_only:
                    errors[key] = [self._read_only_message(key)]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def _read_only_message(self, key: str) -> str:
        if key in self.read_only_messages:
            return self.read_only_messages[key]
        meta = getattr(self, "Meta", None)
        if self.instance is not None and key in getattr(meta, "create_only_fields", ()):
            return CREATE_ONLY_FIELD
        return READ_ONLY_FIELD


class RecordSerializer(WritableFieldsOnlyMixin, serializers.ModelSerializer):
    """A model serializer that refuses read-only and unknown input fields.

    `Meta.create_only_fields` are writable when creating and read-only afterwards
    (an artefact's engagement, an approval's subject, a qualification's holder).
    JSON model fields take only JSON the database can store (`StorableJSONField`).
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: StorableJSONField,
    }

    def get_validators(self):
        """Return no model-level validators: uniqueness is the services' rule (409, explained)."""
        return []

    def get_fields(self):
        """Return the fields, with the create-only ones read-only on an existing object."""
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, list | tuple):
            for name in getattr(self.Meta, "create_only_fields", ()):
                fields[name].read_only = True
        return fields


class InputSerializer(WritableFieldsOnlyMixin, serializers.Serializer):
    """An input serializer (an action's body) that refuses unknown fields."""


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(StorableJSONField):
    """A JSON object (dict); in a multipart form, the object's JSON text."""

    def to_internal_value(self, data):
        """Return the dict, parsing it first when it came as text (multipart forms)."""
        if isinstance(data, bytes | str):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise serializers.ValidationError(INVALID_JSON.format(error=error)) from None
        if not isinstance(data, dict):
            raise serializers.ValidationError(NOT_A_JSON_OBJECT)
        return super().to_internal_value(data)


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to a row in an engagement the requesting user may see.

    Anything else answers "does not exist", so a client cannot probe for
    engagements it is not on. `engagement_path` is the lookup from the row to its
    engagement ("" for engagements themselves).
    """

    def __init__(self, *, engagement_path: str = "engagement", **kwargs):
        """Remember how to reach the engagement from the referenced model."""
        self.engagement_path = engagement_path
        super().__init__(**kwargs)

    def get_queryset(self):
        """Return the referenced rows the requesting user may see."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        return scope_to_user(super().get_queryset(), user, engagement_path=self.engagement_path)


class ActiveUserField(serializers.PrimaryKeyRelatedField):
    """A reference to an active user (by id): inactive people are not given new work."""

    def __init__(self, **kwargs):
        """Point the field at the active users unless told otherwise."""
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(**kwargs)


class AvailableMovesField(serializers.ListField):
    """The lifecycle moves allowed from the record's status (`available_moves()`), read-only.

    Calls the method itself: DRF would inspect its signature on every row to learn
    whether it may call it, a third of a 100-row list's time (issue 18).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.CharField())
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return instance.available_moves()

    def lean_getter(self):
        """Return the moves of a row as `to_representation` writes them (records.api.lean)."""
        return lambda instance: [str(move) for move in instance.available_moves()]
