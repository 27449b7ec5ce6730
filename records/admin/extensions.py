"""What higher apps add to a lower app's admin pages: buttons, inlines, page sections.

The engagement page shows the engagement's runs, artefacts, data reliance register
and final sign-off; the artefact page offers to request its review. Those belong to
apps above the page's own, which it cannot import: each registers a `PageExtension`
for the page's model in its `AppConfig.ready()`, and `ServiceAdminMixin` reads the
extensions when it serves a request (the admin's autodiscovery runs before the apps'
`ready()`, so nothing is read at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.contrib.admin.options import InlineModelAdmin
    from django.http import HttpRequest

    from .service_admin import AdminMove

EXTENSION_MOVE_IN_BULK = (
    "The move “{move}” added to the {model} page cannot be a bulk action: admin actions "
    "are fixed when the admin starts, before the apps register their extensions. "
    "Declare it with bulk=False."
)

# (model_admin, request, obj, context so far) → the template context the extension adds.
ContextProvider = Callable[["ModelAdmin", "HttpRequest", Any, dict], dict]


@dataclass(frozen=True)
class PageExtension:
    """What one app adds to the change page of another app's model.

    - `moves`: buttons among the page's own moves (never bulk actions), placed before
      the page's own move named `before` (None: after them);
    - `inlines`: inline admins shown after the page's own;
    - `context(model_admin, request, obj, context)`: template context for the sections
      the page's template renders (called in registration order, each seeing what the
      earlier ones added).
    """

    moves: tuple[AdminMove, ...] = ()
    before: str | None = None
    inlines: tuple[type[InlineModelAdmin], ...] = ()
    context: ContextProvider | None = None


# label ("app_label.modelname") → its extensions, in registration order (INSTALLED_APPS).
PAGE_EXTENSIONS: dict[str, list[PageExtension]] = {}


def register_page_extension(model: str, extension: PageExtension) -> PageExtension:
    """Add `extension` to the admin page of `model` ("app_label.ModelName")."""
    label = model.lower()
    for move in extension.moves:
        if move.bulk:
            raise ImproperlyConfigured(EXTENSION_MOVE_IN_BULK.format(move=move.name, model=label))
    extensions = PAGE_EXTENSIONS.setdefault(label, [])
    if extension not in extensions:
        extensions.append(extension)
    return extension


def page_extensions(model) -> list[PageExtension]:
    """Return the extensions registered for the admin page of `model` (a model class)."""
    return list(PAGE_EXTENSIONS.get(model._meta.label_lower, ()))
