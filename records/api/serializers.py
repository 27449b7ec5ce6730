"""Building blocks of the REST API shared by every app: permissions, pagination, fields, schema.

Each app's `api/` package composes these into thin viewsets; `config/api_router.py`
puts them on the one `/api/v1/` router. The rules they keep:

- a request needs a Django model permission (view for reads, add/change/delete for
  writes; a transition needs change) *and* the object must sit in an engagement the
  user may see, otherwise it does not exist for them (404, never 403);
- input is refused, not silently dropped, when it names a field the client may not
  write (status, hashes, timestamps, audit fields …) or a field that does not exist;
- every error is described in the OpenAPI schema with the one error body
  (`config/api_schema.py`).

Nothing here imports DRF's views: the settings name these classes, and DRF's
APIView reads the settings when it is imported.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import pagination, permissions, serializers
from rest_framework.response import Response

from config.middleware import get_request_context
from engagements.models import EngagementMember
from engagements.selectors import VIEW_ALL_PERMISSION, scope_to_user

MAX_PAGE_SIZE = 100
DEFAULT_CURSOR_PAGE_SIZE = 50

READ_ONLY_FIELD = "This field is read-only: the server sets it, and it cannot be written."
CREATE_ONLY_FIELD = "This field is set when the object is created and cannot be changed."
STATUS_READ_ONLY = (
    "The status is read-only: it changes only through the transition actions "
    "(POST …/{id}/<move>/), never by editing."
)
UNKNOWN_FIELD = "Unknown field: it is not one of the fields this endpoint accepts."
NOT_A_JSON_OBJECT = "Expected a JSON object ({...})."
INVALID_JSON = "Not valid JSON: {error}."

# Keys a browser form adds to every POST; they are not data.
IGNORED_INPUT_KEYS = frozenset({"csrfmiddlewaretoken"})
# Actions whose permission follows the HTTP method, as DjangoModelPermissions maps it.
STANDARD_ACTIONS = frozenset(
    {"list", "retrieve", "create", "update", "partial_update", "destroy", "metadata", None}
)


# --- Permissions -----------------------------------------------------------------------------


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions for every method, view permissions for reads included.

    A transition (any custom POST action) needs the model's change permission. A
    viewset (or one of its actions, through `@action(..., permission_model=...,
    permission_verbs=...)`) may name another model or verb, e.g. posting a chat
    message needs `conversations.add_chatmessage`. Which rows a user reaches is
    decided by the viewset's scoped queryset, not here.
    """

    perms_map: ClassVar[dict[str, list[str]]] = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view):
        """Return whether the authenticated user holds the permission this request needs."""
        if not request.user or not request.user.is_authenticated:
            return False
        if getattr(view, "_ignore_model_permissions", False):
            return True
        if getattr(view, "action_map", None) is not None and view.action is None:
            # A method the viewset does not route: let it answer 405, not 403.
            return True
        model = getattr(view, "permission_model", None) or self._queryset(view).model
        return request.user.has_perms(self.required_permissions(request, view, model))

    def required_permissions(self, request, view, model) -> list[str]:
        """Return the permissions ("app_label.codename") the request needs on `model`."""
        verbs = getattr(view, "permission_verbs", None) or {}
        verb = verbs.get(request.method)
        if verb is None and getattr(view, "action", None) not in STANDARD_ACTIONS:
            # A transition changes the row; reading an action's result only views it.
            verb = "view" if request.method in permissions.SAFE_METHODS else "change"
        if verb is None:
            return self.get_required_permissions(request.method, model)
        return [f"{model._meta.app_label}.{verb}_{model._meta.model_name}"]


class ServiceViewSetMixin:
    """What every API viewset shares: permission hints for actions, the acting user, the trace.

    Writes never save models: each viewset hands validated data to its app's
    services with `actor=request.user`, and the service records the change.
    """

    # The lookup from the viewset's model to its engagement ("" for engagements
    # themselves); None when the viewset scopes its rows itself.
    engagement_path: ClassVar[str | None] = "engagement"
    # The keyword the app's services take the object by (engagement=, run=, …).
    service_object_name: ClassVar[str] = ""
    # Set per action through @action(...) keyword arguments (DRF sets them on the view).
    permission_model = None
    permission_verbs: ClassVar[dict[str, str] | None] = None

    def get_queryset(self):
        """Return the viewset's rows narrowed to the engagements the user may see."""
        queryset = super().get_queryset()
        if self.engagement_path is None:
            return queryset
        return scope_to_user(queryset, self.request.user, engagement_path=self.engagement_path)

    @property
    def actor(self):
        """Return the user the request acts as (services record them)."""
        return self.request.user

    @staticmethod
    def trace_id() -> str | None:
        """Return the AI agent trace named by the request's X-Trace-Id header, if any."""
        return get_request_context().trace_id

    def transition(self, service, input_serializer=None, **arguments) -> Response:
        """Apply a lifecycle service to the object of the URL; answer with the new state.

        `input_serializer`: the action's body, validated (400) and passed to the service
        as keywords. The object is looked up first, so whoever may not see it gets 404
        before any word about their input.
        """
        instance = self.get_object()
        if input_serializer is not None:
            arguments |= self.validated_input(input_serializer)
        result = service(**{self.service_object_name: instance}, actor=self.actor, **arguments)
        return Response(self.get_serializer(result).data)

    def validated_input(self, serializer_class, *, data=None) -> dict[str, Any]:
        """Return the request body validated by an action's input serializer (400 if invalid)."""
        serializer = serializer_class(
            data=self.request.data if data is None else data,
            context=self.get_serializer_context(),
        )
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


def users_visible_to(user) -> QuerySet:
    """Return the active users `user` may look up: themselves and the people on their teams.

    Superusers and holders of the global view permission see every active user.
    This is the pool approvers and team members are picked from.
    """
    users = get_user_model().objects.filter(is_active=True)
    if user is None or not user.is_authenticated or not user.is_active:
        return users.none()
    if user.is_superuser or user.has_perm(VIEW_ALL_PERMISSION):
        return users
    colleagues = EngagementMember.objects.filter(engagement__team__user=user).values("user_id")
    return users.filter(Q(pk=user.pk) | Q(pk__in=colleagues))


# --- Filters ---------------------------------------------------------------------------------


class TrackedFilterSet(django_filters.FilterSet):
    """Filters every tracked record has: who created it, and when (ISO dates or datetimes)."""

    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after (ISO 8601)."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lte", help_text="Created at or before (ISO 8601)."
    )
    created_by_id = django_filters.NumberFilter(
        field_name="created_by_id", help_text="Id of the user who created it."
    )


# --- Pagination ------------------------------------------------------------------------------


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (default 25, at most 100)."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class CursorPagination(pagination.CursorPagination):
    """Opaque `?cursor=` links for append-only streams; `?page_size=` up to 100.

    Used where rows are only ever appended (the audit log, chat messages): a page
    never shifts while new rows arrive, and the cost does not grow with the offset.
    """

    page_size = DEFAULT_CURSOR_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


# --- Serializers and fields ------------------------------------------------------------------


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


class ModelSerializer(WritableFieldsOnlyMixin, serializers.ModelSerializer):
    """A model serializer that refuses read-only and unknown input fields.

    `Meta.create_only_fields` are writable when creating and read-only afterwards
    (an artefact's engagement, an approval's subject, a qualification's holder).
    """

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


class Serializer(WritableFieldsOnlyMixin, serializers.Serializer):
    """An input serializer (an action's body) that refuses unknown fields."""


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
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
