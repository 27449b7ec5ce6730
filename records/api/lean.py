"""A lean read path for lists: the serializer's own output, without DRF's per-field machinery.

A page of 100 rows through a ModelSerializer walks every field of every row through
`Field.get_attribute` (a source walk with its exception handling) and
`Field.to_representation`: half of a list request's CPU (issue 18). `LeanListSerializer`
builds, once per list, a plan of one small function per field, chosen by the field's
class from what DRF would do with it:

- a model column (`id`, `status`, a foreign key's id, a JSON value) is read straight
  from the row and converted as the field would (UUIDs and text with `str`, numbers,
  JSON as stored, datetimes in the current time zone, ISO 8601 with `Z`);
- a nested list (an engagement's team) uses its own serializer's plan on the
  prefetched rows;
- a field that says how (`lean_getter()`, e.g. `AvailableMovesField`) gives its own,
  from what the serializer's `lean_prepare(rows)` read for the whole page if it has
  one (an engagement's team, as values);
- every other field (decimals, dates, method fields, dotted sources through a null)
  goes through DRF's own `get_attribute` and `to_representation`, unchanged.

The rows themselves are read lean too (`lean_rows`): a page's model instances are made
from the row's values without `Model.__init__` (its signals and per-field descriptor
calls, a fifth of a list's CPU), and JSON columns are read by orjson. A query this
does not cover (related rows selected with it, annotations, deferred fields, a model
with its own `from_db` or init signals) is read by Django as usual.

The result is the same list of dicts, key for key and value for value, as the full
serializer's (tests/test_api_lean_lists.py compares them on real rows of every list
that uses it). A serializer opts in with `Meta.list_serializer_class =
LeanListSerializer`; a single object (detail, create, transitions) still goes
through the full serializer.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from operator import attrgetter
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models.base import ModelState
from django.db.models.query import ModelIterable
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from django.utils.functional import cached_property
from rest_framework import fields as drf_fields
from rest_framework import relations, serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

from .. import jsontext

SKIP = object()
# Whether the plan being built reads only the rows (no field on DRF's own path).
_built_without_drf: ContextVar[bool] = ContextVar("_built_without_drf", default=True)
Getter = Callable[[Any], Any]

# Field classes whose to_representation is exactly "the value as it is" or a builtin.
_AS_STORED = (drf_fields.ReadOnlyField,)
_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    drf_fields.CharField: str,
    drf_fields.EmailField: str,
    drf_fields.SlugField: str,
    drf_fields.URLField: str,
    drf_fields.IPAddressField: str,
    drf_fields.IntegerField: int,
    drf_fields.FloatField: float,
}


class LeanListSerializer(serializers.ListSerializer):
    """A ListSerializer that represents its rows through the child's lean plan.

    The plan of a serializer class is kept (per time zone) once it is known to read
    nothing but the rows: then a list does not even build the serializer's fields.
    A plan with a field on DRF's own path (which may read the request) is rebuilt for
    every list.
    """

    _plans: ClassVar[dict[tuple[type, str], Callable[[Any], dict]]] = {}

    def to_representation(self, data):
        """Return the rows as the child serializer would, one plan for the whole list."""
        rows = data.all() if isinstance(data, models.manager.BaseManager) else data
        prepare = getattr(self.child, "lean_prepare", None)
        if prepare is not None:
            rows = list(rows)
            prepare(rows)
        key = (type(self.child), str(timezone.get_current_timezone()))
        represent = self._plans.get(key)
        if represent is None:
            _built_without_drf.set(True)
            represent, kept = row_representation(self.child), _built_without_drf.get()
            if kept:
                self._plans[key] = represent
        return [represent(row) for row in rows]


def row_representation(serializer: serializers.Serializer) -> Callable[[Any], dict]:
    """Return a function giving a row's representation by `serializer`, as DRF would."""
    plan = [(field.field_name, field_getter(field)) for field in serializer._readable_fields]

    def represent(instance) -> dict:
        result = {}
        for name, getter in plan:
            value = getter(instance)
            if value is not SKIP:
                result[name] = value
        return result

    return represent


def field_getter(field: serializers.Field) -> Getter:
    """Return a function of a row giving `field`'s representation (or SKIP), as DRF would."""
    lean = getattr(field, "lean_getter", None)
    if lean is not None:
        return lean()
    model = _model_of(field)
    if model is None or field.source == "*":
        return _drf_getter(field)
    if "." in field.source:
        return _path_getter(field, model) or _drf_getter(field)
    return _attribute_getter(field, model) or _drf_getter(field)


