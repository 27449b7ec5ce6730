"""Viewset bases shared by the apps' APIs: scoped querysets, the acting user, transitions.

Kept apart from the modules the settings name (permissions, pagination, schema,
exceptions): this one imports DRF's views, which read those settings when imported.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import mixins, viewsets
from rest_framework.response import Response

from ..middleware import get_request_context
from ..scoping import scope_to_user
from .lean import LeanListSerializer, lean_rows


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

    def paginate_queryset(self, queryset):
        """Return a page of rows; a list written lean reads its rows lean too (records.api.lean)."""
        serializer_class = self.get_serializer_class()
        if getattr(serializer_class.Meta, "list_serializer_class", None) is LeanListSerializer:
            queryset = lean_rows(queryset)
        return super().paginate_queryset(queryset)

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


class KeptRecordViewSet(
    ServiceViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A viewset for records that are created and edited but never deleted (no DELETE)."""
