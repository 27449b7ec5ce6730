"""The API's permission class: a Django model permission for every request, reads included.

Named by the REST_FRAMEWORK setting DEFAULT_PERMISSION_CLASSES: imports no DRF view.
"""

from __future__ import annotations

from typing import ClassVar

from django.core.exceptions import ValidationError
from rest_framework import permissions
from rest_framework.exceptions import NotFound

# Actions whose permission follows the HTTP method, as DjangoModelPermissions maps it.
STANDARD_ACTIONS = frozenset(
    {"list", "retrieve", "create", "update", "partial_update", "destroy", "metadata", None}
)


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
        if request.user.has_perms(self.required_permissions(request, view, model)):
            return True
        if not self._object_visible(view):
            # An object outside the user's engagements does not exist for them, whatever
            # they may not do to it: 404, never a 403 that would confirm it is there.
            raise NotFound()
        return False

    @staticmethod
    def _object_visible(view) -> bool:
        """Return False when the request names an object the user's scoped rows lack."""
        lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", "pk")
        value = getattr(view, "kwargs", {}).get(lookup)
        if value is None or not hasattr(view, "get_queryset"):
            return True
        field = getattr(view, "lookup_field", "pk")
        try:
            return view.get_queryset().filter(**{field: value}).exists()
        except (ValidationError, TypeError, ValueError):
            return False

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