def _model_of(field: serializers.Field):
    parent = field.parent
    meta = getattr(parent, "Meta", None)
    return getattr(meta, "model", None)


def _attribute_getter(field: serializers.Field, model) -> Getter | None:
    """Return a direct getter for a field reading one column or property of the row, or None."""
    source = field.source
    column = _concrete_field(model, source)
    if isinstance(field, serializers.ListSerializer):
        if not isinstance(getattr(model, source, None), _RELATED_MANAGER_DESCRIPTORS):
            return None
        if not _inherits(field.child, "to_representation", serializers.Serializer):
            return None
        represent = row_representation(field.child)
        related = attrgetter(source)
        return lambda instance: [represent(row) for row in related(instance).all()]
    if isinstance(field, serializers.BaseSerializer):
        return None
    if isinstance(field, relations.PrimaryKeyRelatedField):
        if (
            field.pk_field is not None
            or column is None
            or not column.is_relation
            or not _inherits(field, "get_attribute", relations.RelatedField)
            or not _inherits(field, "to_representation", relations.PrimaryKeyRelatedField)
        ):
            return None
        return _plain(attrgetter(column.attname), None)
    if not _inherits(field, "get_attribute", drf_fields.Field):
        return None
    if column is None:
        descriptor = getattr(model, source, None)
        if not isinstance(descriptor, property | cached_property):
            return None
        read = attrgetter(source)
    elif column.is_relation:
        return None
    else:
        read = attrgetter(column.attname)
    convert = _converter(field)
    if convert is _UNKNOWN:
        return None
    return _plain(read, convert)


_RELATED_MANAGER_DESCRIPTORS: tuple[type, ...] = (
    models.fields.related_descriptors.ReverseManyToOneDescriptor,
    models.fields.related_descriptors.ManyToManyDescriptor,
)
_UNKNOWN = object()


def _path_getter(field: serializers.Field, model) -> Getter | None:
    """Return a getter for a dotted source through forward foreign keys to a column, or None.

    A null link on the way (or a missing row) takes DRF's own path for that row.
    """
    *links, last = field.source.split(".")
    for name in links:
        link = _concrete_field(model, name)
        if link is None or not link.many_to_one:
            return None
        model = link.related_model
    column = _concrete_field(model, last)
    if column is None or column.is_relation or isinstance(field, serializers.BaseSerializer):
        return None
    if not _inherits(field, "get_attribute", drf_fields.Field):
        return None
    convert = _converter(field)
    if convert is _UNKNOWN:
        return None
    read = _plain(attrgetter(field.source), convert)
    slow = _drf_getter(field, reads_only_the_row=True)  # a plain column field

    def getter(instance):
        try:
            return read(instance)
        except (AttributeError, ObjectDoesNotExist):
            return slow(instance)

    return getter


def _inherits(field: serializers.Field, method: str, base: type) -> bool:
    """Return whether `field`'s class uses `base`'s `method` as it is (no override)."""
    return getattr(type(field), method) is getattr(base, method)


def _concrete_field(model, name: str):
    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return field if getattr(field, "concrete", False) else None


def _converter(field: serializers.Field):
    """Return how `field` converts a non-null value, None for "as it is", or _UNKNOWN."""
    kind = type(field)
    if isinstance(field, drf_fields.JSONField):
        plain = not field.binary and _inherits(field, "to_representation", drf_fields.JSONField)
        return None if plain else _UNKNOWN
    if kind is drf_fields.UUIDField:
        return str if field.uuid_format == "hex_verbose" else _UNKNOWN
    if kind in _AS_STORED:
        return None
    if kind in _CONVERTERS:
        return _CONVERTERS[kind]
    if kind is drf_fields.ChoiceField:
        mapping = field.choice_strings_to_values
        return lambda value: value if value == "" else mapping.get(str(value), value)
    if kind is drf_fields.BigIntegerField:
        as_text = getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING)
        return str if as_text else int
    if kind in (drf_fields.BooleanField, drf_fields.DateField):
        # Their to_representation reads only the value and the field's own options.
        return field.to_representation
    if kind is drf_fields.DateTimeField:
        return _datetime_converter(field)
    return _UNKNOWN


def _datetime_converter(field: drf_fields.DateTimeField):
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    zone = field.timezone if hasattr(field, "timezone") else field.default_timezone()
    if output_format is None or output_format.lower() != drf_fields.ISO_8601 or zone is None:
        return field.to_representation
    fallback = field.to_representation
    # In UTC (the project's zone), a UTC datetime as the database gives it needs no
    # conversion: its ISO form ends in +00:00, written Z.
    utc = zone.utcoffset(None) == datetime.timedelta(0) and str(zone) in ("UTC", "Etc/UTC")

    def iso(value):
        if utc and type(value) is datetime.datetime and value.tzinfo is datetime.UTC:
            return value.isoformat()[:-6] + "Z"
        if not isinstance(value, datetime.datetime) or timezone.is_naive(value):
            return fallback(value)
        text = value.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    return iso if settings.USE_TZ else fallback


def _plain(read: Getter, convert) -> Getter:
    if convert is None:
        return read

    def getter(instance):
        value = read(instance)
        return None if value is None else convert(value)

    return getter


def _drf_getter(field: serializers.Field, *, reads_only_the_row: bool = False) -> Getter:
    """Return DRF's own path for one field of one row (Serializer.to_representation's loop)."""
    if not reads_only_the_row:
        _built_without_drf.set(False)
    get_attribute, to_representation = field.get_attribute, field.to_representation

    def getter(instance):
        try:
            attribute = get_attribute(instance)
        except SkipField:
            return SKIP
        check = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
        return None if check is None else to_representation(attribute)

    return getter


def lean_rows(queryset):
    """Return `queryset` reading its model instances lean (LeanModelIterable), if it can."""
    if not isinstance(queryset, models.QuerySet) or queryset._iterable_class is not ModelIterable:
        return queryset
    queryset = queryset._chain()
    queryset._iterable_class = LeanModelIterable
    return queryset


class LeanModelIterable(ModelIterable):
    """Django's ModelIterable, making plain rows' instances without `Model.__init__`.

    An instance gets the row's values as its attributes and a fresh `_state` (not
    adding, this database, the queryset's fetch mode), which is what `Model.from_db`
    leaves behind; JSON columns without a custom decoder are read with orjson (the
    standard library's json where orjson refuses: integers beyond 64 bits, NaN). Any
    query or model this does not cover goes through Django's own iterable.
    """

    def __iter__(self) -> Iterator[models.Model]:
        """Yield the query's model instances."""
        queryset, query = self.queryset, self.queryset.query
        model = queryset.model
        if (
            query.select_related
            or query.annotation_select
            or query.extra_select
            or query.deferred_loading[0]
            or queryset._known_related_objects
            or queryset._fetch_mode.track_peers
            or model.from_db.__func__ is not models.Model.from_db.__func__
            or model.__init__ is not models.Model.__init__
            or pre_init.has_listeners(model)
            or post_init.has_listeners(model)
        ):
            yield from super().__iter__()
            return
        database = queryset.db
        compiler = query.get_compiler(using=database)
        results = compiler.execute_sql(chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
        fields = [column.target for column, _sql, _alias in compiler.select]
        if len(fields) != len(model._meta.concrete_fields):
            yield from self._instances(model, database, fields, compiler.results_iter(results))
            return
        yield from self._instances(model, database, fields, self._rows(compiler, results, fields))

    def _instances(self, model, database, fields, rows) -> Iterator[models.Model]:
        attnames = [field.attname for field in fields]
        fetch_mode, new = self.queryset._fetch_mode, model.__new__
        for row in rows:
            instance = new(model)
            state = ModelState()
            state.adding, state.db, state.fetch_mode = False, database, fetch_mode
            values = instance.__dict__
            values.update(zip(attnames, row, strict=True))
            values["_state"] = state
            yield instance

    @staticmethod
    def _rows(compiler, results, fields) -> Iterator[list]:
        """Yield the rows converted as Django converts them, JSON columns read by orjson."""
        connection = compiler.connection
        converters = compiler.get_converters([column for column, _sql, _alias in compiler.select])
        plain_json = [
            position
            for position, field in enumerate(fields)
            if isinstance(field, models.JSONField)
            and field.decoder is None
            and type(field).from_db_value is models.JSONField.from_db_value
            and converters.get(position, ((), None))[0] == [field.from_db_value]
        ]
        for position in plain_json:
            del converters[position]
        for chunk in results:
            for row in chunk:
                row = list(row)
                for position in plain_json:
                    value = row[position]
                    if value is not None:
                        row[position] = _json_loads(value) if isinstance(value, str) else value
                for position, (functions, expression) in converters.items():
                    value = row[position]
                    for function in functions:
                        value = function(value, expression, connection)
                    row[position] = value
                yield row


def _json_loads(text: str):
    """Return the JSON `text` read as Django's JSONField reads it (records.jsontext)."""
    try:
        return jsontext.loads(text)
    except json.JSONDecodeError:
        return text  # as Django's JSONField gives back a text it cannot read
